"""`python -m ramdisk.testkernel [--cache-dir DIR] [--force]`: build the lab's test kernel."""

from __future__ import annotations

import sys

from ramdisk.cli import run_build
from ramdisk.testkernel.build import BuiltTestKernel, ensure_built


def describe(kernel: BuiltTestKernel) -> list[str]:
    return [f"kernel {kernel.kernel_version}: {kernel.vmlinuz}",
            f"initramfs: {kernel.initramfs} ({kernel.initramfs.stat().st_size} bytes)"]


if __name__ == "__main__":
    sys.exit(run_build("python -m ramdisk.testkernel", __doc__, "test kernel", ensure_built,
                       describe))
