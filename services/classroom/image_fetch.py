"""A version created with ``"fetch": true`` is ingested from its source URL in the background.

The API process runs one thread per fetch (the request that created the version returns at
once, the version ``ingesting``); the bytes stream from the URL into ``ImageStore.ingest_stream``
and are never whole in memory. The version ends ``available``, or ``failed`` with the reason
(nothing kept). A fetch cut by a restart of the API stays ``ingesting`` until ``enclume image
gc`` marks it failed after ENCLUME_IMAGE_UPLOAD_TIMEOUT_S.
"""

from __future__ import annotations

import logging
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import BinaryIO

import httpx
from sqlalchemy import select

from services.classroom.image_versions import forget_in_store, set_state
from services.common.classroom_models import ImageVersion
from services.common.db import Database
from services.common.models import utcnow
from services.common.secrets import scrub
from services.images.errors import StoreError
from services.images.store import ImageStore

LOG = logging.getLogger(__name__)
CHUNK = 1024 * 1024
CONNECT_TIMEOUT_S = 30.0


class _Chunks:
    """A binary stream over an iterator of byte chunks (an HTTP response's body)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._buffer = chunks, b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self._buffer += chunk
        cut = len(self._buffer) if size < 0 else size
        data, self._buffer = self._buffer[:cut], self._buffer[cut:]
        return data


@contextmanager
def open_source(url: str) -> Iterator[BinaryIO]:
    """The body of an http(s) or file URL as a binary stream."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        with open(urllib.request.url2pathname(parts.path), "rb") as local:
            yield local
        return
    if parts.scheme not in ("http", "https"):
        raise StoreError(f"cannot fetch {url}: only http, https and file URLs are fetched")
    timeout = httpx.Timeout(CONNECT_TIMEOUT_S, read=300.0)
    with httpx.Client(timeout=timeout, follow_redirects=True) as client, \
            client.stream("GET", url) as response:
        if response.status_code != 200:
            raise StoreError(f"{url} answered HTTP {response.status_code}")
        yield _Chunks(response.iter_bytes(CHUNK))  # type: ignore[misc]


def fetch(db: Database, store: ImageStore, version_uuid: str) -> None:
    """Ingest the version from its source; its state says how it ended."""
    with db.session() as session:
        version = session.scalar(select(ImageVersion).where(ImageVersion.uuid == version_uuid))
        if version is None:
            return
        url, sha256, disk_format = version.source, version.checksum, version.disk_format
    reason: str | None = None
    try:
        with open_source(url) as stream:
            store.ingest_stream(version_uuid, stream, sha256, disk_format)
    except Exception as exc:  # whatever it was, the version must not stay ingesting
        reason = scrub(str(exc) or type(exc).__name__)
        LOG.warning("fetching image version %s failed: %s", version_uuid, reason)
    with db.session() as session:
        version = session.scalar(select(ImageVersion).where(ImageVersion.uuid == version_uuid))
        if version is None:  # deleted while it was fetched
            forget_in_store(store, version_uuid)
            return
        set_state(version, "failed" if reason else "available", reason)


def start_fetch(db: Database, store: ImageStore, version_uuid: str) -> threading.Thread:
    thread = threading.Thread(target=_logged_fetch, args=(db, store, version_uuid),
                              name=f"image-fetch-{version_uuid[:8]}", daemon=True)
    thread.start()
    return thread


def _logged_fetch(db: Database, store: ImageStore, version_uuid: str) -> None:
    try:
        fetch(db, store, version_uuid)
    except Exception:
        LOG.exception("fetching image version %s failed", version_uuid)


def fail_stale_fetches(db: Database, timeout_s: float) -> int:
    """Versions left ``ingesting`` longer than ``timeout_s`` (their fetch died with its
    process) are marked failed; how many."""
    limit = utcnow() - timedelta(seconds=timeout_s)
    with db.session() as session:
        stale = session.scalars(select(ImageVersion).where(
            ImageVersion.state == "ingesting", ImageVersion.state_changed_at < limit)).all()
        for version in stale:
            set_state(version, "failed", "the fetch was interrupted (the API stopped while it "
                                         "ran): delete the version and add it again")
        return len(stale)
