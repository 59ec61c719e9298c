"""A file fetched from a URL (the deploy ISO's kernel and ramdisk, a virtual media image
served by the boot service), with its sha256 and what identifies its version on the server,
and the URL shown without its secrets in errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from services.common.bootconfig.image_cache import shown_url
from services.common.exceptions import DriverError

CHUNK = 1024 * 1024
VALIDATORS = ("etag", "last-modified", "content-length")


def validators(response: httpx.Response) -> dict[str, str] | None:
    """What identifies the version of a file the server answered; None if it says too little."""
    found = {name: response.headers[name] for name in VALIDATORS if name in response.headers}
    return found if "etag" in found or "last-modified" in found else None


def download(what: str, url: str, out: Path, timeout_s: float
             ) -> tuple[str, dict[str, str] | None]:
    """Fetch ``url`` into ``out``; its sha256 and validators. DriverError saying which file
    failed."""
    hasher = hashlib.sha256()
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=timeout_s) as response:
            if not response.is_success:
                raise DriverError(f"The {what} {shown_url(url)} answered HTTP "
                                  f"{response.status_code}.")
            with out.open("wb") as file:
                for chunk in response.iter_bytes(CHUNK):
                    hasher.update(chunk)
                    file.write(chunk)
            return hasher.hexdigest(), validators(response)
    except httpx.HTTPError as exc:
        raise DriverError(f"The {what} {shown_url(url)} cannot be fetched: "
                          f"{type(exc).__name__}.") from None
