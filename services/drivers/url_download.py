"""A file fetched from a URL (the deploy ISO's kernel and ramdisk, a virtual media image
served by the boot service), with what identifies its version on the server, its sha256 only
for the callers that use it, and the URL shown without its secrets in errors."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx

from services.common.bootconfig.image_cache import shown_url
from services.common.exceptions import DriverError

CHUNK = 1024 * 1024
VALIDATORS = ("etag", "last-modified", "content-length")
# RFC 9110 8.8.2.2: a Last-Modified is strong only this long before the response's Date (a
# file changed twice within its one-second resolution would keep it).
STRONG_LAST_MODIFIED_AGE = timedelta(seconds=60)


def _http_date(value: str | None) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None


def _strong_last_modified(response: httpx.Response) -> bool:
    modified = _http_date(response.headers.get("last-modified"))
    answered = _http_date(response.headers.get("date")) or datetime.now(UTC)
    if modified is None or modified.tzinfo is None or answered.tzinfo is None:
        return False
    return modified <= answered - STRONG_LAST_MODIFIED_AGE


def validators(response: httpx.Response) -> dict[str, str] | None:
    """What identifies the version of a file the server answered: its ETag, or a Last-Modified
    at least a minute older than the answer; None if it says too little."""
    if "etag" not in response.headers and not _strong_last_modified(response):
        return None
    return {name: response.headers[name] for name in VALIDATORS if name in response.headers}


def _fetch(what: str, url: str, out: Path, timeout_s: float,
           on_chunk: Callable[[bytes], object] | None) -> dict[str, str] | None:
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=timeout_s) as response:
            if not response.is_success:
                raise DriverError(f"The {what} {shown_url(url)} answered HTTP "
                                  f"{response.status_code}.")
            with out.open("wb") as file:
                for chunk in response.iter_bytes(CHUNK):
                    if on_chunk is not None:
                        on_chunk(chunk)
                    file.write(chunk)
            return validators(response)
    except httpx.HTTPError as exc:
        raise DriverError(f"The {what} {shown_url(url)} cannot be fetched: "
                          f"{type(exc).__name__}.") from None


def download(what: str, url: str, out: Path, timeout_s: float) -> dict[str, str] | None:
    """Fetch ``url`` into ``out``; its validators. DriverError saying which file failed."""
    return _fetch(what, url, out, timeout_s, None)


def download_hashed(what: str, url: str, out: Path, timeout_s: float
                    ) -> tuple[str, dict[str, str] | None]:
    """``download``, and the sha256 of the file computed as it arrives."""
    hasher = hashlib.sha256()
    version = _fetch(what, url, out, timeout_s, hasher.update)
    return hasher.hexdigest(), version
