"""`python -m ramdisk.testimages [--cache-dir DIR] [--force]`: build the lab's test images."""

from __future__ import annotations

import sys

from ramdisk.cli import MIB, run_build
from ramdisk.testimages.build import IMAGES, BuiltTestImages, ensure_built


def describe(built: BuiltTestImages) -> list[str]:
    lines = [f"kernel {built.kernel_version}"]
    for name in IMAGES:
        path = built.directory / name
        lines.append(f"{path} ({path.stat().st_size / MIB:.1f} MiB), checksum in "
                     f"{path.name}.sha256")
    return lines


if __name__ == "__main__":
    sys.exit(run_build("python -m ramdisk.testimages", __doc__, "test image", ensure_built,
                       describe))
