"""A disk that silently loses writes: fault injection for the agent's restore tests.

Nothing real here can lose writes (a file-backed disk keeps every write; this kernel has no
device-mapper ``dm-flakey`` and no NBD), so this is a FUSE file system (libfuse3 through
``mfusepy``) run by the test process as a child process. It exposes one file, ``disk.img``,
backed by a real sparse file: reads return what is really stored, and a write request that
touches one of the given byte ranges is answered "written" but dropped, the first ``times``
times for that range. Every write request is counted (per range: dropped and landed) into a
JSON file beside the mount point, so a test can tell what the disk did.

The kernel splits a large ``pwrite`` into requests of at most 128 KiB (FUSE's ``max_write``);
a small range (a few KiB, aligned) is touched by exactly one request per ``pwrite`` of the block
around it, so ``times`` counts the writer's writes of that block. ``fallocate`` is not offered:
the disk cannot discard, so zeros are written (a disk without discard). Its mtime never changes,
so the kernel keeps the pages a lost write filled: a writer that verifies without dropping its
page cache reads back what it wrote, not what the disk kept (as on a real disk).

Run as ``python -m tests.support.faulty_disk BACKING MOUNTPOINT STATS --lose START:END:TIMES``;
``mounted_faulty_disk`` does that, and unmounts and stops the process by its PID on exit.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

DISK_NAME = "disk.img"
REPO_ROOT = Path(__file__).resolve().parents[2]
MOUNT_TIMEOUT_S = 10.0


@dataclass
class LosingRange:
    """Writes touching ``[start, end)`` are dropped ``times`` times, then land."""

    start: int
    end: int
    times: int
    dropped: int = 0
    landed: int = 0

    def touched_by(self, offset: int, length: int) -> bool:
        return offset < self.end and self.start < offset + length

    @classmethod
    def parse(cls, text: str) -> LosingRange:
        start, end, times = (int(part) for part in text.split(":"))
        if not 0 <= start < end or times < 0:
            raise ValueError(f"a range to lose is START:END:TIMES with START < END, got {text!r}")
        return cls(start, end, times)


@dataclass
class WriteCounts:
    requests: int = 0
    dropped: int = 0
    ranges: list[LosingRange] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {"requests": self.requests, "dropped": self.dropped,
                "ranges": [vars(losing) for losing in self.ranges]}


def _operations(backing: Path, stats: Path, ranges: list[LosingRange]) -> object:
    import mfusepy  # the test extra; imported here so that importing this module needs no libfuse

    class LosingDisk(mfusepy.Operations):  # type: ignore[misc]
        use_ns = True

        def __init__(self) -> None:
            self.fd = os.open(backing, os.O_RDWR | os.O_CLOEXEC)
            self.counts = WriteCounts(ranges=ranges)
            self.lock = threading.Lock()
            self.mounted_at = time.time_ns()
            self._save()

        def _save(self) -> None:
            partial = stats.with_suffix(".partial")
            partial.write_text(json.dumps(self.counts.as_json()))
            os.replace(partial, stats)

        def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
            now = self.mounted_at  # a changing mtime would drop the kernel's page cache
            if path == "/":
                return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2,
                        "st_atime": now, "st_mtime": now, "st_ctime": now}
            if path != f"/{DISK_NAME}":
                raise mfusepy.FuseOSError(errno.ENOENT)
            return {"st_mode": stat.S_IFREG | 0o644, "st_nlink": 1,
                    "st_size": os.fstat(self.fd).st_size,
                    "st_atime": now, "st_mtime": now, "st_ctime": now}

        def readdir(self, path: str, fh: int) -> list[str]:
            return [".", "..", DISK_NAME]

        def open(self, path: str, flags: int) -> int:
            if path != f"/{DISK_NAME}":
                raise mfusepy.FuseOSError(errno.ENOENT)
            return 0

        def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
            return os.pread(self.fd, size, offset)

        def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
            with self.lock:
                self.counts.requests += 1
                losing = [r for r in self.counts.ranges
                          if r.touched_by(offset, len(data)) and r.dropped < r.times]
                for touched in self.counts.ranges:
                    if touched.touched_by(offset, len(data)) and not losing:
                        touched.landed += 1
                if losing:
                    for dropped in losing:
                        dropped.dropped += 1
                    self.counts.dropped += 1
                else:
                    os.pwrite(self.fd, data, offset)
                self._save()
            return len(data)

        def truncate(self, path: str, length: int, fh: int | None = None) -> int:
            raise mfusepy.FuseOSError(errno.EPERM)  # a disk keeps its size

        def fsync(self, path: str, datasync: int, fh: int) -> int:
            os.fsync(self.fd)
            return 0

        def flush(self, path: str, fh: int) -> int:
            return 0

        def release(self, path: str, fh: int) -> int:
            return 0

    return LosingDisk()


def serve(backing: Path, mountpoint: Path, stats: Path, ranges: list[LosingRange]) -> None:
    import mfusepy

    mfusepy.FUSE(_operations(backing, stats, ranges), str(mountpoint), foreground=True,
                 nothreads=True, fsname="faulty-disk")


@dataclass
class FaultyDisk:
    path: Path  # the disk as the agent sees it, in the mount
    backing: Path  # what is really stored
    stats: Path

    def counts(self) -> dict[str, object]:
        return dict(json.loads(self.stats.read_text()))


def used_disk(backing: Path, image: Path, size: int, changed_at: int) -> Path:
    """``image`` on a disk of ``size`` bytes, changed at ``changed_at`` (where a class wrote,
    and where the disk will lose the restore's writes)."""
    shutil.copyfile(image, backing)
    with backing.open("r+b") as disk:
        disk.truncate(size)
        disk.seek(changed_at)
        disk.write(b"written in class" * 4096)
    return backing


@contextmanager
def mounted_faulty_disk(backing: Path, workdir: Path,
                        lose: list[tuple[int, int, int]]) -> Iterator[FaultyDisk]:
    """``backing`` (a sparse file of the disk's size) behind a FUSE mount under ``workdir``
    that loses writes as ``lose`` says (``(start, end, times)`` each)."""
    mountpoint = workdir / "faulty-disk-mount"
    mountpoint.mkdir()
    stats = workdir / "faulty-disk-writes.json"
    argv = [sys.executable, "-m", "tests.support.faulty_disk", str(backing), str(mountpoint),
            str(stats)] + [arg for start, end, times in lose
                           for arg in ("--lose", f"{start}:{end}:{times}")]
    log = (workdir / "faulty-disk.log").open("wb")
    process = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + MOUNT_TIMEOUT_S
        while not (os.path.ismount(mountpoint) and stats.exists()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the faulty disk did not mount: "
                                   + (workdir / "faulty-disk.log").read_text())
            time.sleep(0.05)
        yield FaultyDisk(mountpoint / DISK_NAME, backing, stats)
    finally:
        _stop(process, mountpoint)
        log.close()


def _stop(process: subprocess.Popen[bytes], mountpoint: Path) -> None:
    """libfuse unmounts on SIGTERM; a process that does not end is killed and its mount
    detached."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=MOUNT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    if os.path.ismount(mountpoint):
        subprocess.run(["umount", "-l", str(mountpoint)], check=False, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backing", type=Path)
    parser.add_argument("mountpoint", type=Path)
    parser.add_argument("stats", type=Path)
    parser.add_argument("--lose", action="append", type=LosingRange.parse, default=[])
    options = parser.parse_args()
    serve(options.backing, options.mountpoint, options.stats, options.lose)


if __name__ == "__main__":
    main()
