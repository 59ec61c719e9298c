"""What /proc says about processes a test started (directly or through its children), and
stopping one of them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet waited for) counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def stop_process(process: subprocess.Popen[Any], timeout: float) -> None:
    """Terminate ``process`` (by its PID), then kill it if it lingers ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
