"""Resumable uploads into the image store: bytes appended at an offset, then ingested whole.

    ROOT/uploads/<id>/upload.json   what will be made of it (the caller's ``details``), its
                                    announced size and sha256, who started it and when
    ROOT/uploads/<id>/data          the bytes received so far (its size is the offset)
    ROOT/uploads/<id>/.lock         held while a request appends to it or commits it

An upload is cut at any byte: the client asks for the offset and sends the rest. Only a
complete upload is ingested (``ImageStore.ingest_file``, checksum verified); whatever happens
then, the upload is gone, so a wrong checksum keeps nothing. Uploads untouched for longer than
their timeout are removed by ``collect``. Bytes announced by uploads in progress count against
the store's limit from the start, so an upload is refused at once rather than after hours.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.images.errors import StoreError, StoreFull
from services.images.store import ImageStore


class UnknownUpload(StoreError):
    """No upload with that id (never started, finished, or removed after its timeout)."""


class UploadConflict(StoreError):
    """The request does not fit the upload's state: wrong offset, too many bytes, busy."""


@dataclass(frozen=True)
class Upload:
    id: str
    size: int
    sha256: str
    offset: int
    details: dict[str, Any]
    created_by: str | None
    created_at: float
    updated_at: float

    @property
    def complete(self) -> bool:
        return self.offset == self.size


class Uploads:
    def __init__(self, store: ImageStore, timeout_s: float) -> None:
        self.store, self.timeout_s = store, timeout_s
        self.root = store.layout.root / "uploads"
        self.root.mkdir(parents=True, exist_ok=True)

    def _area(self, upload_id: str) -> Path:
        if not (len(upload_id) == 32 and all(c in "0123456789abcdef" for c in upload_id)):
            raise UnknownUpload(f"no upload {upload_id}")
        return self.root / upload_id

    def pending_bytes(self) -> int:
        """Bytes announced by uploads in progress: they become blocks when committed."""
        pending = 0
        for area in self.root.iterdir():
            try:
                upload = self.get(area.name)
            except (UnknownUpload, OSError, ValueError):
                continue
            pending += upload.size
        return pending

    def start(self, size: int, sha256: str, details: dict[str, Any],
              created_by: str | None) -> Upload:
        room = self.store.max_bytes - self.store.layout.used_bytes() - self.pending_bytes()
        if size > room:
            raise StoreFull(f"the image store is full: this upload of {size} bytes needs more "
                            f"than the {max(room, 0)} bytes left of "
                            f"ENCLUME_IMAGE_STORE_MAX_BYTES ({self.store.max_bytes}); delete "
                            f"versions and collect garbage, or raise the limit")
        upload_id = uuid.uuid4().hex
        area = self.root / upload_id
        area.mkdir()
        (area / "data").touch()
        (area / ".lock").touch()
        meta = {"size": size, "sha256": sha256.lower(), "details": details,
                "created_by": created_by, "created_at": time.time()}
        (area / "upload.json").write_text(json.dumps(meta))
        return self.get(upload_id)

    def get(self, upload_id: str) -> Upload:
        area = self._area(upload_id)
        try:
            meta = json.loads((area / "upload.json").read_text())
            data = (area / "data").stat()
        except FileNotFoundError:
            raise UnknownUpload(f"no upload {upload_id}") from None
        return Upload(id=upload_id, size=meta["size"], sha256=meta["sha256"],
                      offset=data.st_size, details=meta["details"],
                      created_by=meta.get("created_by"), created_at=meta["created_at"],
                      updated_at=data.st_mtime)

    @contextmanager
    def _held(self, upload_id: str) -> Iterator[Path]:
        area = self._area(upload_id)
        try:
            handle = open(area / ".lock", "a")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise UnknownUpload(f"no upload {upload_id}") from None
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UploadConflict(f"upload {upload_id} is busy: another request is sending "
                                     f"or committing it") from None
            if not (area / "upload.json").exists():
                raise UnknownUpload(f"no upload {upload_id}")
            yield area
        finally:
            handle.close()

    def writer(self, upload_id: str, offset: int, length: int | None = None) -> UploadWriter:
        """Appends bytes at ``offset`` (which must be the bytes received so far); ``length``,
        when known, is checked against the announced size before anything is written."""
        return UploadWriter(self, upload_id, offset, length)

    def commit(self, upload_id: str, version_id: str) -> Upload:
        """Ingest the complete upload as ``version_id``; the upload is gone afterwards, whether
        the ingest succeeded or not (a ChecksumMismatch keeps nothing)."""
        with self._held(upload_id) as area:
            upload = self.get(upload_id)
            if not upload.complete:
                raise UploadConflict(f"upload {upload_id} has {upload.offset} of its "
                                     f"{upload.size} bytes: send the rest before committing")
            try:
                self.store.ingest_file(version_id, area / "data", upload.sha256,
                                       upload.details.get("disk_format"))
            finally:
                _remove(area)
        return upload

    def abort(self, upload_id: str) -> None:
        with self._held(upload_id) as area:
            _remove(area)

    def collect(self, now: float | None = None) -> int:
        """Remove uploads untouched for longer than the timeout; how many were removed."""
        now = time.time() if now is None else now
        removed = 0
        for area in list(self.root.iterdir()):
            try:
                touched = max(path.stat().st_mtime for path in area.iterdir())
            except (OSError, ValueError):
                touched = area.stat().st_mtime
            if now - touched <= self.timeout_s:
                continue
            try:
                with self._held(area.name):
                    _remove(area)
                    removed += 1
            except (UnknownUpload, UploadConflict):
                continue
        return removed


class UploadWriter:
    """One request's bytes appended to an upload, under its lock."""

    def __init__(self, uploads: Uploads, upload_id: str, offset: int,
                 length: int | None) -> None:
        self._held = uploads._held(upload_id)
        area = self._held.__enter__()
        try:
            upload = uploads.get(upload_id)
            if offset != upload.offset:
                raise UploadConflict(f"upload {upload_id} has {upload.offset} bytes: send "
                                     f"from offset {upload.offset}, not {offset}")
            if length is not None and offset + length > upload.size:
                raise UploadConflict(self._too_many(upload))
            self.upload, self.received = upload, 0
            self._file = open(area / "data", "ab")  # noqa: SIM115 - closed by close()
        except BaseException:
            self._held.__exit__(None, None, None)
            raise

    def write(self, chunk: bytes) -> None:
        if self.upload.offset + self.received + len(chunk) > self.upload.size:
            raise UploadConflict(self._too_many(self.upload))
        self._file.write(chunk)
        self.received += len(chunk)

    @staticmethod
    def _too_many(upload: Upload) -> str:
        return f"upload {upload.id} was announced as {upload.size} bytes: more were sent"

    def close(self) -> int:
        """The upload's offset after this request."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        finally:
            self._held.__exit__(None, None, None)
        return self.upload.offset + self.received


def _remove(area: Path) -> None:
    (area / "upload.json").unlink(missing_ok=True)  # gone for readers before the data goes
    shutil.rmtree(area, ignore_errors=True)
