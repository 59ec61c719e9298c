"""`python -m ramdisk.testimages [--cache-dir DIR] [--force]`: build the lab's test images."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ramdisk.buildcache import DEFAULT_CACHE_DIR
from ramdisk.debs import DebError
from ramdisk.testimages.build import IMAGES, ensure_built

MIB = 1 << 20


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m ramdisk.testimages", description=__doc__)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--force", action="store_true", help="rebuild even if the cache is current")
    args = parser.parse_args()
    started = time.monotonic()
    try:
        built = ensure_built(args.cache_dir.resolve(), force=args.force)
    except DebError as exc:
        print(f"test image build failed: {exc}", file=sys.stderr)
        return 1
    print(f"kernel {built.kernel_version}")
    for name in IMAGES:
        path = built.directory / name
        print(f"{path} ({path.stat().st_size / MIB:.1f} MiB), checksum in {path.name}.sha256")
    print(f"took {time.monotonic() - started:.2f} s (the build itself {built.build_seconds:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
