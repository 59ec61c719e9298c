"""Run Enclume services as background processes on loopback, and always stop them again.

Used by ``make demo``, the integration tests and the benchmarks.
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


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """One Enclume process running in the background, answering on ``url``."""

    name: str
    url: str
    port: int
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


def start_service(command: str | list[str], name: str, port: int, data_dir: Path,
                  env: dict[str, str], ready_path: str = "/", timeout: float = 30.0,
                  host: str = "127.0.0.1") -> Server:
    """Start an Enclume console script (or an argv) answering on ``host`` and wait until
    ``ready_path`` answers 200."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / f"{name}.log"
    argv = [str(BIN / command)] if isinstance(command, str) else command
    with log.open("ab") as out:
        process = subprocess.Popen(argv, env={**os.environ, **env},
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(name, f"http://{host}:{port}", port, data_dir, log, process)
    try:
        _wait_until_up(server, ready_path, timeout)
    except BaseException:
        stop_service(server)
        raise
    return server


@contextmanager
def running_aio(data_dir: Path, env: dict[str, str] | None = None,
                timeout: float = 30.0, host: str = "127.0.0.1") -> Iterator[Server]:
    port = free_port(host)
    environment = {"ENCLUME_DATA_DIR": str(data_dir), "ENCLUME_API_HOST": host,
                   "ENCLUME_API_PORT": str(port), **(env or {})}
    server = start_service("enclume-aio", "aio", port, data_dir, environment, timeout=timeout,
                           host=host)
    try:
        yield server
    finally:
        stop_service(server)


def _wait_until_up(server: Server, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}:\n"
                               f"{server.log_text()}")
        try:
            if httpx.get(server.url + path, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not answer within {timeout}s:\n{server.log_text()}")


def stop_service(server: Server, sig: signal.Signals = signal.SIGTERM) -> None:
    """Stop the process (SIGTERM, or ``sig``) and its group; SIGKILL if it lingers."""
    process = server.process
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
