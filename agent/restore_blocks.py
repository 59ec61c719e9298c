"""deploy.restore_blocks: a disk made identical to an image version, block by block.

``mode: delta`` hashes the disk against the version's block manifest and fetches only the blocks
that differ, while the hashing goes on (one thread per core hashes, one fetches and writes);
``mode: full`` fetches every non-zero block and discards (or zeroes) the zero ones. Each fetched
block is checked against its hash as it arrives and fetched again if it is wrong. Then the whole
disk is read back (past the page cache) and checked against the manifest; blocks that fail are
fetched again, and if some still fail a delta restore falls back to a full write. A disk smaller
than the image is refused before anything is written; a disk that does not verify in the end is
made unbootable and the command fails. Progress is in bytes of the image: the compare (or write)
pass and the verification each count for half of it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from agent import configdrive, erase
from agent.block_fetch import BlockFetcher
from agent.block_manifest import BlockManifest, parse
from agent.block_reader import BlockReader
from agent.disks import Disk, choose, flush, write_all, zero_range
from agent.download import check_url, image_token, open_url, token_headers
from agent.errors import BadParams, CommandError

LOG = logging.getLogger(__name__)
MODES = ("delta", "full")
REPAIR_ROUNDS = 2
MAX_MANIFEST_BYTES = 64 * 1024 * 1024  # a 4 TB disk in 4 MiB blocks is ~70 MB of JSON at most


@dataclass(frozen=True)
class RestoreRequest:
    manifest_url: str
    manifest_sha256: str
    disk_url: str
    mode: str
    target_disk: str | None
    image_token: str | None = None  # sent as X-Image-Token to the boot service
    configdrive: str | None = None  # base64 or URL: a partition appended after the restore

    @property
    def token_headers(self) -> dict[str, str]:
        return token_headers(self.image_token)


def parse_params(params: dict[str, Any]) -> RestoreRequest:
    mode = params.get("mode") or "delta"
    if mode not in MODES:
        raise BadParams(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    digest = params.get("manifest_sha256")
    if not isinstance(digest, str) or len(digest) != 64 or not all(
            char in "0123456789abcdefABCDEF" for char in digest):
        raise BadParams("manifest_sha256 must be the manifest's sha256 (64 hex digits)")
    target = params.get("target_disk")
    if target is not None and not isinstance(target, str):
        raise BadParams(f"target_disk must be a device path, got {target!r}")
    drive = params.get("configdrive")
    if drive is not None and (not isinstance(drive, str) or not drive):
        raise BadParams("configdrive must be a URL or base64 text")
    token = image_token(params)
    return RestoreRequest(manifest_url=check_url(params.get("manifest_url"), "manifest_url"),
                          manifest_sha256=digest,
                          disk_url=check_url(params.get("disk_url"), "disk_url"),
                          mode=str(mode), target_disk=target, image_token=token,
                          configdrive=drive)


def _load_manifest(request: RestoreRequest, timeout_s: float) -> BlockManifest:
    download = open_url(request.manifest_url, timeout_s,
                        extra_headers=request.token_headers)
    try:
        raw = download.response.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise CommandError(f"cannot read the manifest at {request.manifest_url}: {exc}") from None
    finally:
        download.close()
    return parse(raw, request.manifest_sha256)


class Restore:
    """One restore of one disk."""

    def __init__(self, manifest: BlockManifest, disk: Disk, fd: int, fetcher: BlockFetcher,
                 on_progress: Callable[[int, int | None], None]) -> None:
        self.manifest, self.disk, self.fd, self.fetcher = manifest, disk, fd, fetcher
        self.on_progress = on_progress
        self.reader = BlockReader(fd, manifest.size, manifest.block_size)
        self.done = 0
        self.work = 2 * manifest.size  # each byte compared (or written) once, verified once
        # What the first half of the progress counts: compared blocks, and written ones (a
        # full write's, or a delta's differing blocks, which count once fixed, not when found).
        self.writes_count = False
        self.fixing = False  # a delta's rewrites: its zeroed blocks count too (a full write's
        # zero blocks were counted before it started)
        self._lock = threading.Lock()

    def _advance(self, count: int) -> None:
        """Progress in bytes of the image (the total is its size): both passes, weighed
        alike, count for the whole of it."""
        with self._lock:
            self.done += count
            size = self.manifest.size
            self.on_progress(min(self.done, self.work) * size // self.work, size)

    def matches(self, index: int) -> bool:
        try:
            block = self.reader.read(index)
        except OSError as exc:
            LOG.warning("reading block %d of %s failed: %s", index, self.disk.path, exc)
            return False
        expected = self.manifest.blocks[index]
        if expected is None:
            return self.reader.is_zero(block)
        return hashlib.sha256(block).hexdigest() == expected

    def differing(self, indexes: Iterable[int], count_differing: bool = True) -> Iterator[int]:
        """The blocks among ``indexes`` that do not match, in order, as the hashing finds them;
        without ``count_differing`` those count for progress only when written."""
        for index, matched in self.reader.in_order(indexes, self.matches):
            if matched or count_differing:
                self._advance(self.manifest.span(index)[1])
            if not matched:
                yield index

    def _write_block(self, index: int, data: memoryview) -> None:
        write_all(self.fd, data, self.manifest.span(index)[0], self.disk)
        if self.writes_count:
            self._advance(len(data))

    def rewrite(self, indexes: list[int]) -> None:
        """Make these blocks what the manifest says: zeros written or discarded, data fetched
        (the first block, the partition table, last)."""
        data = []
        for index in indexes:
            if self.manifest.blocks[index] is None:
                zero_range(self.fd, self.disk, *self.manifest.span(index))
                if self.writes_count and self.fixing:
                    self._advance(self.manifest.span(index)[1])
            else:
                data.append(index)
        first = [0] if data and data[0] == 0 else []
        self.fetcher.fetch(sorted(set(data) - set(first)), self._write_block)
        self.fetcher.fetch(first, self._write_block)

    def skip(self, count: int) -> None:
        """Progress for bytes known good already (neither compared nor verified here)."""
        self._advance(count)

    def repair(self, bad: list[int]) -> None:
        """Write again blocks that failed verification; those fetched again count as
        refetched (zero blocks are zeroed again, not fetched)."""
        self.rewrite(bad)
        self.fetcher.refetched_blocks += sum(
            1 for index in bad if self.manifest.blocks[index] is not None)

    def delta(self, indexes: Iterable[int]) -> int:
        """Fetch what differs among ``indexes`` while the hashing goes on; returns the number
        of blocks fixed."""
        found: queue.Queue[int | None] = queue.Queue()
        failure: list[BaseException] = []
        fixed = [0]

        ended = threading.Event()  # the hashing put its final None

        def next_found() -> int | None:
            index = found.get()
            if index is None:
                ended.set()
            return index

        def fetch_loop() -> None:
            try:
                first_block = []
                while (index := next_found()) is not None:
                    batch = [index]
                    while not found.empty() and (following := next_found()) is not None:
                        batch.append(following)
                    if 0 in batch:
                        batch.remove(0)
                        first_block = [0]
                    self.rewrite(batch)
                    fixed[0] += len(batch)
                    if ended.is_set():
                        break
                self.rewrite(first_block)
                fixed[0] += len(first_block)
            except BaseException as exc:
                failure.append(exc)
                while not ended.is_set():  # let the hashing finish
                    next_found()

        fetching = threading.Thread(target=fetch_loop, name="block-fetch", daemon=True)
        self.writes_count = self.fixing = True
        fetching.start()
        try:
            for index in self.differing(indexes, count_differing=False):
                found.put(index)
        finally:
            found.put(None)
            fetching.join()
            self.writes_count = self.fixing = False
        if failure:
            raise failure[0]
        return fixed[0]

    def full(self) -> None:
        size = self.manifest.size
        discarded = zero_range(self.fd, self.disk, 0, size, cheap_only=True)
        indexes = [index for index, digest in enumerate(self.manifest.blocks)
                   if digest is not None or not discarded]
        self._advance(size - sum(self.manifest.span(index)[1] for index, digest
                                 in enumerate(self.manifest.blocks) if digest is not None))
        self.writes_count = True
        try:
            self.rewrite(indexes)
        finally:
            self.writes_count = False

    def verify(self, indexes: Iterable[int]) -> list[int]:
        flush(self.fd, self.disk)
        os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_DONTNEED)  # read the disk, not the cache
        return list(self.differing(indexes))


def _repaired(run: Restore, bad: list[int], disk: Disk) -> list[int]:
    """Fetch the blocks that failed verification again, up to REPAIR_ROUNDS times; those
    still bad."""
    for _ in range(REPAIR_ROUNDS):
        if not bad:
            break
        LOG.warning("%d blocks of %s failed verification: fetching them again",
                    len(bad), disk.path)
        run.repair(bad)
        bad = run.verify(bad)
    return bad


def load_checked(request: RestoreRequest, disks: list[Disk], timeout_s: float
                 ) -> tuple[Disk, BlockManifest]:
    """The target disk and the manifest; CommandError when the disk is too small (nothing was
    written then)."""
    disk = choose(disks, request.target_disk, 1)
    manifest = _load_manifest(request, timeout_s)
    if disk.size < manifest.size:
        raise CommandError(f"{disk.path} has {disk.size} bytes, the image needs "
                           f"{manifest.size}: refused, nothing was written")
    return disk, manifest


def restore_blocks(request: RestoreRequest, disks: list[Disk], timeout_s: float,
                   on_progress: Callable[[int, int | None], None],
                   loaded: tuple[Disk, BlockManifest] | None = None,
                   held: dict[int, bytes] | None = None,
                   verified: frozenset[int] = frozenset(),
                   last: frozenset[int] = frozenset()) -> dict[str, Any]:
    """``loaded``: what ``load_checked`` returned, when the caller already did; ``held``:
    blocks (checked against the manifest) the caller has at hand, written in place of
    fetching them; ``verified``: blocks the caller read back from the disk (past the page
    cache) and found to match, neither compared nor read back again (delta mode); ``last``:
    blocks (the partition table's) compared and written only once all others verified
    (delta mode)."""
    disk, manifest = loaded or load_checked(request, disks, timeout_s)
    fetcher = BlockFetcher(request.disk_url, manifest, timeout_s, request.token_headers)
    fetcher.held = dict(held or {})
    fd = disk.open()
    result: dict[str, Any] = {"target_disk": disk.path, "mode": request.mode,
                              "image_size": manifest.size, "image_sha256": manifest.image_sha256,
                              "fell_back_to_full": False}
    try:
        run = Restore(manifest, disk, fd, fetcher, on_progress)
        everything = range(len(manifest.blocks))
        table = sorted(last - verified) if request.mode == "delta" else []
        if request.mode == "delta":
            unchecked = [index for index in everything
                         if index not in verified and index not in last]
            run.skip(2 * sum(manifest.span(index)[1] for index in verified))
            result["differing_blocks"] = run.delta(unchecked)
        else:
            unchecked = list(everything)
            run.full()
        bad = _repaired(run, run.verify(unchecked), disk)
        if table and not bad:  # the rest verified: now the partition table
            result["differing_blocks"] += run.delta(table)
            bad = _repaired(run, run.verify(table), disk)
        if bad and request.mode == "delta":
            LOG.warning("%d blocks still differ: writing the whole image", len(bad))
            result["fell_back_to_full"] = True
            run.full()
            bad = run.verify(everything)
        if bad:
            raise CommandError(f"{len(bad)} blocks of {disk.path} do not match the manifest "
                               f"after the restore (first: block {bad[0]})")
        result.update(fetched_bytes=fetcher.fetched_bytes,
                      refetched_blocks=fetcher.refetched_blocks, verified=True)
        if request.configdrive is not None:  # after the image's blocks, outside them
            os.close(fd)
            fd = -1
            result["configdrive_partition"] = configdrive.append_partition(
                disk, configdrive.load(request.configdrive, timeout_s), manifest.size)
        return result
    except BaseException:
        LOG.error("restoring %s failed: wiping its metadata", disk.path)
        if fd >= 0:
            os.close(fd)
        fd = -1
        erase.make_unbootable(disk)
        raise
    finally:
        fetcher.close()
        if fd >= 0:
            os.close(fd)
