#!/bin/busybox sh
# /init of the lab's test kernel: say that the machine booted (with the kernel command line it got,
# so a test can tell its own boot from any other) on the console, then power off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "@MARKER@ uptime=$(cut -d' ' -f1 /proc/uptime) cmdline=$(cat /proc/cmdline)" > /dev/console
sync
poweroff -f
