"""The image cache: each image downloaded once, verified, kept within a size (the boot service
serves images from it, the iscsi deploy interface writes them from it).

- An image is named by its checksum (``sha256-<hex>``), so the same content is stored once
  whatever its URL. It is downloaded (httpx, streamed) into ``.partial/`` while its checksum is
  computed, and renamed to its final name only once complete and verified: a reader never sees
  a half file under a final name, and a failed download leaves nothing behind.
- Concurrent requests for one image share one download; the later ones wait for it.
- The cache holds at most ``max_bytes``: after each download and release, the least recently
  used images are removed until it fits, never one that is being served or downloaded (nor one
  with another hard link: a node's virtual media ISO). A file's modification time is its last
  use, so the order survives a restart.
- Checksums are Ironic's ``instance_info`` keys: ``image_os_hash_algo`` + ``image_os_hash_value``,
  else ``image_checksum`` (``algo:hex``, or plain hex whose length says md5/sha256/sha512).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from services.common.metrics import IMAGE_CACHE_LOOKUPS

LOG = logging.getLogger(__name__)

ALGORITHMS = ("md5", "sha256", "sha512")
_ALGORITHM_OF_LENGTH = {32: "md5", 64: "sha256", 128: "sha512"}
CHUNK_BYTES = 1024 * 1024
PARTIAL_DIR = ".partial"


class ImageError(Exception):
    """An image cannot be provided; the message says why and is safe to show."""


class InvalidImageSource(ImageError):
    pass


class DownloadFailed(ImageError):
    pass


class ChecksumMismatch(DownloadFailed):
    pass


class ImageTooLarge(ImageError):
    pass


@dataclass(frozen=True)
class ImageSource:
    url: str
    algorithm: str
    digest: str

    @property
    def key(self) -> str:
        return f"{self.algorithm}-{self.digest}"

    @property
    def shown(self) -> str:
        return shown_url(self.url)


def shown_url(url: str) -> str:
    """The URL without credentials or query (which may hold tokens), for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def _hex(value: str, what: str) -> str:
    digest = value.strip().lower()
    if not digest or any(c not in "0123456789abcdef" for c in digest):
        raise InvalidImageSource(f"{what} is not a hexadecimal checksum")
    return digest


def source_of(instance_info: Mapping[str, Any]) -> ImageSource:
    """The image to deploy and its checksum, from Ironic's ``instance_info`` keys."""
    url = instance_info.get("image_source")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InvalidImageSource("instance_info/image_source must be an http:// or https:// URL "
                                 "for the boot service to cache it")
    algo, value = instance_info.get("image_os_hash_algo"), instance_info.get("image_os_hash_value")
    if algo or value:
        if algo not in ALGORITHMS or not isinstance(value, str):
            raise InvalidImageSource(f"instance_info/image_os_hash_algo must be one of "
                                     f"{', '.join(ALGORITHMS)} with image_os_hash_value set")
        algorithm, digest = str(algo), _hex(value, "instance_info/image_os_hash_value")
    else:
        checksum = instance_info.get("image_checksum")
        if not isinstance(checksum, str) or not checksum.strip():
            raise InvalidImageSource("the image has no checksum: set instance_info/"
                                     "image_os_hash_algo and image_os_hash_value, or "
                                     "image_checksum")
        if checksum.startswith(("http://", "https://")):
            raise InvalidImageSource("instance_info/image_checksum as a URL is not supported; "
                                     "give the checksum itself")
        named, _, rest = checksum.partition(":")
        if rest:
            if named.lower() not in ALGORITHMS:
                raise InvalidImageSource(f"unknown checksum algorithm {named!r} in "
                                         f"instance_info/image_checksum")
            algorithm, digest = named.lower(), _hex(rest, "instance_info/image_checksum")
        else:
            digest = _hex(checksum, "instance_info/image_checksum")
            if len(digest) not in _ALGORITHM_OF_LENGTH:
                raise InvalidImageSource("instance_info/image_checksum has the length of no "
                                         "md5, sha256 or sha512 checksum")
            algorithm = _ALGORITHM_OF_LENGTH[len(digest)]
    expected = hashlib.new(algorithm).digest_size * 2
    if len(digest) != expected:
        raise InvalidImageSource(f"a {algorithm} checksum has {expected} hexadecimal digits, "
                                 f"not {len(digest)}")
    return ImageSource(url, algorithm, digest)


