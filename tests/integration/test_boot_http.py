"""The boot service's HTTP side, served by uvicorn on loopback and read with real clients:
iPXE scripts per desired boot, boot files with Range, hostile paths, and the image cache
(checksums, atomic storage, Range, eviction, one download for concurrent requests)."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from services.boot.http import create_boot_app
from services.common.bootconfig.image_cache import ImageCache, source_of
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.models import Node, Port
from tests.support.asgi import serving
from tests.support.metrics import scrape

pytestmark = pytest.mark.integration

IMAGE_BYTES = 100_000
CACHE_MAX_BYTES = 250_000
SECRET = b"TOP-SECRET-CONTENT-OUTSIDE-THE-FILES-DIR"
KERNEL = bytes(range(256)) * 40


class ImageServer:
    """A small HTTP server standing for an image store; counts the downloads of each path."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.delay_s: dict[str, float] = {}
        self.hits: Counter[str] = Counter()
        images = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                images.hits[self.path] += 1
                body = images.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                time.sleep(images.delay_s.get(self.path, 0))
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add(self, path: str, body: bytes, delay_s: float = 0.0) -> str:
        self.files[path] = body
        self.delay_s[path] = delay_s
        return self.url + path


@dataclass
class Boot:
    url: str
    db: Database
    settings: Settings


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    server = ImageServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


@pytest.fixture(scope="module")
def boot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Boot]:
    base = tmp_path_factory.mktemp("boot-http")
    url = f"sqlite:///{base / 'enclume.sqlite'}"
    upgrade_schema(url)
    db = Database(url)
    files = base / "files"
    (files / "debian").mkdir(parents=True)
    (files / "deploy.kernel").write_bytes(KERNEL)
    (files / "debian" / "initrd.img").write_bytes(b"ramdisk")
    (base / "secret.txt").write_bytes(SECRET)
    (files / "escape").symlink_to(base / "secret.txt")
    (files / "etc").symlink_to("/etc")
    (files / "same-kernel").symlink_to(files / "deploy.kernel")
    settings = Settings(
        process={"data_dir": base},
        boot={"files_dir": files, "public_url": "http://192.0.2.10:8080"},
        images={"cache_dir": base / "cache", "cache_max_bytes": CACHE_MAX_BYTES,
                "download_timeout_s": 5},
    )
    with serving(create_boot_app(settings, db)) as served:
        yield Boot(served, db, settings)


_MACS = iter(range(1, 1 << 24))


def add_node(db: Database, *, boot: dict[str, Any] | None = None,
             provision_state: str = "available", instance_info: dict[str, Any] | None = None,
             with_port: bool = True) -> tuple[str, str]:
    """A node with one port; returns (node uuid, port MAC)."""
    i = next(_MACS)
    mac = f"52:54:00:{i >> 16 & 0xff:02x}:{i >> 8 & 0xff:02x}:{i & 0xff:02x}"
    info = {"boot": boot} if boot is not None else {}
    node = Node(driver="fake-hardware", provision_state=provision_state,
                driver_internal_info=info, instance_info=instance_info or {})
    with db.session() as session:
        session.add(node)
        session.flush()
        if with_port:
            session.add(Port(address=mac, node_id=node.id))
    return node.uuid, mac


def script(boot: Boot, mac: str) -> str:
    response = httpx.get(f"{boot.url}/boot.ipxe", params={"mac": mac})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.text


# -- iPXE scripts --------------------------------------------------------------------------


