"""`python -m ramdisk.testkernel [--cache-dir DIR] [--force]`: build the lab's test kernel."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ramdisk.debs import DebError
from ramdisk.testkernel.build import DEFAULT_CACHE_DIR, ensure_built


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m ramdisk.testkernel", description=__doc__)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--force", action="store_true", help="rebuild even if the cache is current")
    args = parser.parse_args()
    started = time.monotonic()
    try:
        kernel = ensure_built(args.cache_dir.resolve(), force=args.force)
    except DebError as exc:
        print(f"test kernel build failed: {exc}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - started
    print(f"kernel {kernel.kernel_version}: {kernel.vmlinuz}")
    print(f"initramfs: {kernel.initramfs} ({kernel.initramfs.stat().st_size} bytes)")
    print(f"took {elapsed:.2f} s (the build itself {kernel.build_seconds:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
