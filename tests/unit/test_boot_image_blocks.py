"""The boot service's range reads of image-store versions, over real HTTP on loopback, each
request with an image token for its version unless a test says otherwise."""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette

from services.boot.image_blocks import image_block_routes
from services.common.config import Settings
from services.images import tokens
from services.images.manifest import BLOCK_SIZE
from services.images.store import ImageStore
from tests.support.asgi import serving

DATA = os.urandom(BLOCK_SIZE) + bytes(BLOCK_SIZE) + os.urandom(1000)
SECRET = b"a secret shared by the conductor and the boot service"
DEFAULT = object()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ImageStore]]:
    store = ImageStore(tmp_path_factory.mktemp("store"), max_bytes=1 << 30)
    store.ingest_stream("v1", io.BytesIO(DATA), hashlib.sha256(DATA).hexdigest())
    app = Starlette(routes=image_block_routes(store, SECRET))
    with serving(app) as url:
        yield url, store


def get(url: str, path: str, method: str = "GET", headers: dict[str, str] | None = None,
        token: object = DEFAULT) -> tuple[int, dict[str, str], bytes]:
    """``token``: by default a valid one for the version in ``path``; None sends none."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    if token is DEFAULT:
        token = tokens.issue(SECRET, urllib.parse.unquote(path.split("/")[2]), 60)
    sent = {**(headers or {}), **({tokens.HEADER: str(token)} if token is not None else {})}
    try:
        connection.request(method, path, headers=sent)
        response = connection.getresponse()
        return response.status, dict(response.headers), response.read()
    finally:
        connection.close()


def test_the_manifest_is_served_byte_for_byte(server: tuple[str, ImageStore]) -> None:
    url, store = server
    status, _, body = get(url, "/image-versions/v1/manifest")
    assert status == 200
    assert hashlib.sha256(body).hexdigest() == store.manifest_sha256("v1")


@pytest.mark.parametrize(("header", "start", "end"), [
    (f"bytes={BLOCK_SIZE - 5}-{BLOCK_SIZE + 4}", BLOCK_SIZE - 5, BLOCK_SIZE + 4),
    ("bytes=-10", len(DATA) - 10, len(DATA) - 1),
    (f"bytes={2 * BLOCK_SIZE}-", 2 * BLOCK_SIZE, len(DATA) - 1),
    (f"bytes=0-{len(DATA) + 100}", 0, len(DATA) - 1),
])
def test_one_range_is_answered_206(server: tuple[str, ImageStore], header: str, start: int,
                                   end: int) -> None:
    status, headers, body = get(server[0], "/image-versions/v1/disk", headers={"Range": header})
    assert status == 206
    assert headers["content-range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert body == DATA[start:end + 1]


def test_the_whole_disk_without_a_range_and_head(server: tuple[str, ImageStore]) -> None:
    status, _, body = get(server[0], "/image-versions/v1/disk")
    assert (status, body) == (200, DATA)
    status, headers, body = get(server[0], "/image-versions/v1/disk", "HEAD")
    assert (status, headers["content-length"], body) == (200, str(len(DATA)), b"")


@pytest.mark.parametrize("header", [f"bytes={len(DATA)}-", "bytes=5-2", "bytes=0-1,4-5",
                                    "items=0-1", "bytes=-0"])
def test_unsatisfiable_or_several_ranges_get_416(server: tuple[str, ImageStore],
                                                 header: str) -> None:
    status, headers, _ = get(server[0], "/image-versions/v1/disk", headers={"Range": header})
    assert status == 416
    assert headers["content-range"] == f"bytes */{len(DATA)}"


def test_unknown_and_hostile_versions(server: tuple[str, ImageStore], tmp_path: Path) -> None:
    assert get(server[0], "/image-versions/v2/disk")[0] == 404
    assert get(server[0], "/image-versions/v2/manifest")[0] == 404
    assert get(server[0], "/image-versions/..%2Fblocks/manifest")[0] in (400, 404)
    assert get(server[0], "/image-versions/.x/disk")[0] == 400
    digest = server[1].manifest("v1").blocks[0]
    assert get(server[0], f"/image-versions/{digest}/disk")[0] == 404, "no block by its hash"


def test_no_token_an_expired_one_or_another_versions_is_403(
        server: tuple[str, ImageStore]) -> None:
    url = server[0]
    for path in ("/image-versions/v1/disk", "/image-versions/v1/manifest"):
        status, _, body = get(url, path, token=None)
        assert (status, b"X-Image-Token" in body) == (403, True)
        assert get(url, path, token=tokens.issue(SECRET, "v1", -1))[0] == 403
        assert get(url, path, token=tokens.issue(SECRET, "v2", 60))[0] == 403
        assert get(url, path, token=tokens.issue(b"another secret", "v1", 60))[0] == 403
        assert get(url, path, token="garbage")[0] == 403
    assert get(url, "/image-versions/v2/disk", token=None)[0] == 403, "no existence oracle"
    status, _, body = get(url, "/image-versions/v1/disk", headers={"Range": "bytes=0-9"},
                          token=tokens.issue(SECRET, "v1", 60))
    assert (status, body) == (206, DATA[:10])


def test_a_token_is_refused_once_expired(tmp_path: Path) -> None:
    token = tokens.issue(SECRET, "v1", 10, now=1000.0)
    assert tokens.refusal(SECRET, "v1", token, now=1005.0) is None
    assert "expired" in str(tokens.refusal(SECRET, "v1", token, now=1011.0))
    assert "not valid for version v2" in str(tokens.refusal(SECRET, "v2", token, now=1005.0))


def test_the_secret_comes_from_the_settings_or_is_made_once_per_data_dir(
        tmp_path: Path) -> None:
    made = tokens.load_secret(Settings(data_dir=tmp_path))
    assert len(made) >= 32 and tokens.load_secret(Settings(data_dir=tmp_path)) == made
    assert (tmp_path / tokens.SECRET_FILE_NAME).stat().st_mode & 0o077 == 0
    assert tokens.load_secret(Settings(data_dir=tmp_path, image_token_secret="s3cret")) == \
        b"s3cret"
    (tmp_path / "secret").write_text("from a file\n")
    assert tokens.load_secret(Settings(data_dir=tmp_path, image_token_secret="s3cret",
                                       image_token_secret_file=tmp_path / "secret")) == \
        b"from a file"
