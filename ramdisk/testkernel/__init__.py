"""The lab's test kernel: Debian's kernel and a busybox initramfs whose /init prints a marker.

`ensure_built()` returns the cached build, building it first when it is missing or stale.
"""

from ramdisk.testkernel.build import MARKER, BuiltTestKernel, build, ensure_built

__all__ = ["MARKER", "BuiltTestKernel", "build", "ensure_built"]
