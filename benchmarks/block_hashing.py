"""Block hashing speed: hashlib sha256 (what the agent's ramdisk has) with threads, by block size,
and PyPI blake3 when it is installed. Chooses the manifest's block size (docs/benchmarks.md).

    .venv/bin/python benchmarks/block_hashing.py [--mib 1024]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor

MiB = 1024 * 1024


def sha256_threads(data: memoryview, block: int, threads: int) -> float:
    blocks = [data[start:start + block] for start in range(0, len(data), block)]
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda view: hashlib.sha256(view).digest(), blocks))
    return len(data) / (time.perf_counter() - started)


def blake3_rate(data: memoryview, block: int, threads: int) -> float | None:
    try:
        import blake3  # type: ignore[import-not-found]
    except ImportError:
        return None
    blocks = [data[start:start + block] for start in range(0, len(data), block)]
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda view: blake3.blake3(view).digest(), blocks))
    return len(data) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args()
    data = memoryview(os.urandom(args.mib * MiB))
    cores = os.cpu_count() or 1
    print(f"{args.mib} MiB in memory, {cores} cores, load {os.getloadavg()[0]:.1f}")
    for block_mib in (1, 2, 4, 8):
        for threads in sorted({1, cores}):
            rate = max(sha256_threads(data, block_mib * MiB, threads) for _ in range(3))
            line = f"block {block_mib} MiB, {threads} thread(s): sha256 {rate / 1e9:.2f} GB/s"
            b3 = blake3_rate(data, block_mib * MiB, threads)
            if b3 is not None:
                line += f", blake3 {b3 / 1e9:.2f} GB/s"
            print(line)


if __name__ == "__main__":
    main()
