"""What the deploy ramdisk holds: Debian packages (or parts of them), kernel modules, and what
is left out. Paths are as in the ramdisk, with /usr merged ("usr/sbin/wipefs", not
"sbin/wipefs"); patterns use `*` within a path component and `**` across components.

The shared libraries of every program and Python extension taken here are found by the build
itself (ramdisk.assemble): it reads what each ELF file needs and takes the library from the
package's own dependencies, so this list names only what is used directly.
"""

from __future__ import annotations

from dataclasses import dataclass

ARCH_LIBS = "usr/lib/x86_64-linux-gnu"
# Where the build looks for the libraries programs need: a package's shared libraries, not its
# data or helper programs in subdirectories.
LIBRARIES = (f"{ARCH_LIBS}/*.so*",)
EVERYTHING = ("**",)


@dataclass(frozen=True)
class Selection:
    package: str
    paths: tuple[str, ...] = EVERYTHING
    # Also take, whole, the Python packages it Depends on; its other dependencies must be taken
    # by their own selection or be listed in NOT_NEEDED (the build checks).
    with_depends: bool = False


PACKAGES: tuple[Selection, ...] = (
    # The shell and the small tools of /init and the agent (modprobe, ip, udhcpc, init, ...).
    Selection("busybox-static", ("usr/bin/busybox",)),
    # The dynamic loader (programs name it, as PT_INTERP, by its /lib64 path).
    Selection("libc6", ("usr/lib64/ld-linux-x86-64.so.2", f"{ARCH_LIBS}/ld-linux-x86-64.so.2")),
    # glibc loads libgcc_s at run time (thread cancellation), no ELF file names it.
    Selection("libgcc-s1", (f"{ARCH_LIBS}/libgcc_s.so.1",)),
    # ctypes.util.find_library (pyudev looks up libudev with it) runs `ldconfig -p`.
    Selection("libc-bin", ("usr/sbin/ldconfig",)),
    # The agent's interpreter and standard library.
    Selection("python3.11-minimal"),
    Selection("libpython3.11-minimal"),
    Selection("libpython3.11-stdlib"),
    # LIO iSCSI target for the iscsi deploy interface (rtslib-fb: python3-pyudev, python3-six);
    # pyudev loads libudev with ctypes, no ELF file names it.
    Selection("python3-rtslib-fb", with_depends=True),
    Selection("libudev1", (f"{ARCH_LIBS}/libudev.so.1*",)),
    # zstd for captured blocks on the wire: the C extension alone (CPython never imports the
    # cffi backend, so python3-cffi-backend is not needed); libzstd is already here for qemu-img.
    Selection("python3-zstandard", tuple(f"usr/lib/python3/dist-packages/zstandard/{name}"
                                         for name in ("__init__.py", "backend_c.*.so"))),
    # Images: qcow2 and other formats are converted while written.
    Selection("qemu-utils", ("usr/bin/qemu-img",)),
    # Disks: partition tables, signatures, file systems, swap.
    Selection("fdisk", ("usr/sbin/sfdisk",)),
    Selection("mount", ("usr/bin/mount", "usr/bin/umount", "usr/sbin/losetup",
                        "usr/sbin/swapon", "usr/sbin/swapoff")),
    Selection("util-linux", tuple(f"usr/{tool}" for tool in (
        "sbin/wipefs", "sbin/blkid", "sbin/blockdev", "sbin/blkdiscard", "bin/lsblk",
        "sbin/mkswap", "bin/partx", "bin/findmnt"))),
    Selection("e2fsprogs", ("usr/sbin/mke2fs", "usr/sbin/mkfs.ext*", "usr/sbin/e2fsck",
                            "usr/sbin/fsck.ext*", "usr/sbin/resize2fs", "usr/sbin/tune2fs",
                            "etc/mke2fs.conf")),
    Selection("dosfstools", ("usr/sbin/mkfs.fat", "usr/sbin/mkfs.vfat", "usr/sbin/fsck.fat")),
    # BIOS boot loader for partition images: extlinux and its MBR images, the modules it loads.
    Selection("extlinux", ("usr/bin/extlinux", "usr/lib/EXTLINUX/*.bin")),
    Selection("syslinux-common", ("usr/lib/syslinux/mbr/*.bin",
                                  "usr/lib/syslinux/modules/bios/*.c32")),
    # Room restores by multicast: uftp's receiver, uftpd (the boot service runs uftp).
    Selection("uftp", ("usr/bin/uftpd",)),
    # CA certificates for https image URLs (the bundle is made from them by the build).
    Selection("ca-certificates", ("usr/share/ca-certificates/mozilla/*.crt",)),
)

