"""The shared command line of the three builds (`python -m ramdisk`, `ramdisk.testkernel`,
`ramdisk.testimages`): ``[--cache-dir DIR] [--force]``, build or reuse, print what was built."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from ramdisk.buildcache import DEFAULT_CACHE_DIR
from ramdisk.debs import DebError
from ramdisk.tree import TreeError

MIB = 1 << 20


class Built(Protocol):
    build_seconds: float


B = TypeVar("B", bound=Built)


def run_build(prog: str, description: str | None, what: str,
              ensure_built: Callable[..., B], describe: Callable[[B], list[str]]) -> int:
    """Parse the arguments, call ``ensure_built(cache_dir, force=...)``, print ``describe``'s
    lines and the time taken; 1 with the reason on stderr if the build failed."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--force", action="store_true", help="rebuild even if the cache is current")
    args = parser.parse_args()
    started = time.monotonic()
    try:
        built = ensure_built(args.cache_dir.resolve(), force=args.force)
    except (DebError, TreeError) as exc:
        print(f"{what} build failed: {exc}", file=sys.stderr)
        return 1
    for line in describe(built):
        print(line)
    print(f"took {time.monotonic() - started:.2f} s (the build itself {built.build_seconds:.2f} s)")
    return 0