def test_each_node_gets_the_script_of_its_desired_boot(boot: Boot) -> None:
    kernel, ramdisk = "http://192.0.2.10:8080/files/deploy.kernel", \
        "http://192.0.2.10:8080/files/debian/initrd.img"
    deploying, deploying_mac = add_node(boot.db, boot={
        "mode": "ramdisk", "kernel": kernel, "ramdisk": ramdisk,
        "kernel_params": "enclume.api_url=http://192.0.2.10:6385 enclume.node=n1",
        "boot_mode": "uefi", "boot_loader": "ipxe"})
    text = script(boot, deploying_mac)
    assert text.startswith("#!ipxe\n") and f"deploy ramdisk of node {deploying}" in text
    assert (f"kernel {kernel} initrd=ramdisk enclume.api_url=http://192.0.2.10:6385 "
            f"enclume.node=n1 BOOTIF=${{netX/mac}} || goto enclume_failed") in text
    assert f"initrd --name ramdisk {ramdisk} || goto enclume_failed" in text
    # the MAC is found whatever its spelling
    assert script(boot, deploying_mac.upper().replace(":", "-")) == text

    _, bios_mac = add_node(boot.db, boot={"mode": "local", "boot_mode": "bios"})
    assert "sanboot --no-describe --drive 0x80" in script(boot, bios_mac)
    _, uefi_mac = add_node(boot.db, boot={"mode": "local", "boot_mode": "uefi"})
    assert script(boot, uefi_mac).splitlines()[-1] == "exit"
    idle, idle_mac = add_node(boot.db)
    assert script(boot, idle_mac).splitlines() == [
        "#!ipxe", f"# Enclume: no boot is planned for node {idle}", "exit"]
    assert script(boot, "52:54:00:ff:ff:fe").splitlines() == [
        "#!ipxe", "# Enclume: no node has a port with MAC 52:54:00:ff:ff:fe", "exit"]


def test_a_broken_desired_boot_or_mac_never_crashes_the_service(boot: Boot) -> None:
    _, mac = add_node(boot.db, boot={"mode": "ramdisk", "kernel": "http://x/k\nshell",
                                          "ramdisk": "http://x/r", "kernel_params": ""})
    text = script(boot, mac)
    assert "shell" not in text and text.splitlines()[-1] == "exit"
    assert f"the desired boot of {mac} is invalid" in text
    for bad in ("nonsense", "52:54:00:zz:00:01", "", "52:54:00:00:00:01\n#!ipxe"):
        response = httpx.get(f"{boot.url}/boot.ipxe", params={"mac": bad})
        assert response.status_code == 400 and "MAC address" in response.text
    # without a MAC: ask again with the MAC of the boot interface
    response = httpx.get(f"{boot.url}/boot.ipxe")
    assert response.text == ("#!ipxe\nchain http://192.0.2.10:8080/boot.ipxe?mac=${netX/mac}\n")


def test_ports_not_enabled_for_pxe_get_no_boot(boot: Boot) -> None:
    node, mac = add_node(boot.db, boot={"mode": "local", "boot_mode": "bios"})
    with boot.db.session() as session:
        session.execute(update(Port).where(Port.address == mac).values(pxe_enabled=False))
    assert script(boot, mac).splitlines()[-1] == "exit"
    assert f"no boot is planned for node {node}" in script(boot, mac)


def test_with_discovery_unknown_macs_get_the_discovery_ramdisk(boot: Boot) -> None:
    settings = boot.settings.model_copy(update={
        "discovery": boot.settings.discovery.model_copy(update={"enabled": True}),
        "deploy": boot.settings.deploy.model_copy(update={
            "kernel": "deploy.kernel", "ramdisk": "https://images.example/initrd.img",
            "agent_api_url": "http://192.0.2.10:6385", "kernel_append_params": "console=ttyS0"}),
    })
    known, known_mac = add_node(boot.db)
    with serving(create_boot_app(settings, boot.db)) as url:
        unknown = httpx.get(f"{url}/boot.ipxe", params={"mac": "52:54:00:fe:fe:fe"}).text
        quiet = httpx.get(f"{url}/boot.ipxe", params={"mac": known_mac}).text
    assert ("kernel http://192.0.2.10:8080/files/deploy.kernel initrd=ramdisk "
            "enclume.api_url=http://192.0.2.10:6385 enclume.discovery=1 console=ttyS0 "
            "BOOTIF=${netX/mac} || goto enclume_failed") in unknown
    assert "initrd --name ramdisk https://images.example/initrd.img" in unknown
    # a known node without a desired boot still gets nothing to boot
    assert quiet.splitlines()[-1] == "exit" and known in quiet


