"""Versions made through the real enclume-aio: resumable uploads into the image store (cut and
resumed, a wrong checksum keeping nothing, larger than the API's body limit, beyond the
store's quota), fetches from a URL, deletion rules, gc, roles, and the `enclume image`
commands against the live API."""

from __future__ import annotations

import base64
import hashlib
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.images.manifest import BLOCK_SIZE
from services.images.store import ImageStore
from tests.integration.test_enclume_cli import Enclume
from tests.support.aio import Server, running_aio
from tests.support.api_stack import fault
from tests.support.classroom_users import write_users_file

pytestmark = pytest.mark.integration
E = "/enclume/v1"
PASSWORD = "a long password"
BODY_LIMIT = 64 * 1024  # the API's body limit here: uploads are not bound by it
STORE_MAX = 96 * 1024 * 1024


def disk_bytes(seed: int, blocks: int = 3) -> bytes:
    """A small disk: random blocks with an all-zero one between, a short last block."""
    noise = hashlib.sha256(str(seed).encode()).digest() * (BLOCK_SIZE // 32)
    return noise + bytes(BLOCK_SIZE) + noise[: (blocks - 2) * BLOCK_SIZE - 4096]


@pytest.fixture(scope="module")
def aio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("images-aio")
    users_file = write_users_file(
        directory, {"admin": (["admin"], []), "alice": (["teacher"], ["B12"])}, PASSWORD)
    env = {"ENCLUME_AUTH_STRATEGY": "users_file",
           "ENCLUME_USERS_FILE": str(users_file),
           "ENCLUME_MAX_REQUEST_BODY_BYTES": str(BODY_LIMIT),
           "ENCLUME_IMAGE_STORE_MAX_BYTES": str(STORE_MAX)}
    with running_aio(directory / "data", env=env) as server:
        yield server


@pytest.fixture(scope="module")
def admin(aio: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=aio.url, auth=("admin", PASSWORD), timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def store(aio: Server) -> ImageStore:
    """The aio's store, read from the test (the same directory)."""
    return ImageStore(aio.data_dir / "image-store", STORE_MAX)


def made(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def start(admin: httpx.Client, image: str, version: str, data: bytes,
          checksum: str | None = None) -> str:
    upload = made(admin.post(f"{E}/images/{image}/uploads", json={
        "version": version, "size": len(data),
        "checksum": checksum or hashlib.sha256(data).hexdigest()}))
    assert upload["offset"] == 0
    return f"{E}/images/{image}/uploads/{upload['id']}"


def send(admin: httpx.Client, upload: str, offset: int, piece: bytes) -> httpx.Response:
    """PATCH a piece; while the request that was cut still holds the upload (it is writing
    what arrived), the answer is 409 "busy": sent again then, as the CLI does."""
    deadline = time.monotonic() + 10
    while True:
        answer = admin.patch(upload, content=piece, headers={"Upload-Offset": str(offset)})
        if answer.status_code != 409 or "is busy" not in answer.text or \
                time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def cut_request(server: Server, upload: str, offset: int, announced: int, piece: bytes) -> None:
    """A PATCH announcing ``announced`` bytes whose connection dies after ``piece``."""
    address = httpx.URL(server.url)
    credentials = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    with socket.create_connection((address.host, address.port), timeout=10) as connection:
        connection.sendall((f"PATCH {upload} HTTP/1.1\r\nHost: {address.host}\r\n"
                            f"Authorization: Basic {credentials}\r\n"
                            f"Upload-Offset: {offset}\r\nContent-Length: {announced}\r\n\r\n"
                            ).encode() + piece)
        time.sleep(0.5)  # let the server take the bytes in before the line goes dead


def received(admin: httpx.Client, upload: str, at_least: int) -> int:
    """The upload's offset once the server has seen the cut (it writes what arrived)."""
    deadline = time.monotonic() + 10
    while True:
        offset = int(made(admin.get(upload), 200)["offset"])
        if offset >= at_least or time.monotonic() > deadline:
            return offset
        time.sleep(0.1)


def test_an_upload_cut_twice_resumes_and_makes_an_available_version(
        aio: Server, admin: httpx.Client, store: ImageStore) -> None:
    made(admin.post(f"{E}/images", json={"name": "debian"}))
    data = disk_bytes(1)
    upload = start(admin, "debian", "v1", data)
    cut_request(aio, upload, 0, len(data), data[:3 * 1024 * 1024 + 17])
    offset = received(admin, upload, 3 * 1024 * 1024 + 17)
    assert 0 < offset <= 3 * 1024 * 1024 + 17
    assert "send from offset" in fault(send(admin, upload, 0, data[:10]), 409)
    cut_request(aio, upload, offset, len(data) - offset, data[offset:offset + BLOCK_SIZE])
    offset = received(admin, upload, offset + BLOCK_SIZE)
    assert "more were sent" in fault(send(admin, upload, offset, data[offset:] + b"x"), 409)
    answer = send(admin, upload, offset, data[offset:])  # far over the API's body limit
    assert made(answer, 200)["offset"] == len(data) == int(answer.headers["Upload-Offset"])
    version = made(admin.post(f"{upload}/commit"))
    assert (version["state"], version["reason"]) == ("available", None)
    summary = version["store"]
    assert (summary["size"], summary["blocks"], summary["zero_blocks"]) == (len(data), 3, 1)
    assert summary["stored_bytes"] == len(data) - BLOCK_SIZE
    assert summary["image_sha256"] == hashlib.sha256(data).hexdigest()
    assert b"".join(store.read_range(version["uuid"], 0, len(data))) == data
    assert made(admin.get(upload), 404) is not None  # the upload is gone once committed
    shown = made(admin.get(f"{E}/images/debian"), 200)["versions"]
    assert [(v["version"], v["state"]) for v in shown] == [("v1", "available")]


def test_a_qcow2_upload_is_stored_as_its_virtual_disk(tmp_path: Path, admin: httpx.Client,
                                                      store: ImageStore) -> None:
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img (Debian package qemu-utils) is missing")
    raw, qcow2 = tmp_path / "disk.raw", tmp_path / "disk.qcow2"
    data = disk_bytes(4)
    raw.write_bytes(data)
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2)],
                   check=True)
    uploaded = qcow2.read_bytes()
    made(admin.post(f"{E}/images", json={"name": "qcow"}))
    upload = made(admin.post(f"{E}/images/qcow/uploads", json={
        "version": "v1", "size": len(uploaded),  # the format: from the header
        "checksum": hashlib.sha256(uploaded).hexdigest()}))
    path = f"{E}/images/qcow/uploads/{upload['id']}"
    made(send(admin, path, 0, uploaded), 200)
    version = made(admin.post(f"{path}/commit"))
    assert version["disk_format"] == "qcow2" and version["store"]["size"] == len(data)
    assert version["store"]["image_sha256"] == hashlib.sha256(data).hexdigest()
    assert b"".join(store.read_range(version["uuid"], 0, len(data))) == data