class ImageCache:
    def __init__(self, directory: Path, max_bytes: int, timeout_s: float,
                 client: httpx.Client | None = None, partial_name: str = PARTIAL_DIR) -> None:
        """``partial_name``: this process's own directory of unfinished files, where several
        processes share ``directory`` (``start`` removes what it holds)."""
        self.directory = directory
        self.max_bytes = max_bytes
        self.partial = directory / partial_name
        self._client = client or httpx.Client(timeout=timeout_s, follow_redirects=True)
        self._owns_client = client is None
        self._lock = threading.Lock()
        self._in_use: Counter[str] = Counter()
        self._downloads: dict[str, Future[None]] = {}

    def start(self) -> None:
        self.partial.mkdir(parents=True, exist_ok=True)
        for leftover in self.partial.iterdir():  # downloads or builds cut off by a stop
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
        self.make_room(0)

    def stop(self) -> None:
        if self._owns_client:
            self._client.close()

    def path_of(self, source: ImageSource) -> Path:
        return self.directory / source.key

    @contextmanager
    def image(self, source: ImageSource) -> Iterator[Path]:
        """The verified local copy of ``source``, kept from eviction while the block runs."""
        path = self.acquire(source)
        try:
            yield path
        finally:
            self.release(source)

    def acquire(self, source: ImageSource) -> Path:
        """Download ``source`` unless cached, and hold it until ``release``."""
        return self._acquire(source.key, lambda: self._download(source))

    def acquire_built(self, key: str, size: int, chunks: Callable[[], Iterable[bytes]]) -> Path:
        """The file ``key`` made from ``chunks()`` (``size`` bytes) unless cached, held until
        ``release_key``: a local copy of something the service holds in another form (the
        multicast sender's regular file of an image store version)."""
        return self._acquire(key, lambda: self._build(key, size, chunks))

    def acquire_made(self, key: str, size: int, make: Callable[[Path], None]) -> Path:
        """The file ``key`` that ``make(path)`` writes (about ``size`` bytes) unless cached,
        held until ``release_key``: something built from other files (a virtual media ISO)."""
        return self._acquire(key, lambda: self._make(key, size, make))

    def _acquire(self, key: str, fetch: Callable[[], None]) -> Path:
        path = self.directory / key
        with self._lock:
            self._in_use[key] += 1
            cached = path.exists()
            pending = None if cached else self._downloads.get(key)
            owner = not cached and pending is None
            if owner:
                pending = self._downloads[key] = Future()
        IMAGE_CACHE_LOOKUPS.labels("hit" if cached else "miss").inc()
        try:
            if owner:
                assert pending is not None
                self._fetch_for_all(key, fetch, pending)
            elif pending is not None:
                pending.result()
            os.utime(path)  # its last use, for eviction
        except BaseException:
            self.release_key(key)
            raise
        return path

    def release(self, source: ImageSource) -> None:
        self.release_key(source.key)

    def release_key(self, key: str) -> None:
        with self._lock:
            self._in_use[key] -= 1
            if self._in_use[key] <= 0:
                del self._in_use[key]
        self.make_room(0)

    def _fetch_for_all(self, key: str, fetch: Callable[[], None],
                       pending: Future[None]) -> None:
        try:
            fetch()
        except BaseException as exc:
            pending.set_exception(exc)
            raise
        else:
            pending.set_result(None)
        finally:
            with self._lock:
                self._downloads.pop(key, None)

    def _build(self, key: str, size: int, chunks: Callable[[], Iterable[bytes]]) -> None:
        self._make(key, size, lambda path: _write(path, chunks()))

    def _make(self, key: str, size: int, make: Callable[[Path], None]) -> None:
        if size > self.max_bytes:
            raise ImageTooLarge(f"{key} is larger ({size} bytes) than the image cache "
                                f"(ENCLUME_IMAGE_CACHE_MAX_BYTES={self.max_bytes})")
        self.partial.mkdir(parents=True, exist_ok=True)
        self.make_room(size, keep=key)
        fd, temporary = tempfile.mkstemp(dir=self.partial, prefix=f"{key}.")
        os.close(fd)
        try:
            make(Path(temporary))
            os.replace(temporary, self.directory / key)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        LOG.info("cached %s: %d bytes", key, (self.directory / key).stat().st_size)

    def _download(self, source: ImageSource) -> None:
        LOG.info("downloading image %s (%s)", source.shown, source.key)
        try:
            with self._client.stream("GET", source.url) as response:
                if response.status_code != 200:
                    raise DownloadFailed(f"{source.shown} answered HTTP {response.status_code}")
                announced = _content_length(response)
                if announced is not None and announced > self.max_bytes:
                    raise ImageTooLarge(self._too_large(source, announced))
                self._make(source.key, announced or 0,
                           lambda path: _write(path, self._verified(source, response)))
        except httpx.HTTPError as exc:
            raise DownloadFailed(f"downloading {source.shown} failed: "
                                 f"{type(exc).__name__}") from None

    def _verified(self, source: ImageSource, response: httpx.Response) -> Iterator[bytes]:
        """The body's chunks; ImageTooLarge past the cache's size, ChecksumMismatch at its end
        unless it has ``source``'s checksum."""
        hasher = hashlib.new(source.algorithm)
        size = 0
        for chunk in response.iter_bytes(CHUNK_BYTES):
            size += len(chunk)
            if size > self.max_bytes:
                raise ImageTooLarge(self._too_large(source, size))
            hasher.update(chunk)
            yield chunk
        actual = hasher.hexdigest()
        if actual != source.digest:
            raise ChecksumMismatch(f"the {source.algorithm} checksum of {source.shown} is "
                                   f"{actual}, expected {source.digest}; not cached")

    def _too_large(self, source: ImageSource, size: int) -> str:
        return (f"{source.shown} is larger ({size} bytes) than the image cache "
                f"(ENCLUME_IMAGE_CACHE_MAX_BYTES={self.max_bytes})")

    def make_room(self, incoming: int, keep: str | None = None) -> list[str]:
        """Evict least recently used images not in use until ``incoming`` more bytes fit."""
        evicted: list[str] = []
        with self._lock:
            cached = [(stat.st_mtime, stat.st_size, name)
                      for name, stat in _files(self.directory)]
            downloading = sum(stat.st_size for _, stat in _files(self.partial))
            total = sum(size for _, size, _ in cached) + downloading + incoming
            for _, size, name in sorted(cached):
                if total <= self.max_bytes:
                    break
                if name in self._in_use or name == keep or _linked(self.directory / name):
                    continue
                (self.directory / name).unlink(missing_ok=True)
                total -= size
                evicted.append(name)
        for name in evicted:
            LOG.info("evicted image %s from the cache", name)
        if total > self.max_bytes:
            LOG.warning("the image cache holds %d bytes, over its %d: the rest is in use",
                        total, self.max_bytes)
        return evicted


