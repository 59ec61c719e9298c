"""Full restore against delta restores, with the real agent code, over a 100 Mbit link.

One image (default 1 GiB: an MBR disk, ext4 65 % full of random files), ingested into an image
store, served by the boot service's range-read routes (uvicorn) in the root namespace on one end
of a veth pair shaped with ``tc tbf`` (100 Mbit both ways); the agent's ``restore_blocks`` runs
in a network namespace on the other end, on a file-backed disk. Measured:

- floors: the disk file's cold sequential read (page cache dropped), and the link time of the
  bytes each restore must move;
- the agent's hashing alone (a verify pass over an identical disk, cold);
- a full restore onto a blank disk, then delta restores after 1 %, 5 % and 20 % changes
  (files in a package-like tree, files removed, the partition table edited).

Needs root, iproute2 (tc), mke2fs, debugfs, sfdisk. Run it alone on the machine if you can:

    .venv/bin/python benchmarks/delta_restore.py [--size-mib 1024] [--rate-mbit 100]

The agent's hashing against the disk's cold read alone (no restores), five rounds back to back:

    .venv/bin/python benchmarks/delta_restore.py --hashing-only --hash-rounds 5
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MiB = 1024 * 1024
AGENT_PYTHON = "/usr/bin/python3"  # the ramdisk's Python: no venv, stdlib only


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def cold_read_rate(path: Path, size: int) -> float:
    drop_caches()
    started = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        while os.read(fd, 4 * MiB):
            pass
    finally:
        os.close(fd)
    return size / (time.perf_counter() - started)


def changed_by_block_size(image: Path, disk: Path, size: int) -> str:
    """MiB that differ when compared in 1, 2 and 4 MiB blocks: what each block size would
    transfer for the same change."""
    changed = set()
    with image.open("rb") as one, disk.open("rb") as two:
        for index in range(size // MiB):
            if one.read(MiB) != two.read(MiB):
                changed.add(index)
    return ", ".join(f"{len({index // step for index in changed}) * step} MiB in {step} MiB "
                     f"blocks" for step in (1, 2, 4))


def agent_side(spec: dict[str, object]) -> None:
    """Inside the namespace: one restore (or a hashing pass) with the agent's own code."""
    from agent.block_fetch import BlockFetcher
    from agent.disks import file_disk
    from agent.restore_blocks import Restore, RestoreRequest, _load_manifest, restore_blocks

    request = RestoreRequest(manifest_url=str(spec["manifest_url"]),
                             manifest_sha256=str(spec["manifest_sha256"]),
                             disk_url=str(spec["disk_url"]), mode=str(spec["mode"]),
                             target_disk=None, image_token=str(spec["image_token"]))
    disk = file_disk(str(spec["disk"]))
    started, before = time.perf_counter(), os.times()
    if spec["mode"] == "hash":
        manifest = _load_manifest(request, 60)
        fd = disk.open()
        try:
            fetcher = BlockFetcher(request.disk_url, manifest, 60, request.token_headers)
            run = Restore(manifest, disk, fd, fetcher,
                          lambda done, total: None)
            bad = run.verify(range(len(manifest.blocks)))
        finally:
            os.close(fd)
        after = os.times()  # what the pass cost the CPUs (all its threads)
        result: dict[str, object] = {"differing": len(bad), "cpu_seconds": (
            after.user + after.system - before.user - before.system)}
    else:
        result = restore_blocks(request, [disk], 60, lambda done, total: None)
    print(json.dumps({"seconds": time.perf_counter() - started, "result": result}))