def test_a_wrong_checksum_keeps_nothing(aio: Server, admin: httpx.Client,
                                        store: ImageStore) -> None:
    made(admin.post(f"{E}/images", json={"name": "wrongsum"}))
    data = disk_bytes(2)
    blocks_before = {path.name for path in store.layout.all_blocks()}
    upload = start(admin, "wrongsum", "v1", data, checksum="0" * 64)
    made(send(admin, upload, 0, data), 200)
    assert "checksum mismatch" in fault(admin.post(f"{upload}/commit"), 400)
    assert made(admin.get(f"{E}/images/wrongsum"), 200)["versions"] == []
    assert {path.name for path in store.layout.all_blocks()} == blocks_before
    assert not any((aio.data_dir / "image-store" / "uploads").iterdir())
    assert made(admin.get(upload), 404) is not None


def test_an_upload_beyond_the_store_quota_is_refused_at_once(admin: httpx.Client) -> None:
    made(admin.post(f"{E}/images", json={"name": "huge"}))
    answer = admin.post(f"{E}/images/huge/uploads", json={
        "version": "v1", "size": STORE_MAX + 1, "checksum": "a" * 64})
    assert "image store is full" in fault(answer, 507)
    assert "Unknown field" in fault(admin.post(f"{E}/images/huge/uploads", json={
        "version": "v1", "size": 10, "checksum": "a" * 64, "colour": "red"}), 400)
    assert "size" in fault(admin.post(f"{E}/images/huge/uploads", json={
        "version": "v1", "size": -1, "checksum": "a" * 64}), 400)


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    directory = tmp_path_factory.mktemp("served")

    def handler(*args: Any) -> _Files:
        return _Files(*args, directory=str(directory))

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", directory
    finally:
        server.shutdown()
        server.server_close()


