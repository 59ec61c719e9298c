"""The lab's test OS images: a BIOS whole-disk image and a partition image whose tiny init
reports "booted HOSTNAME UUID" to the tenant network (see build.py for the layout).

`ensure_built()` returns the cached build, building it first when it is missing or stale.
"""

from ramdisk.testimages.build import (
    MARKER,
    REPORT_PORT,
    BuiltTestImages,
    ImageBuildError,
    build,
    ensure_built,
)

__all__ = ["MARKER", "REPORT_PORT", "BuiltTestImages", "ImageBuildError", "build",
           "ensure_built"]
