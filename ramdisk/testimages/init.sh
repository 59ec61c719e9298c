#!/bin/busybox sh
# /init of the Enclume test images (in their initramfs): a tiny "tenant OS" that says where it
# booted. It brings up the first NIC with DHCP, reads its hostname and node UUID from a config
# drive (a file system labelled config-2) if there is one, and reports
# "booted <hostname> <uuid>" over TCP to the DHCP router (the tenant gateway) on port
# @REPORT_PORT@, or to HOST:PORT given as enclume_report=HOST:PORT on the kernel command line.
# When the config drive holds enclume/session-service.json (a direct deploy with Enclume's
# session service enabled), it then starts the session service's busybox port
# (/bin/enclume-session-service, docs/session-service.md), whose log goes to the console too.
# The listener may answer "write-files" to the report: the OS then writes a few files on its
# boot partition (how the lab shows a delta restore taking a used PC's changes back).
# Every step is also written to the serial console, prefixed with @MARKER@.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run /tmp /mnt/config

say() { echo "@MARKER@ $*" > /dev/console; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
say "init started uptime=$(uptime_s)"

for module in $(cat /etc/modules); do
    modprobe "$module" || say "module $module did not load"
done
# The ACPI power button (QMP system_powerdown, IPMI soft off) powers the machine off.
acpid -c /etc/acpi -l /tmp/acpid.log -p /run/acpid.pid

hostname=unknown
uuid=unknown
session_service=
device=$(findfs LABEL=config-2 2>/dev/null)
if [ -n "$device" ] && mount -o ro "$device" /mnt/config; then
    meta=/mnt/config/openstack/latest/meta_data.json
    if [ -f "$meta" ]; then
        value() {
            sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" "$meta" \
                | head -n 1 | tr -cd 'A-Za-z0-9.-'
        }
        hostname=$(value hostname); [ -n "$hostname" ] || hostname=unknown
        uuid=$(value uuid); [ -n "$uuid" ] || uuid=unknown
    fi
    [ -f /mnt/config/enclume/session-service.json ] && session_service=yes
    umount /mnt/config
    say "config drive $device: hostname=$hostname uuid=$uuid"
else
    say "no config drive"
fi
hostname "$hostname"

ip link set lo up
nic=
for path in /sys/class/net/*; do
    name=${path##*/}
    [ "$name" = lo ] || { nic=$name; break; }
done
if [ -z "$nic" ]; then
    say "no network interface"
else
    ip link set "$nic" up
    if udhcpc -i "$nic" -s /etc/udhcpc.script -n -q -t 20 -T 1 -x "hostname:$hostname" \
            > /tmp/udhcpc.log 2>&1; then
        say "$nic has $(cat /run/address) router=$(cat /run/router 2>/dev/null)"
    else
        say "no DHCP lease on $nic"
    fi
fi

target=
for word in $(cat /proc/cmdline); do
    case "$word" in enclume_report=*) target=${word#enclume_report=} ;; esac
done
[ -n "$target" ] || { [ -s /run/router ] && target="$(cat /run/router):@REPORT_PORT@"; }
message="booted $hostname $uuid"
say "$message uptime=$(uptime_s)"
if [ -n "$target" ]; then
    reported=no
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        if echo "$message" | timeout 10 nc -w 3 "${target%:*}" "${target##*:}" > /tmp/reply
        then
            reported=yes
            break
        fi
        sleep 1
    done
    say "reported to $target: $reported"
    # The listener may answer "write-files": the OS then writes files on its boot partition
    # (a boot log, a cache of 1 MiB), as a used PC does; a delta restore takes them back.
    if [ "$(head -n 1 /tmp/reply 2>/dev/null)" = write-files ]; then
        boot=$(findfs LABEL=@BOOT_LABEL@ 2>/dev/null)
        mkdir -p /mnt/boot
        if [ -n "$boot" ] && mount -t vfat "$boot" /mnt/boot; then
            mkdir -p /mnt/boot/var/cache
            echo "$message uptime=$(uptime_s)" >> /mnt/boot/var/boot.log
            dd if=/dev/urandom of=/mnt/boot/var/cache/blob bs=64k count=16 2>/dev/null
            umount /mnt/boot && sync
            say "wrote files on $boot"
        else
            say "no boot partition to write files on"
        fi
    fi
else
    say "nowhere to report (no router from DHCP, no enclume_report=)"
fi
if [ -n "$session_service" ]; then
    # Power commands: busybox's, forced (this init is a script, not one that takes signals).
    enclume-session-service --poweroff-command "poweroff -f" --reboot-command "reboot -f" \
        2>&1 | while read -r line; do say "$line"; done &
    say "session service started"
fi
while :; do sleep 3600; done
