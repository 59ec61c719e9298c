"""Child processes of the lab, each tracked by its PID and stopped by that PID only."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 5.0
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes; vde_switch appends "/ctl" to its directory


class LabError(RuntimeError):
    """Something in the virtual lab could not be set up or did not behave."""


def require_tool(name: str) -> str:
    """The tool's path; a missing tool is an error that says how to get it (`make deps`)."""
    path = shutil.which(name)
    if path is None:
        raise LabError(f"{name} is not installed: run `make deps` (Debian packages of the lab)")
    return path


def check_socket_path(path: Path) -> Path:
    if len(str(path)) > MAX_SOCKET_PATH:
        raise LabError(f"path too long for a unix socket (use a shorter work directory): {path}")
    return path


def _die_with_parent() -> None:
    # The kernel sends SIGTERM to the child when the thread that started it ends, so a test run
    # that is killed outright does not leave QEMU machines running on a shared machine.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class ManagedProcess:
    """A process started by the lab, its output in a log file; it ends when the lab ends.

    The process dies with the thread that started it (PR_SET_PDEATHSIG): start long-lived ones from
    a thread that lives as long as they should.
    """

    def __init__(self, name: str, args: list[str], log_path: Path,
                 env: dict[str, str] | None = None, keep_stdin_open: bool = False,
                 inherit_env: bool = True) -> None:
        """`env` adds to this process's environment, or replaces it if not `inherit_env`."""
        self.name = name
        self.args = args
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("ab")
        try:
            self.popen = subprocess.Popen(
                args,
                stdin=subprocess.PIPE if keep_stdin_open else subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=({**os.environ, **(env or {})} if inherit_env else dict(env or {})),
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            self._log.close()
            raise LabError(f"cannot start {name} ({args[0]}): {exc}") from exc

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise LabError(f"{self.name} exited with {self.popen.returncode}; its log "
                           f"({self.log_path}) ends with:\n{tail(self.log_path)}")

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM, then SIGKILL after `grace_s`; always reaps the process and closes its log."""
        try:
            if self.alive():
                if self.popen.stdin is not None:
                    self.popen.stdin.close()
                self.popen.send_signal(signal.SIGTERM)
                if self.wait_exit(grace_s) is None:
                    self.popen.kill()
                    self.popen.wait(grace_s)
            else:
                self.popen.wait()
        finally:
            self._log.close()


def wait_until(condition: Callable[[], bool], timeout: float, what: str,
               interval: float = 0.05, on_timeout: Callable[[], str] | None = None) -> None:
    """Poll `condition` until it holds; LabError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            detail = f"\n{on_timeout()}" if on_timeout else ""
            raise LabError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)
