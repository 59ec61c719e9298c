"""The virtual media ISOs of ``redfish-virtual-media``, built once for their content and
reused by every prepare, of any node, that would build the same ISO.

An ISO is named by what goes into it: the sha256 of its kernel and ramdisk, its kernel command
line, the UEFI loader's sha256 and the builder's layout (``FORMAT``). The kernel and ramdisk are
hashed as they are downloaded; their sha256 is remembered with the validators their server
answered (``ETag``, ``Last-Modified``, ``Content-Length``) in ``vmedia/.sources/``, and a later
prepare whose HEAD answers the same validators takes the remembered sha256 without downloading
(as Ironic's image cache trusts an HTTP image's ``Last-Modified``); a server that gives no ETag
and a Last-Modified less than a minute older than its answer (RFC 9110's weak one: the file may
change again within the same second) has its files downloaded at each prepare, as one that
gives neither. When the ISO is not cached the
files are downloaded, and a content that no longer has the remembered sha256 fails the prepare
(try again: the remembered one is replaced).

The ISO is kept in ``<boot files dir>/vmedia/cache/iso-<sha256>`` under the image cache's
rules (services/common/bootconfig/image_cache.py: at most ENCLUME_IMAGE_CACHE_MAX_BYTES, least
recently used first, one build for concurrent prepares).
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
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from services.common.bootconfig.image_cache import ImageCache, ImageError, StartedAtFirstUse
from services.common.config import Settings
from services.drivers.base import DriverError
from services.drivers.boot import vmedia_iso
from services.drivers.url_download import download_hashed, validators

ISO_DIRECTORY = "vmedia"
CACHE_DIRECTORY = "cache"
SOURCES_DIRECTORY = ".sources"
FORMAT = "enclume-vmedia-iso-1"  # change when vmedia_iso.build lays an ISO out differently


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




class _Inputs:
    """The kernel and ramdisk of one prepare: their sha256, downloaded only when needed."""

    def __init__(self, files: Mapping[str, str], work: Path, sources: Path,
                 timeout_s: float) -> None:
        self.files = list(files.items())
        self.paths = [work / "kernel", work / "ramdisk"]
        self.sources = sources
        self.timeout_s = timeout_s
        self.fetched = False

    def _record(self, url: str) -> Path:
        return self.sources / f"{hashlib.sha256(url.encode()).hexdigest()}.json"

    def remembered(self) -> list[str] | None:
        """Their sha256 if each one's server answers a HEAD with the validators of the last
        download; else None."""
        digests = []
        for _, url in self.files:
            try:
                known = json.loads(self._record(url).read_text())
                response = httpx.head(url, follow_redirects=True, timeout=self.timeout_s)
            except (OSError, ValueError, httpx.HTTPError):
                return None
            if not response.is_success or validators(response) != known.get("validators"):
                return None
            digests.append(str(known["sha256"]))
        return digests

    def fetch(self, expected: list[str] | None = None) -> list[str]:
        digests = []
        self.sources.mkdir(parents=True, exist_ok=True)
        for (label, url), path in zip(self.files, self.paths, strict=True):
            digest, version = download_hashed(label, url, path, self.timeout_s)
            record = self._record(url)
            if version is None:
                record.unlink(missing_ok=True)
            else:
                record.write_text(json.dumps({"validators": version, "sha256": digest}))
            digests.append(digest)
        self.fetched = True
        if expected is not None and digests != expected:
            raise DriverError(f"The {' and '.join(label for label, _ in self.files)} changed "
                              f"while their server answered the same ETag/Last-Modified; "
                              f"prepare again.")
        return digests

    def size_hint(self) -> int:
        if not self.fetched:
            return 0
        return sum(path.stat().st_size for path in self.paths) + 2 * vmedia_iso.SLACK_BYTES

    def build(self, expected: list[str], kernel_params: str, out: Path) -> None:
        if not self.fetched:  # the ISO was evicted: the files are needed after all
            self.fetch(expected)
        vmedia_iso.build(*self.paths, kernel_params, out)


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
        # Conductors share the files directory: each builds in its own partial one.
        self.cache = StartedAtFirstUse(lambda: ImageCache(
            self.iso_dir / CACHE_DIRECTORY, settings.images.cache_max_bytes,
            settings.images.download_timeout_s,
            partial_name=f".partial-{settings.conductor.hostname}"))

    def node_iso(self, node_uuid: str) -> Path:
        return self.iso_dir / f"{node_uuid}.iso"

    def publish(self, node_uuid: str, files: Mapping[str, str], kernel_params: str
                ) -> Published:
        """Make ``vmedia/<node>.iso`` the ISO of ``files`` (``{label: URL}`` of the kernel,
        then the ramdisk) booted with ``kernel_params``, from the cache or built into it."""
        cache = self.cache()
        with tempfile.TemporaryDirectory(dir=cache.partial, prefix="inputs-") as work_dir:
            inputs = _Inputs(files, Path(work_dir), self.iso_dir / SOURCES_DIRECTORY,
                             self.settings.boot.file_check_timeout_s)
            digests = inputs.remembered() or inputs.fetch()
            key = iso_key(*digests, kernel_params)
            reused = (cache.directory / key).exists()
            try:
                path = cache.acquire_made(key, inputs.size_hint(),
                                          lambda out: inputs.build(digests, kernel_params, out))
            except ImageError as exc:
                raise DriverError(f"The virtual media ISO cannot be kept: {exc}.") from None
            except OSError as exc:  # a full disk, or another conductor evicted it meanwhile
                raise DriverError(f"The virtual media ISO {key} could not be stored: "
                                  f"{exc.strerror or exc}; prepare again.") from None
        try:
            _link(path, self.node_iso(node_uuid))
        except OSError as exc:  # evicted by another conductor in between, or a full disk
            raise DriverError(f"The virtual media ISO {key} could not be served as node "
                              f"{node_uuid}'s: {exc.strerror or exc}; prepare again.") from None
        finally:
            cache.release_key(key)
        return Published(f"{ISO_DIRECTORY}/{node_uuid}.iso", key, reused)

    def withdraw(self, node_uuid: str) -> None:
        """The node's ISO is no longer served (its cached file stays, evictable)."""
        self.node_iso(node_uuid).unlink(missing_ok=True)