# Dependencies of `with_depends` packages that the ramdisk does without, and why.
NOT_NEEDED = {
    "python3": "the interpreter is python3.11-minimal with libpython3.11-stdlib",
    "lsb-base": "init-script helpers; the ramdisk has no init scripts",
}

# Never taken from any package: documentation, translations, service units, and the parts
# of the standard library a headless agent does not use (their extension modules would pull
# in ncurses, readline, Berkeley DB, SQLite).
PRUNED = (
    "usr/share/doc/**", "usr/share/man/**", "usr/share/info/**", "usr/share/locale/**",
    "usr/share/lintian/**", "usr/share/bug/**", "usr/share/bash-completion/**",
    "usr/share/binfmts/**", "usr/share/applications/**", "usr/share/pixmaps/**",
    "usr/lib/systemd/**", "usr/lib/udev/**", "usr/lib/mime/**", "etc/init.d/**",
    "etc/cron.d/**", "etc/systemd/**", "usr/share/python3/**",
    "usr/lib/python3.11/test/**", "usr/lib/python3.11/pydoc_data/**",
    "usr/lib/python3.11/sqlite3/**", "usr/lib/python3.11/curses/**",
    "usr/lib/python3.11/turtle.py", "usr/lib/python3.11/**/tests/**",
    *(f"usr/lib/python3.11/lib-dynload/{name}.cpython-311-x86_64-linux-gnu.so" for name in (
        "_test*", "_xx*", "xxlimited*", "_ctypes_test", "_curses*", "readline", "_dbm", "_gdbm",
        "_sqlite3", "nis", "ossaudiodev", "audioop")),
)

# Kernel modules in the ramdisk (their dependencies come along). /init loads the drivers of the
# devices present (by modalias, as udev would) and BOOT_MODULES; the kernel loads file systems
# on mount; the agent loads the iSCSI target when it exports a disk.
# NICs and disk controllers of QEMU and common servers:
NETWORK_MODULES = ("virtio_pci", "virtio_net", "e1000", "e1000e", "igb", "ixgbe")
STORAGE_MODULES = ("virtio_blk", "virtio_scsi", "sd_mod", "ahci", "nvme", "loop")
# File systems the agent mounts (the root of partition images, for EXTLINUX) or writes (config
# drives):
FILESYSTEM_MODULES = ("ext4", "xfs", "btrfs", "vfat", "nls_cp437", "nls_ascii", "nls_utf8",
                      "isofs")
# The LIO iSCSI target (crc32c_generic: logins fail without it; target_core_file exports
# file-backed disks):
ISCSI_MODULES = ("configfs", "target_core_mod", "target_core_iblock", "target_core_file",
                 "iscsi_target_mod", "crc32c_generic")
# crct10dif_generic backs sd_mod's crc_t10dif.
KERNEL_MODULES = (*NETWORK_MODULES, *STORAGE_MODULES, *FILESYSTEM_MODULES, *ISCSI_MODULES,
                  "crct10dif_generic")
# Loaded by /init whatever the hardware: configfs to mount it, loop for /dev/loop-control
# (no device asks for either).
BOOT_MODULES = ("configfs", "loop")
