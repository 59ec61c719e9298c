"""Run ``enclume-aio`` as a background process on loopback, and always stop it again.

Used by ``make demo`` and by the integration tests.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    port: int
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def running_aio(data_dir: Path, env: dict[str, str] | None = None,
                timeout: float = 30.0) -> Iterator[Server]:
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "aio.log"
    environment = {**os.environ, "ENCLUME_DATA_DIR": str(data_dir),
                   "ENCLUME_API_HOST": "127.0.0.1", "ENCLUME_API_PORT": str(port),
                   **(env or {})}
    with log.open("wb") as out:
        process = subprocess.Popen([str(BIN / "enclume-aio")], env=environment, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", port, data_dir, log, process)
    try:
        _wait_until_up(server, timeout)
        yield server
    finally:
        _stop(process)


def _wait_until_up(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"enclume-aio exited with {server.process.returncode}:\n"
                               f"{server.log_text()}")
        try:
            if httpx.get(server.url + "/", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"enclume-aio did not answer within {timeout}s:\n{server.log_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