def settled(admin: httpx.Client, image: str, version: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        found = next(v for v in made(admin.get(f"{E}/images/{image}"), 200)["versions"]
                 if v["version"] == version)
        if found["state"] != "ingesting" or time.monotonic() > deadline:
            return found  # type: ignore[no-any-return]
        time.sleep(0.2)


def test_a_version_is_fetched_from_a_url_in_the_background(
        admin: httpx.Client, file_server: tuple[str, Path], store: ImageStore) -> None:
    url, directory = file_server
    data = disk_bytes(3)
    (directory / "disk.img").write_bytes(data)
    made(admin.post(f"{E}/images", json={"name": "fetched"}))
    digest = hashlib.sha256(data).hexdigest()
    created = made(admin.post(f"{E}/images/fetched/versions", json={
        "version": "v1", "source": f"{url}/disk.img", "checksum": digest, "fetch": True}))
    assert created["state"] in ("ingesting", "available")
    version = settled(admin, "fetched", "v1")
    assert version["state"] == "available", version
    assert b"".join(store.read_range(version["uuid"], 0, len(data))) == data
    made(admin.post(f"{E}/images/fetched/versions", json={
        "version": "bad", "source": f"{url}/disk.img", "checksum": "b" * 64, "fetch": True}))
    made(admin.post(f"{E}/images/fetched/versions", json={
        "version": "gone", "source": f"{url}/missing.img", "checksum": digest,
        "fetch": True}))
    bad, gone = settled(admin, "fetched", "bad"), settled(admin, "fetched", "gone")
    assert bad["state"] == "failed" and "checksum mismatch" in bad["reason"]
    assert gone["state"] == "failed" and "HTTP 404" in gone["reason"]
    assert bad["uuid"] not in store.versions() and gone["uuid"] not in store.versions()
    assert "can be fetched" in fault(admin.post(f"{E}/images/fetched/versions", json={
        "version": "local", "source": "disk.img", "checksum": digest, "fetch": True}), 400)


def test_deleting_a_rooms_default_version_is_refused_and_gc_frees_blocks(
        admin: httpx.Client, store: ImageStore) -> None:
    made(admin.post(f"{E}/images", json={"name": "lab"}))
    first, second = disk_bytes(10), disk_bytes(11)
    for name, data in (("v1", first), ("v2", second)):
        upload = start(admin, "lab", name, data)
        made(send(admin, upload, 0, data), 200)
        made(admin.post(f"{upload}/commit"))
    made(admin.post(f"{E}/rooms", json={"name": "B12", "time_zone": "Europe/Paris",
                                         "allowed_images": ["lab"], "default_image": "lab"}))
    assert "room(s) B12 restore by default" in fault(
        admin.delete(f"{E}/images/lab/versions/v2"), 409)
    day = (datetime.now() + timedelta(days=7)).strftime("%Y-%m-%d")
    session = made(admin.post(f"{E}/sessions", json={
        "room": "B12", "image": "lab:v1", "start": f"{day}T10:00", "end": f"{day}T11:00",
        "name": "networks"}))
    assert "used by sessions (networks)" in fault(
        admin.delete(f"{E}/images/lab/versions/v1"), 409)
    made(admin.delete(f"{E}/sessions/{session['uuid']}"), 204)
    v1 = next(v for v in made(admin.get(f"{E}/images/lab"), 200)["versions"]
          if v["version"] == "v1")
    made(admin.delete(f"{E}/images/lab/versions/v1"), 204)
    assert v1["uuid"] not in store.versions()
    freed = made(admin.post(f"{E}/image-store/gc"), 200)
    assert freed["freed_bytes"] == len(first) - BLOCK_SIZE and freed["removed_blocks"] == 2
    assert freed["usage"]["versions"] == len(store.versions())


def test_teachers_read_their_rooms_images_and_change_nothing(aio: Server,
                                                             admin: httpx.Client) -> None:
    made(admin.post(f"{E}/images", json={"name": "hidden"}))
    with httpx.Client(base_url=aio.url, auth=("alice", PASSWORD), timeout=10) as alice:
        names = [i["name"] for i in made(alice.get(f"{E}/images"), 200)["images"]]
        assert "lab" in names and "hidden" not in names
        assert "could not be found" in fault(alice.get(f"{E}/images/hidden"), 404)
        assert "admin or an operator" in fault(alice.post(f"{E}/images/lab/uploads", json={
            "version": "v9", "size": 10, "checksum": "a" * 64}), 403)
        assert "admin or an operator" in fault(alice.post(f"{E}/image-store/gc"), 403)
        assert "admin or an operator" in fault(alice.delete(f"{E}/images/lab/versions/v2"),
                                               403)


def test_the_enclume_image_commands_against_the_live_api(
        aio: Server, tmp_path: Path, store: ImageStore) -> None:
    enclume = Enclume(aio, tmp_path / "home")
    env = {"ENCLUME_USERNAME": "admin", "ENCLUME_PASSWORD": PASSWORD}
    image = tmp_path / "disk.img"
    data = disk_bytes(20)
    image.write_bytes(data)
    enclume("image", "create", "cli-image", env=env)
    run = enclume("image", "upload", "cli-image", str(image), "--version", "v1",
                  "--piece-mib", "3", "-f", "json", env=env)
    version = run.json()
    assert version["state"] == "available" and version["store"]["zero_blocks"] == 1
    assert f"sent {len(data) / 2**20:.1f} MiB / {len(data) / 2**20:.1f} MiB (100%)" in run.err
    wrong = enclume("image", "upload", "cli-image", str(image), "--version", "v2",
                    "--checksum", "c" * 64, env=env, code=1)
    assert "checksum mismatch" in wrong.err
    listed = enclume("image", "versions", "cli-image", "-f", "json", env=env).json()
    assert [(v["version"], v["store"]["stored_bytes"]) for v in listed] == [
        ("v1", len(data) - BLOCK_SIZE)]
    shown = enclume("image", "show", "cli-image", env=env).out
    assert "v1 (available: 12.0 MiB, 3 blocks, 1 zero, 8.0 MiB stored)" in shown
    enclume("image", "delete", "cli-image:v1", env=env)
    assert version["uuid"] not in store.versions()
    freed = enclume("image", "gc", "-f", "json", env=env).json()
    assert freed["freed_bytes"] >= len(data) - BLOCK_SIZE
    # An upload cut for good (here: half sent by hand) goes on with --resume.
    again = disk_bytes(21)
    image.write_bytes(again)
    with httpx.Client(base_url=aio.url, auth=("admin", PASSWORD), timeout=60) as admin:
        upload = start(admin, "cli-image", "v3", again)
        made(send(admin, upload, 0, again[:5 * 1024 * 1024]), 200)
    resumed = enclume("image", "upload", "cli-image", str(image), "--resume",
                      upload.rsplit("/", 1)[1], "-f", "json", env=env)
    assert resumed.json()["store"]["image_sha256"] == hashlib.sha256(again).hexdigest()
    assert "sent 5.0 MiB" not in resumed.err and "(100%)" in resumed.err
    teacher = {"ENCLUME_USERNAME": "alice", "ENCLUME_PASSWORD": PASSWORD}
    refused = enclume("image", "gc", env=teacher, code=1)
    assert "admin or an operator" in refused.err
    assert os.listdir(aio.data_dir / "image-store" / "uploads") == []


def test_bad_upload_requests_get_clear_refusals(admin: httpx.Client) -> None:
    made(admin.post(f"{E}/images", json={"name": "other"}))
    data = disk_bytes(30)
    upload = start(admin, "debian", "bad-requests", data)
    assert fault(admin.patch(upload, content=b"x"), 400)  # no Upload-Offset
    assert fault(admin.patch(upload, content=b"x", headers={"Upload-Offset": "x"}), 400)
    assert fault(admin.patch(upload, content=b"x", headers={"Upload-Offset": "-1"}), 400)
    elsewhere = upload.replace("/images/debian/", "/images/other/")
    assert "has no upload" in fault(admin.get(elsewhere), 404)
    assert "has no upload" in fault(send(admin, elsewhere, 0, b"x"), 404)
    assert "no upload" in fault(admin.get(f"{E}/images/debian/uploads/{'0' * 32}"), 404)
    assert admin.get(f"{E}/images/debian/uploads/..%2F..%2Fx").status_code == 404
    made(admin.delete(upload), 204)
    assert "no upload" in fault(admin.get(upload), 404)
    # The API's body limit still holds everywhere else.
    assert fault(admin.post(f"{E}/images", json={"name": "x" * (2 * BODY_LIMIT)}), 413)
