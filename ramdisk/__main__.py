"""`python -m ramdisk [--cache-dir DIR] [--force]`: build the deploy kernel and ramdisk."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ramdisk.build import DEFAULT_CACHE_DIR, ensure_built
from ramdisk.debs import DebError
from ramdisk.tree import TreeError

MIB = 1 << 20


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m ramdisk", description=__doc__)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--force", action="store_true", help="rebuild even if the cache is current")
    args = parser.parse_args()
    started = time.monotonic()
    try:
        built = ensure_built(args.cache_dir.resolve(), force=args.force)
    except (DebError, TreeError) as exc:
        print(f"ramdisk build failed: {exc}", file=sys.stderr)
        return 1
    sizes = built.manifest_data()["sizes"]
    print(f"kernel {built.kernel_version}: {built.vmlinuz} ({sizes['vmlinuz'] / MIB:.1f} MiB)")
    print(f"ramdisk: {built.initramfs} ({sizes[built.initramfs.name] / MIB:.1f} MiB, "
          f"{sizes['initramfs_uncompressed'] / MIB:.1f} MiB uncompressed)")
    print(f"manifest: {built.manifest}")
    print(f"took {time.monotonic() - started:.2f} s (the build itself {built.build_seconds:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
