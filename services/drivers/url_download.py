"""An image fetched from a URL into a file (the deploy ISO's kernel and ramdisk, a virtual
media image served by the boot service), with the URL shown without its secrets."""

from __future__ import annotations

from pathlib import Path

import httpx

from services.common.bootconfig.image_cache import shown_url
from services.common.exceptions import DriverError

CHUNK = 1024 * 1024


def download(what: str, url: str, out: Path, timeout_s: float) -> None:
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=timeout_s) as response:
            if not response.is_success:
                raise DriverError(f"The {what} {shown_url(url)} answered HTTP "
                                  f"{response.status_code}.")
            with out.open("wb") as file:
                for chunk in response.iter_bytes(CHUNK):
                    file.write(chunk)
    except httpx.HTTPError as exc:
        raise DriverError(f"The {what} {shown_url(url)} cannot be fetched: "
                          f"{type(exc).__name__}.") from None