def direct_read_rate(path: Path, size: int, in_flight: int) -> float:
    """The disk file read as the agent's hashing reads it (O_DIRECT, 4 MiB blocks, as many
    reads in flight as its threads), without hashing: what the disk gives that way."""
    import mmap
    from concurrent.futures import ThreadPoolExecutor

    drop_caches()
    started = time.perf_counter()
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    buffers = [memoryview(mmap.mmap(-1, 4 * MiB)) for _ in range(in_flight)]

    def read(index: int) -> int:
        return os.preadv(fd, [buffers[index % in_flight]], index * 4 * MiB)

    try:
        with ThreadPoolExecutor(in_flight) as pool:
            assert sum(pool.map(read, range(size // (4 * MiB)))) == size
    finally:
        os.close(fd)
    return size / (time.perf_counter() - started)


def hashing_rounds(link: object, spec: dict[str, object], disk: Path, size: int,
                   rounds: int) -> float:
    """Floor and agent hashing back to back, ``rounds`` times; the median cold read rate."""
    from statistics import median

    reads, ratios = [], []
    for _ in range(rounds):
        load = os.getloadavg()[0]
        read_rate = cold_read_rate(disk, size)
        hashed = run_agent(link, {**spec, "mode": "hash"})
        hash_rate = size / float(hashed["seconds"])  # type: ignore[arg-type]
        cpu_seconds = float(hashed["result"]["cpu_seconds"])  # type: ignore[index]
        direct_rate = direct_read_rate(disk, size, (os.cpu_count() or 1) + 1)
        reads.append(read_rate)
        ratios.append(hash_rate / read_rate)
        print(f"load {load:.1f}: cold sequential read {read_rate / 1e6:.0f} MB/s; agent "
              f"hashing {hash_rate / 1e6:.0f} MB/s ({100 * hash_rate / read_rate:.0f} % of "
              f"it), {cpu_seconds / (size / 2**30):.2f} CPU-s per GiB; O_DIRECT reads alone "
              f"{direct_rate / 1e6:.0f} MB/s", flush=True)
    if rounds > 1:
        print(f"agent hashing / cold read over {rounds} rounds: median "
              f"{100 * median(ratios):.0f} %, {100 * min(ratios):.0f}-{100 * max(ratios):.0f} %; "
              f"load now {os.getloadavg()[0]:.1f}", flush=True)
    return median(reads)


def run_agent(link: object, spec: dict[str, object]) -> dict[str, object]:
    drop_caches()
    argv = link.exec_argv(AGENT_PYTHON, str(Path(__file__).resolve()),  # type: ignore[attr-defined]
                          "--agent-side", json.dumps(spec))
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the agent side failed: {done.stderr}")
    loaded: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def shape(link: object, rate_mbit: int) -> None:
    for device, prefix in ((link.root_interface, []),  # type: ignore[attr-defined]
                           (link.namespace_interface,  # type: ignore[attr-defined]
                            ["ip", "netns", "exec", link.name])):  # type: ignore[attr-defined]
        subprocess.run([*prefix, "tc", "qdisc", "replace", "dev", device, "root", "tbf", "rate",
                        f"{rate_mbit}mbit", "burst", "64kb", "latency", "50ms"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rate-mbit", type=int, default=100)
    parser.add_argument("--changes", default="1,5,20", help="percentages, comma-separated")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--hash-rounds", type=int, default=1,
                        help="cold read then agent hashing, back to back, this many times")
    parser.add_argument("--hashing-only", action="store_true",
                        help="stop after the hashing rounds (no restores)")
    parser.add_argument("--agent-side", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.agent_side:
        agent_side(json.loads(args.agent_side))
        return

    from starlette.applications import Starlette

    from services.boot.image_blocks import image_block_routes
    from services.images import tokens
    from services.images.store import ImageStore
    from tests.support.asgi import serving
    from tests.support.disk_images import change_disk, make_blank_disk, make_os_image
    from tests.support.netns import veth_namespace

    size = args.size_mib * MiB
    workdir = Path(tempfile.mkdtemp(prefix="enclume-delta-", dir=args.workdir))
    try:
        image, disk = workdir / "image.img", workdir / "disk.img"
        started = time.perf_counter()
        make_os_image(image, size, fill=0.65)  # room for the 20 % change
        print(f"image of {args.size_mib} MiB made in {time.perf_counter() - started:.1f} s; "
              f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
        store = ImageStore(workdir / "store", max_bytes=4 * size)
        digest = hashlib.sha256()
        with image.open("rb") as handle:
            while chunk := handle.read(4 * MiB):
                digest.update(chunk)
        started = time.perf_counter()
        manifest = store.ingest_file("bench", image, digest.hexdigest())
        print(f"ingested in {time.perf_counter() - started:.1f} s: {len(manifest.blocks)} "
              f"blocks, {manifest.data_bytes / MiB:.0f} MiB of data", flush=True)
        secret = secrets.token_bytes(32)
        app = Starlette(routes=image_block_routes(store, secret))
        link_rate = args.rate_mbit * 1e6 / 8
        rows = []
        with veth_namespace("delta") as link:
            shape(link, args.rate_mbit)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((link.root_address, 0))
            with serving(app, sock) as url:
                spec = {"manifest_url": f"{url}/image-versions/bench/manifest",
                        "manifest_sha256": store.manifest_sha256("bench"),
                        "disk_url": f"{url}/image-versions/bench/disk", "disk": str(disk),
                        "image_token": tokens.issue(secret, "bench", 3600)}
                shutil.copyfile(image, disk)
                read_rate = hashing_rounds(link, spec, disk, size, args.hash_rounds)
                if args.hashing_only:
                    return
                disk.unlink()
                make_blank_disk(disk, size)
                full = run_agent(link, {**spec, "mode": "full"})
                rows.append(("full", full, manifest.data_bytes))
                for percent in (int(value) for value in args.changes.split(",")):
                    shutil.copyfile(image, disk)
                    change_disk(disk, percent / 100, seed=percent)
                    print(f"{percent} % change: {changed_by_block_size(image, disk, size)}",
                          flush=True)
                    delta = run_agent(link, {**spec, "mode": "delta"})
                    rows.append((f"delta after {percent} %", delta, None))
        full_seconds = float(full["seconds"])  # type: ignore[arg-type]
        print("\n| restore | time | fetched | link floor | disk floor | vs full |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, run, _ in rows:
            result = run["result"]
            fetched = int(result["fetched_bytes"])  # type: ignore[index]
            seconds = float(run["seconds"])  # type: ignore[arg-type]
            print(f"| {name} | {seconds:.1f} s | {fetched / MiB:.0f} MiB | "
                  f"{fetched / link_rate:.1f} s | {size / read_rate:.1f} s | "
                  f"{100 * seconds / full_seconds:.0f} % |")
        print(f"\nload at the end {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