class StartedAtFirstUse:
    """An image cache made and started by its first caller (a driver's: created with the
    conductor, used only by the nodes that need it)."""

    def __init__(self, make: Callable[[], ImageCache]) -> None:
        self._make = make
        self._cache: ImageCache | None = None
        self._guard = threading.Lock()

    def __call__(self) -> ImageCache:
        with self._guard:
            if self._cache is None:
                cache = self._make()
                cache.start()
                self._cache = cache
            return self._cache


def _write(path: Path, chunks: Iterable[bytes]) -> None:
    with path.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())


def _files(directory: Path) -> Iterator[tuple[str, os.stat_result]]:
    """The regular files of ``directory`` with their stat; files removed meanwhile are skipped."""
    for entry in os.scandir(directory):
        try:
            if entry.is_file(follow_symlinks=False):
                yield entry.name, entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue


def _linked(path: Path) -> bool:
    """Served under another name too (a node's inserted virtual media ISO is a hard link to
    its cached file): in use, and removing this name would free nothing."""
    try:
        return path.stat().st_nlink > 1
    except FileNotFoundError:
        return False


def _content_length(response: httpx.Response) -> int | None:
    try:
        value = int(response.headers.get("content-length", ""))
    except ValueError:
        return None
    return value if value >= 0 else None
