"""Keeps one child process running: starts it, logs its output, restarts it when it dies.

Restarts back off (1 s, 2 s, 4 s … up to ``MAX_BACKOFF_S``) and the back-off resets once the
process has run for ``STABLE_AFTER_S``. The process is stopped by its PID (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import collections
import ctypes
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

START_GRACE_S = 0.5
MIN_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
STABLE_AFTER_S = 60.0
STOP_TIMEOUT_S = 5.0
TAIL_LINES = 20
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def stop_pid(pid: int, timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM to ``pid``, SIGKILL if it is still there after ``timeout`` (not our child: its
    exit is seen through /proc)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


_prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it


def _terminate_with_parent(parent: int) -> Callable[[], None]:
    """For the child, between fork and exec: SIGTERM when the parent dies, even by SIGKILL.
    (Linux sends it when the thread that forked exits: spawn from threads that live as long as
    the child.) Only a system call runs in the child: no lookup, no allocation."""

    def in_child() -> None:
        if _prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            os._exit(127)
        if os.getppid() != parent:  # the parent died before prctl: nobody would signal us
            os._exit(0)

    return in_child


class StartError(RuntimeError):
    """The process exited right after its first start."""


class ProcessSupervisor:
    def __init__(self, name: str, argv: Sequence[str], log: logging.Logger, *,
                 env: Mapping[str, str] | None = None, die_with_parent: bool = False,
                 output_level: int = logging.DEBUG,
                 on_line: Callable[[str], None] | None = None) -> None:
        self.name = name
        self.on_line = on_line  # sees each line of the process's output
        self.argv = list(argv)
        self.log = log
        self.env = dict(env) if env is not None else None
        self.die_with_parent = die_with_parent
        self.output_level = output_level
        self.restarts = 0
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def start(self) -> None:
        """Starts the process; raises StartError if it exits within ``START_GRACE_S``."""
        self._stopping.clear()
        process = self._spawn()
        assert process is not None
        try:
            process.wait(timeout=START_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        else:
            time.sleep(0.05)  # let the output reader catch the last lines
            raise StartError(f"{self.name} exited at start with status {process.returncode}: "
                             f"{self._tail_text()}")
        self._monitor = threading.Thread(target=self._watch, name=f"{self.name}-supervisor",
                                         daemon=True)
        self._monitor.start()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.log.warning("%s (pid %d) ignored SIGTERM; killing it", self.name,
                                 process.pid)
                process.kill()
                process.wait()
        if self._monitor is not None:
            self._monitor.join(timeout=STOP_TIMEOUT_S)

    def _spawn(self) -> subprocess.Popen[str] | None:
        with self._lock:
            if self._stopping.is_set():
                return None  # stop() came first: it must not miss a process started now
            process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True, errors="replace", env=self.env,
                                       preexec_fn=_terminate_with_parent(os.getpid())
                                       if self.die_with_parent else None)
            self._process = process
        threading.Thread(target=self._read_output, args=(process,),
                         name=f"{self.name}-output", daemon=True).start()
        self.log.info("%s started (pid %d)", self.name, process.pid)
        return process

    def _read_output(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            self._tail.append(line)
            self.log.log(self.output_level, "%s", line)
            if self.on_line is not None:
                self.on_line(line)

    def _tail_text(self) -> str:
        return " | ".join(self._tail) or "(no output)"

    def last_output(self) -> str:
        """The process's last lines of output, joined by `` | ``."""
        return self._tail_text()

    def _watch(self) -> None:
        backoff = MIN_BACKOFF_S
        while True:
            with self._lock:
                process = self._process
            assert process is not None
            started = time.monotonic()
            code = process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= STABLE_AFTER_S:
                backoff = MIN_BACKOFF_S
            self.log.warning("%s (pid %d) exited with status %s; restarting in %.0f s. Last "
                             "output: %s", self.name, process.pid, code, backoff,
                             self._tail_text())
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, MAX_BACKOFF_S)
            try:
                if self._spawn() is None:
                    return
                self.restarts += 1
            except OSError as exc:
                self.log.error("cannot restart %s: %s", self.name, exc)
