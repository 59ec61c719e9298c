"""Harness of the agent tests: the API's two agent endpoints, an image server, the agent process.

- `FakeApi` plays ``GET /v1/lookup`` and ``POST /v1/heartbeat/<node>`` exactly as
  /work/helpers/AGENT-CONTRACT.md says (token issued at the first lookup, hidden after, 401/403
  on a missing/wrong token, 404 when no node expects an agent). The real endpoints are tested
  against the agent in test_agent_aio.py.
- `ImageServer` serves files, and on purpose: truncated bodies (``/truncated/<name>``: full
  Content-Length, the connection closed half way) and chunked ones (``/chunked/<name>``).
- `running_agent` starts ``python3 -m agent.main`` with Debian's /usr/bin/python3 (the
  ramdisk's interpreter, which has no pip packages) on file-backed disks.

The tests here check the harness itself.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.json_http import send_json

REPO = Path(__file__).resolve().parents[2]
RAMDISK_PYTHON = "/usr/bin/python3"  # Debian's python3.11, as in the ramdisk
MASK = "******"
MiB = 1024 * 1024
SLOW_PAUSE_S = 2.0
POWER_ACTION_DELAY_S = 1.0  # long enough that a loaded test machine sees the answer first
NEEDED_TOOLS = ("sfdisk", "mkfs.ext4", "mkswap", "qemu-img", "extlinux", "losetup", "mount",
                "blkid", "genisoimage", "mkfs.vfat", "mcopy", "mtype", "debugfs")

pytestmark = pytest.mark.integration


def require_tools(*tools: str) -> None:
    missing = [tool for tool in tools or NEEDED_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing tools for the agent tests: {', '.join(missing)} "
                    "(Debian: fdisk extlinux genisoimage dosfstools mtools systemd-boot-efi; "
                    "`make deps`)")
    if not Path(RAMDISK_PYTHON).exists():
        pytest.fail(f"{RAMDISK_PYTHON} (Debian python3.11) is needed to run the agent")


@dataclass
class FakeNode:
    uuid: str
    macs: tuple[str, ...]
    expecting_agent: bool = True
    token: str | None = None
    heartbeats: list[dict[str, Any]] = field(default_factory=list)
    lookups: int = 0


class FakeApi:
    """The API side of the agent protocol, nothing more."""

    def __init__(self, heartbeat_timeout: int = 30, host: str = "127.0.0.1") -> None:
        self.nodes: list[FakeNode] = []
        self.heartbeat_timeout = heartbeat_timeout
        self.refused_heartbeats: list[int] = []
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def reply(self, status: int, body: Any) -> None:
                send_json(self, status, body)

            def do_GET(self) -> None:
                status, body = api.lookup(self.path)
                self.reply(status, body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, body = api.heartbeat(self.path, self.rfile.read(length))
                self.reply(status, body)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add_node(self, *macs: str) -> FakeNode:
        node = FakeNode(uuid=str(uuid.uuid4()), macs=tuple(m.lower() for m in macs))
        self.nodes.append(node)
        return node

    def rotate(self, node: FakeNode) -> None:
        """What the conductor does when it prepares a new ramdisk boot."""
        with self.lock:
            node.token = None
            node.heartbeats.clear()

    def lookup(self, path: str) -> tuple[int, Any]:
        from urllib.parse import parse_qs, urlsplit
        parts = urlsplit(path)
        if parts.path != "/v1/lookup":
            return 404, {"error_message": "not found"}
        query = parse_qs(parts.query)
        addresses = {a.lower() for a in ",".join(query.get("addresses", [])).split(",") if a}
        with self.lock:
            for node in self.nodes:
                if node.expecting_agent and addresses & set(node.macs):
                    node.lookups += 1
                    if node.token is None:
                        node.token = secrets.token_urlsafe(32)
                        shown = node.token
                    else:
                        shown = MASK
                    return 200, {"node": {"uuid": node.uuid, "properties": {},
                                          "instance_info": {}, "driver_internal_info": {},
                                          "provision_state": "wait call-back"},
                                 "config": {"heartbeat_timeout": self.heartbeat_timeout,
                                            "agent_token": shown,
                                            "agent_token_required": True}}
        return 404, {"error_message": "no node in a state that expects an agent"}

    def heartbeat(self, path: str, raw: bytes) -> tuple[int, Any]:
        node_uuid = path.rstrip("/").rsplit("/", 1)[-1]
        body = json.loads(raw or b"{}")
        with self.lock:
            node = next((n for n in self.nodes if n.uuid == node_uuid), None)
            if node is None or not path.startswith("/v1/heartbeat/"):
                return 404, {"error_message": "no such node"}
            token = body.get("agent_token")
            if not token:
                self.refused_heartbeats.append(401)
                return 401, {"error_message": "agent token required"}
            if node.token is None or not secrets.compare_digest(token, node.token):
                self.refused_heartbeats.append(403)
                return 403, {"error_message": "invalid agent token"}
            node.heartbeats.append(body)
        return 202, None

    def wait_heartbeat(self, node: FakeNode, timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if node.heartbeats:
                    return node.heartbeats[-1]
            time.sleep(0.05)
        raise AssertionError(f"no heartbeat from node {node.uuid} within {timeout} s")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class QuietServer(ThreadingHTTPServer):
    """Clients that hang up early (the agent peeking at a qcow2 header) are no error here."""
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class ImageServer:
    """Static files; ``/truncated/NAME`` stops half way, ``/chunked/NAME`` has no length,
    ``/slow/NAME`` pauses half way."""

    def __init__(self, root: Path) -> None:
        self.root = root

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                mode, _, name = self.path.lstrip("/").rpartition("/")
                path = root / name
                if not path.is_file():
                    self.send_error(404)
                    return
                size = path.stat().st_size
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                if mode == "chunked":
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(size))
                if mode in ("truncated", "chunked"):
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                limit = size // 2 if mode == "truncated" else size
                sent, paused = 0, False
                with path.open("rb") as handle:
                    while sent < limit:
                        data = handle.read(min(4 * MiB, limit - sent))
                        if not data:
                            break
                        if mode == "chunked":
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                        else:
                            self.wfile.write(data)
                        sent += len(data)
                        if mode == "slow" and sent >= size // 2 and not paused:
                            time.sleep(SLOW_PAUSE_S)
                            paused = True
                if mode == "chunked":
                    self.wfile.write(b"0\r\n\r\n")

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class RunningAgent:
    process: subprocess.Popen[bytes]
    node: FakeNode
    api: FakeApi
    url: str
    log: Path

    @property
    def token(self) -> str:
        assert self.node.token is not None
        return self.node.token

    def request(self, method: str, path: str, body: Any = None, token: str | None = "own",
                raw: bytes | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token == "own":
            token = self.token
        if token is not None:
            headers["X-Agent-Token"] = token
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def command(self, name: str, params: dict[str, Any] | None = None,
                token: str | None = "own") -> tuple[int, Any]:
        return self.request("POST", "/v1/commands/", {"name": name, "params": params or {}},
                            token=token)

    def run(self, name: str, params: dict[str, Any] | None = None,
            timeout: float = 120) -> dict[str, Any]:
        """Send a command and wait for its end; the final command document."""
        status, document = self.command(name, params)
        assert status == 200, (status, document)
        return self.run_poll(document, timeout)

    def run_poll(self, document: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
        """Poll a command until it ends; the final command document."""
        name = document["command_name"]
        deadline = time.monotonic() + timeout
        while document["command_status"] == "RUNNING":
            assert time.monotonic() < deadline, f"{name} still running after {timeout} s"
            time.sleep(0.05)
            status, document = self.request("GET", f"/v1/commands/{document['id']}")
            assert status == 200, (status, document)
        return document

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def running_agent(api: FakeApi, workdir: Path, disks: list[Path],
                  extra: list[str] | None = None, mac: str = "52:54:00:12:34:56",
                  prefix: list[str] | None = None,
                  network: list[str] | None = None) -> Iterator[RunningAgent]:
    """The agent as a process (``prefix``: e.g. ``ip netns exec NS``); ``network`` replaces
    the loopback-only listen/advertise flags."""
    node = api.add_node(mac)
    log = workdir / f"agent-{node.uuid}.log"
    cmdline = workdir / "cmdline"
    cmdline.write_text(f"quiet enclume.api_url={api.url} BOOTIF=01-{mac.replace(':', '-')}\n")
    if network is None:
        network = ["--listen-host", "127.0.0.1", "--advertise-host", "127.0.0.1",
                   "--lldp-interface", "lo"]
    argv = [*(prefix or []), RAMDISK_PYTHON, "-m", "agent.main", "--cmdline-file", str(cmdline),
            "--mac", mac, "--port", "0", *network,
            "--heartbeat-interval", "0.2", "--lookup-retry", "0.2", "--staging-dir", str(workdir),
            "--poweroff-command", f"touch {workdir}/powered-off",
            "--reboot-command", f"touch {workdir}/rebooted",
            "--lockdown-command", f"touch {workdir}/locked-down",
            "--power-action-delay", str(POWER_ACTION_DELAY_S),
            *(arg for disk in disks for arg in ("--disk", str(disk))), *(extra or [])]
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        try:
            beat = api.wait_heartbeat(node)
        except AssertionError:
            raise AssertionError(f"agent never heartbeated; its log:\n{log.read_text()}") from None
        yield RunningAgent(process, node, api, beat["callback_url"], log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(name="fake_api")
def fake_api_fixture() -> Iterator[FakeApi]:
    api = FakeApi()
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(name="image_server")
def image_server_fixture(tmp_path: Path) -> Iterator[ImageServer]:
    root = tmp_path / "images"
    root.mkdir()
    server = ImageServer(root)
    try:
        yield server
    finally:
        server.close()


def make_disk(path: Path, size: int) -> Path:
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def run_tool(*argv: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, check=False)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr.decode()}"
    return done.stdout.decode()


def whole_disk_image(path: Path, size: int = 24 * MiB, label: str = "dos",
                     zero_fraction: float = 0.5) -> bytes:
    """A disk image: a partition table, random data in (1 - zero_fraction) of it, zeros."""
    make_disk(path, size)
    run_tool("sfdisk", "--quiet", str(path),
             stdin=f"label: {label}\nstart=2048, type=L\n".encode())
    data_bytes = int(size * (1 - zero_fraction)) // MiB * MiB
    with path.open("r+b") as handle:
        for offset in range(2 * MiB, 2 * MiB + data_bytes, MiB):
            if offset + MiB <= size - MiB:
                handle.seek(offset)
                handle.write(os.urandom(MiB))
    return path.read_bytes()


def qcow2_of(raw: Path, path: Path) -> Path:
    run_tool("qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(path))
    return path


def partition_image(path: Path, size: int = 16 * MiB, kernel: bytes = b"kernel",
                    initrd: bytes = b"initrd") -> Path:
    """An ext4 root file system with a kernel and initrd in /boot (mkfs.ext4 -d)."""
    root = path.with_suffix(".root")
    (root / "boot").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc" / "hostname").write_text("deployed\n")
    (root / "boot" / "vmlinuz-6.1.0-test").write_bytes(kernel)
    (root / "boot" / "initrd.img-6.1.0-test").write_bytes(initrd)
    (root / "boot" / "vmlinuz-5.10.0-old").write_bytes(b"old kernel")
    make_disk(path, size)
    run_tool("mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(root), str(path))
    return path


def config_drive(workdir: Path, meta: dict[str, Any]) -> bytes:
    """A config-2 ISO9660 image like Nova's, with openstack/latest/meta_data.json."""
    tree = workdir / "configdrive"
    (tree / "openstack" / "latest").mkdir(parents=True)
    (tree / "openstack" / "latest" / "meta_data.json").write_text(json.dumps(meta))
    iso = workdir / "configdrive.iso"
    run_tool("genisoimage", "-quiet", "-o", str(iso), "-ldots", "-allow-lowercase",
             "-allow-multidot", "-l", "-V", "config-2", "-r", "-J", str(tree))
    return iso.read_bytes()


def sha256_of(path: Path) -> str:
    import hashlib
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(4 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def test_agent_runs_on_the_ramdisk_python_without_pip_packages(fake_api: FakeApi,
                                                                tmp_path: Path) -> None:
    """The agent heartbeats from Debian's python3 (no httpx/fastapi/pydantic there)."""
    require_tools()
    probe = subprocess.run([RAMDISK_PYTHON, "-c", "import httpx"], capture_output=True)
    assert probe.returncode != 0, "Debian's python3 must not have httpx for this test to mean it"
    disk = make_disk(tmp_path / "disk.img", 8 * MiB)
    with running_agent(fake_api, tmp_path, [disk]) as agent:
        beat = agent.api.wait_heartbeat(agent.node)
        assert beat["agent_token"] == agent.token
        assert beat["callback_url"].startswith("http://127.0.0.1:")
        assert beat["agent_version"]
        assert agent.token not in agent.logs()
    assert sys.version_info >= (3, 11)
