"""The virtual media ISOs of ``redfish-virtual-media``, built once for their content and
reused by every prepare, of any node, that would build the same ISO.

An ISO is named by what goes into it: the sha256 of its kernel and ramdisk (fetched at each
prepare and hashed as they arrive), its kernel command line, the UEFI loader's sha256 and the
builder's layout (``FORMAT``). It is kept in ``<boot files dir>/vmedia/cache/iso-<sha256>``
under the image cache's rules (services/common/bootconfig/image_cache.py: at most
ENCLUME_IMAGE_CACHE_MAX_BYTES, least recently used first, one build for concurrent prepares).
A node's ISO, the one its BMC is told to insert (``vmedia/<uuid>.iso``), is a hard link to the
cached file: the cache never evicts a file that a node still has inserted (it has another link),
and the node's name is removed when the ISO is ejected.

Nodes share an ISO when their kernel command lines are the same: the deploy ISO of a node with
ports leaves out ``enclume.node`` (its agent looks the node up by its MACs); an instance ISO of
the ``ramdisk`` deploy names its node, so it is reused by that node's next deploys only.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from services.common.bootconfig.image_cache import ImageCache, ImageError, shown_url
from services.common.config import Settings
from services.drivers.base import DriverError
from services.drivers.boot import vmedia_iso

ISO_DIRECTORY = "vmedia"
CACHE_DIRECTORY = "cache"
FORMAT = "enclume-vmedia-iso-1"  # change when vmedia_iso.build lays an ISO out differently
DOWNLOAD_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Published:
    url_name: str  # the node's ISO, relative to the boot service's files directory
    key: str  # the cached ISO's name
    reused: bool  # True: no build, the cache had it


@functools.cache
def _loader_sha256() -> str:
    return hashlib.sha256(vmedia_iso.UEFI_LOADER.read_bytes()).hexdigest()


def iso_key(kernel_sha256: str, ramdisk_sha256: str, kernel_params: str) -> str:
    """The cache name of the ISO made of these."""
    content = "\n".join((FORMAT, _loader_sha256(), kernel_sha256, ramdisk_sha256,
                         kernel_params))
    return f"iso-{hashlib.sha256(content.encode()).hexdigest()}"


def download(label: str, url: str, out: Path, timeout_s: float) -> str:
    """Fetch ``url`` into ``out``; its sha256. DriverError saying which file failed."""
    hasher = hashlib.sha256()
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=timeout_s) as response:
            if not response.is_success:
                raise DriverError(f"The {label} {shown_url(url)} answered HTTP "
                                  f"{response.status_code}.")
            with out.open("wb") as file:
                for chunk in response.iter_bytes(DOWNLOAD_CHUNK):
                    hasher.update(chunk)
                    file.write(chunk)
    except httpx.HTTPError as exc:
        raise DriverError(f"The {label} {shown_url(url)} cannot be fetched: "
                          f"{type(exc).__name__}.") from None
    return hasher.hexdigest()


def _link(source: Path, target: Path) -> None:
    """``target`` becomes ``source`` at once (a hard link; a copy where links fail)."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError:
        shutil.copyfile(source, temporary)
    os.replace(temporary, target)


class IsoCache:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.iso_dir = settings.effective_boot_files_dir / ISO_DIRECTORY
        self._cache: ImageCache | None = None
        self._guard = threading.Lock()

    def cache(self) -> ImageCache:
        with self._guard:
            if self._cache is None:
                cache = ImageCache(self.iso_dir / CACHE_DIRECTORY,
                                   self.settings.images.cache_max_bytes,
                                   self.settings.images.download_timeout_s)
                cache.start()
                self._cache = cache
            return self._cache

    def node_iso(self, node_uuid: str) -> Path:
        return self.iso_dir / f"{node_uuid}.iso"

    def publish(self, node_uuid: str, files: Mapping[str, str], kernel_params: str
                ) -> Published:
        """Make ``vmedia/<node>.iso`` the ISO of ``files`` (``{label: URL}`` of the kernel,
        then the ramdisk) booted with ``kernel_params``, from the cache or built into it."""
        cache = self.cache()
        (kernel_label, kernel_url), (ramdisk_label, ramdisk_url) = files.items()
        with tempfile.TemporaryDirectory(dir=self.iso_dir, prefix=".inputs-") as work_dir:
            kernel, ramdisk = Path(work_dir) / "kernel", Path(work_dir) / "ramdisk"
            timeout = self.settings.boot.file_check_timeout_s
            key = iso_key(download(kernel_label, kernel_url, kernel, timeout),
                          download(ramdisk_label, ramdisk_url, ramdisk, timeout), kernel_params)
            reused = (cache.directory / key).exists()
            size = kernel.stat().st_size + ramdisk.stat().st_size + 2 * vmedia_iso.SLACK_BYTES
            try:
                path = cache.acquire_made(
                    key, size, lambda out: vmedia_iso.build(kernel, ramdisk, kernel_params, out))
            except ImageError as exc:
                raise DriverError(f"The virtual media ISO cannot be kept: {exc}.") from None
        try:
            _link(path, self.node_iso(node_uuid))
        finally:
            cache.release_key(key)
        return Published(f"{ISO_DIRECTORY}/{node_uuid}.iso", key, reused)

    def withdraw(self, node_uuid: str) -> None:
        """The node's ISO is no longer served (its cached file stays, evictable)."""
        self.node_iso(node_uuid).unlink(missing_ok=True)
