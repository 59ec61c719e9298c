"""A minimal QMP client: one connection per command, so any thread may use it at any time."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from tests.lab.harness.processes import LabError

QMP_TIMEOUT_S = 10.0


class QmpError(LabError):
    pass


def _read_message(reader: Any, path: Path) -> dict[str, Any]:
    line = reader.readline()
    if not line:
        raise QmpError(f"QEMU closed its QMP socket {path}")
    message: dict[str, Any] = json.loads(line)
    return message


def _send(conn: socket.socket, reader: Any, path: Path, command: str,
          arguments: dict[str, Any] | None) -> Any:
    request: dict[str, Any] = {"execute": command}
    if arguments:
        request["arguments"] = arguments
    conn.sendall(json.dumps(request).encode() + b"\n")
    while True:
        message = _read_message(reader, path)
        if "return" in message:
            return message["return"]
        if "error" in message:
            error = message["error"]
            raise QmpError(f"QMP {command}: {error.get('class')}: {error.get('desc')}")
        # anything else is an asynchronous event (SHUTDOWN, RESET, …): not the answer


def qmp_execute(path: Path, command: str, arguments: dict[str, Any] | None = None,
                timeout: float = QMP_TIMEOUT_S) -> Any:
    """Execute one QMP command on the monitor socket `path` and return its "return" value."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(str(path))
        with conn.makefile("rb") as reader:
            greeting = _read_message(reader, path)
            if "QMP" not in greeting:
                raise QmpError(f"not a QMP greeting on {path}: {greeting}")
            _send(conn, reader, path, "qmp_capabilities", None)
            return _send(conn, reader, path, command, arguments)
