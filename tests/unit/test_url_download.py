"""services/drivers/url_download.py over loopback HTTP (the standard library's file server):
a file fetched whole, hashed only by ``download_hashed``; what identifies its version, with a
Last-Modified counted only when RFC 9110 calls it strong (a minute older than the answer)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest

from services.common.exceptions import DriverError
from services.drivers.url_download import download, download_hashed, validators
from tests.support.static_http import serving_directory

NOW = "Sat, 05 Dec 2026 12:00:00 GMT"
HOUR_AGO = "Sat, 05 Dec 2026 11:00:00 GMT"
SECONDS_AGO = "Sat, 05 Dec 2026 11:59:30 GMT"
LONG_AGO = "Sat, 01 Jan 2000 00:00:00 GMT"


def test_both_fetch_the_file_and_download_hashed_gives_its_sha256(tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    body = os.urandom(3 * 1024 * 1024 + 5)
    (served / "image.iso").write_bytes(body)
    os.utime(served / "image.iso", (1_700_000_000, 1_700_000_000))
    with serving_directory(served) as url:
        plain = download("image", f"{url}/image.iso", tmp_path / "plain", 10)
        digest, hashed = download_hashed("image", f"{url}/image.iso", tmp_path / "hashed", 10)
        with pytest.raises(DriverError, match=r"The kernel http://127\.0\.0\.1:\d+/gone "
                                              r"answered HTTP 404\."):
            download("kernel", f"{url}/gone?token=secret", tmp_path / "gone", 10)
    assert (tmp_path / "plain").read_bytes() == body == (tmp_path / "hashed").read_bytes()
    assert digest == hashlib.sha256(body).hexdigest()
    assert plain == hashed is not None and plain["content-length"] == str(len(body))


@pytest.mark.parametrize(("headers", "expected"), [
    ({"ETag": '"v1"', "Last-Modified": NOW, "Date": NOW},
     {"etag": '"v1"', "last-modified": NOW}),
    ({"Last-Modified": HOUR_AGO, "Date": NOW, "Content-Length": "7"},
     {"last-modified": HOUR_AGO, "content-length": "7"}),
    ({"Last-Modified": SECONDS_AGO, "Date": NOW}, None),
    ({"Last-Modified": NOW, "Date": NOW}, None),
    ({"Last-Modified": "yesterday", "Date": NOW}, None),
    ({"Last-Modified": LONG_AGO}, {"last-modified": LONG_AGO}),  # no Date: our clock's now
    ({"Content-Length": "7", "Date": NOW}, None),
], ids=["etag", "old-last-modified", "last-modified-within-the-minute", "same-second",
        "unreadable-last-modified", "no-date", "neither"])
def test_what_identifies_a_version(headers: dict[str, str],
                                   expected: dict[str, str] | None) -> None:
    assert validators(httpx.Response(200, headers=headers)) == expected