def test_the_boot_service_hands_the_ramdisk_the_apis_ca(boot: Boot, tmp_path: Path) -> None:
    ca = tmp_path / "api-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    settings = boot.settings.model_copy(update={
        "discovery": boot.settings.discovery.model_copy(update={"enabled": True}),
        "deploy": boot.settings.deploy.model_copy(update={
            "kernel": "deploy.kernel", "ramdisk": "deploy.ramdisk", "agent_api_ca_file": ca,
            "agent_api_url": "https://192.0.2.10:6385"})})
    with serving(create_boot_app(settings, boot.db)) as url:
        served = httpx.get(f"{url}/agent-api-ca.pem")
        unknown = httpx.get(f"{url}/boot.ipxe", params={"mac": "52:54:00:fe:fe:fd"}).text
    assert served.status_code == 200 and served.text == ca.read_text()
    assert ("enclume.api_url=https://192.0.2.10:6385 enclume.discovery=1 "
            "enclume.api_ca_url=http://192.0.2.10:8080/agent-api-ca.pem") in unknown
    without = httpx.get(f"{boot.url}/agent-api-ca.pem")
    assert without.status_code == 404 and "ENCLUME_AGENT_API_CA_FILE" in without.text


# -- boot files ----------------------------------------------------------------------------


def test_boot_files_are_served_whole_and_by_ranges(boot: Boot) -> None:
    whole = httpx.get(f"{boot.url}/files/deploy.kernel")
    assert whole.status_code == 200 and whole.content == KERNEL
    assert whole.headers["accept-ranges"] == "bytes"
    assert httpx.get(f"{boot.url}/files/debian/initrd.img").content == b"ramdisk"
    assert httpx.get(f"{boot.url}/files/same-kernel").content == KERNEL  # link inside the dir
    head = httpx.head(f"{boot.url}/files/deploy.kernel")
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(KERNEL)
    part = httpx.get(f"{boot.url}/files/deploy.kernel", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == KERNEL[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(KERNEL)}"
    tail = httpx.get(f"{boot.url}/files/deploy.kernel", headers={"Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == KERNEL[-5:]
    missing = httpx.get(f"{boot.url}/files/nothing-here")
    assert missing.status_code == 404


def raw_request(base_url: str, target: bytes) -> tuple[int, bytes]:
    """Send a request line exactly as given (clients normalise ``..`` away)."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: boot\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


@pytest.mark.parametrize("target", [
    b"/files/../secret.txt",
    b"/files/../../../../etc/passwd",
    b"/files/..%2fsecret.txt",
    b"/files/%2e%2e/secret.txt",
    b"/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    b"/files/debian/../../secret.txt",
    b"/files//etc/passwd",
    b"/files/%2fetc%2fpasswd",
    b"/files/escape",
    b"/files/etc/passwd",
    b"/files/deploy.kernel%00.txt",
    b"/files/deploy.kernel\x00",
    b"/files/%252e%252e/secret.txt",
    b"/files/..\\secret.txt",
    b"/files/",
])
def test_hostile_paths_get_400_or_404_and_nothing_leaks(boot: Boot, target: bytes) -> None:
    status, answer = raw_request(boot.url, target)
    assert status in (400, 404), answer[:300]
    assert SECRET not in answer and b"root:x:0:0" not in answer
    # the service still works afterwards
    assert httpx.get(f"{boot.url}/files/deploy.kernel").status_code == 200


# -- the image cache -----------------------------------------------------------------------


def deploying_with(boot: Boot, url: str, body: bytes, **checksum: str) -> str:
    info = {"image_source": url, **(checksum or {
        "image_os_hash_algo": "sha256", "image_os_hash_value": hashlib.sha256(body).hexdigest()})}
    node, _ = add_node(boot.db, provision_state="wait call-back", instance_info=info)
    return node


def cached_files(boot: Boot) -> set[str]:
    cache = boot.settings.effective_image_cache_dir
    return {p.name for p in cache.iterdir() if p.is_file()}


def test_an_image_is_downloaded_once_verified_and_served_with_ranges(
        boot: Boot, images: ImageServer) -> None:
    body = os.urandom(IMAGE_BYTES)
    url = images.add("/ranged.img", body)
    node = deploying_with(boot, url, body)
    first = httpx.get(f"{boot.url}/images/{node}")
    assert first.status_code == 200 and first.content == body
    assert f"sha256-{hashlib.sha256(body).hexdigest()}" in cached_files(boot)
    part = httpx.get(f"{boot.url}/images/{node}", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == body[1000:2000]
    multi = httpx.get(f"{boot.url}/images/{node}", headers={"Range": "bytes=0-9,5000-5009"})
    assert multi.status_code == 206
    assert multi.headers["content-type"].startswith("multipart/byteranges")
    assert body[:10] in multi.content and body[5000:5010] in multi.content
    beyond = httpx.get(f"{boot.url}/images/{node}", headers={"Range": f"bytes={IMAGE_BYTES}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{IMAGE_BYTES}"
    assert images.hits["/ranged.img"] == 1  # every later request came from the cache


def test_a_checksum_mismatch_is_an_error_and_caches_nothing(
        boot: Boot, images: ImageServer) -> None:
    body = os.urandom(IMAGE_BYTES)
    url = images.add("/corrupt.img", body)
    wrong = hashlib.sha256(b"something else").hexdigest()
    node = deploying_with(boot, url, body, image_checksum=wrong)
    response = httpx.get(f"{boot.url}/images/{node}")
    assert response.status_code == 502
    assert f"expected {wrong}" in response.text and "not cached" in response.text
    assert f"sha256-{wrong}" not in cached_files(boot)
    assert list((boot.settings.effective_image_cache_dir / ".partial").iterdir()) == []
    # the same image with its right checksum is then fetched and served
    good = deploying_with(boot, url, body)
    assert httpx.get(f"{boot.url}/images/{good}").content == body


def test_image_requests_that_cannot_be_served_say_why(boot: Boot, images: ImageServer) -> None:
    body = os.urandom(1000)
    url = images.add("/small.img", body)
    idle, _ = add_node(boot.db, provision_state="active", instance_info={
        "image_source": url, "image_checksum": hashlib.md5(body).hexdigest()})
    assert httpx.get(f"{boot.url}/images/{idle}").status_code == 404
    assert httpx.get(f"{boot.url}/images/no-such-node").status_code == 404
    unchecked, _ = add_node(boot.db, provision_state="deploying",
                            instance_info={"image_source": url})
    response = httpx.get(f"{boot.url}/images/{unchecked}")
    assert response.status_code == 409 and "no checksum" in response.text
    large = os.urandom(CACHE_MAX_BYTES + 1)
    too_large = deploying_with(boot, images.add("/large.img", large), large)
    response = httpx.get(f"{boot.url}/images/{too_large}")
    assert response.status_code == 507 and "ENCLUME_IMAGE_CACHE_MAX_BYTES" in response.text
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{closed.getsockname()[1]}/gone.img"
    unreachable = deploying_with(boot, dead_url, body)
    response = httpx.get(f"{boot.url}/images/{unreachable}")
    assert response.status_code == 502 and "ConnectError" in response.text
    missing = deploying_with(boot, images.url + "/missing.img", body)
    response = httpx.get(f"{boot.url}/images/{missing}")
    assert response.status_code == 502 and "HTTP 404" in response.text


def test_concurrent_requests_for_one_image_download_it_once(
        boot: Boot, images: ImageServer) -> None:
    body = os.urandom(IMAGE_BYTES)
    url = images.add("/popular.img", body, delay_s=0.5)
    nodes = [deploying_with(boot, url, body) for _ in range(3)]
    with ThreadPoolExecutor(9) as pool:
        answers = list(pool.map(lambda n: httpx.get(f"{boot.url}/images/{n}", timeout=10),
                                nodes * 3))
    assert [a.status_code for a in answers] == [200] * 9
    assert all(a.content == body for a in answers)
    assert images.hits["/popular.img"] == 1


def test_least_recently_used_images_are_evicted_past_the_size_bound(
        boot: Boot, images: ImageServer) -> None:
    bodies = {name: os.urandom(IMAGE_BYTES) for name in ("a", "b", "c")}
    nodes = {name: deploying_with(boot, images.add(f"/lru-{name}.img", body), body)
             for name, body in bodies.items()}
    keys = {name: f"sha256-{hashlib.sha256(body).hexdigest()}" for name, body in bodies.items()}
    for name in ("a", "b", "a", "c"):  # b is the least recently used when c arrives
        assert httpx.get(f"{boot.url}/images/{nodes[name]}").content == bodies[name]
    held = cached_files(boot)
    assert keys["a"] in held and keys["c"] in held and keys["b"] not in held
    cache_dir = boot.settings.effective_image_cache_dir
    assert sum(p.stat().st_size for p in cache_dir.iterdir() if p.is_file()) <= CACHE_MAX_BYTES
    # an evicted image comes back on demand
    assert httpx.get(f"{boot.url}/images/{nodes['b']}").content == bodies["b"]
    assert images.hits["/lru-b.img"] == 2


def test_images_in_use_are_never_evicted(tmp_path: Path, images: ImageServer) -> None:
    cache = ImageCache(tmp_path / "cache", max_bytes=150_000, timeout_s=5)
    cache.start()
    try:
        sources = []
        for name in ("x", "y", "z"):
            body = os.urandom(IMAGE_BYTES)
            sources.append(source_of({
                "image_source": images.add(f"/use-{name}.img", body),
                "image_checksum": hashlib.sha512(body).hexdigest()}))
        x, y, z = sources
        with cache.image(x) as x_path:
            with cache.image(y) as y_path:  # both in use: over the bound, nothing evicted
                assert x_path.exists() and y_path.exists()
            assert x_path.exists() and not y_path.exists()  # y released: evicted, x held
            with cache.image(z) as z_path:
                assert x_path.exists() and z_path.exists()
            assert x_path.exists() and not z_path.exists()  # z released, x still held
        assert x_path.exists()  # released, and within the bound: kept for the next request
        assert {p.name for p in cache.directory.iterdir() if p.is_file()} == {x.key}
    finally:
        cache.stop()


# -- metrics --------------------------------------------------------------------------------

def test_boot_scripts_images_and_routes_are_counted_with_bounded_labels(
        boot: Boot, images: ImageServer) -> None:
    before = scrape(boot.url)
    node_uuid, node_mac = add_node(boot.db, boot={"mode": "local", "boot_mode": "bios"})
    script(boot, node_mac)
    unknown = [f"52:54:01:00:{i >> 8:02x}:{i & 0xff:02x}" for i in range(100)]
    for mac in unknown:
        script(boot, mac)
    body = os.urandom(1000)
    url = images.add("/counted.img", body)
    deploying = [deploying_with(boot, url, body) for _ in range(3)]
    for node in deploying:
        assert httpx.get(f"{boot.url}/images/{node}").content == body
    after = scrape(boot.url)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert moved("enclume_boot_scripts_total", answer="node") == 1
    assert moved("enclume_boot_scripts_total", answer="unknown") == 100
    assert moved("enclume_image_cache_lookups_total", result="miss") == 1
    assert moved("enclume_image_cache_lookups_total", result="hit") == 2
    requests = "enclume_http_request_duration_seconds_count"
    assert moved(requests, route="/boot.ipxe", method="GET", status="2xx") == 101
    assert moved(requests, route="/images/{node_uuid}", method="GET", status="2xx") == 3
    labels = {value for sample in after.samples for value in sample.labels.values()}
    assert not labels & {node_uuid, node_mac, *unknown, *deploying}
    assert len(after.label_values(requests.removesuffix("_count"), "route")) <= 10
