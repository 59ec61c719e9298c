"""`python -m ramdisk [--cache-dir DIR] [--force]`: build the deploy kernel and ramdisk."""

from __future__ import annotations

import sys

from ramdisk.build import BuiltRamdisk, ensure_built
from ramdisk.cli import MIB, run_build


def describe(built: BuiltRamdisk) -> list[str]:
    sizes = built.manifest_data()["sizes"]
    return [f"kernel {built.kernel_version}: {built.vmlinuz} ({sizes['vmlinuz'] / MIB:.1f} MiB)",
            f"ramdisk: {built.initramfs} ({sizes[built.initramfs.name] / MIB:.1f} MiB, "
            f"{sizes['initramfs_uncompressed'] / MIB:.1f} MiB uncompressed)",
            f"manifest: {built.manifest}"]


if __name__ == "__main__":
    sys.exit(run_build("python -m ramdisk", __doc__, "ramdisk", ensure_built, describe))
