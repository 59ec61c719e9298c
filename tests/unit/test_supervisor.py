"""The process supervisor of the boot service (dnsmasq's keeper), with small real processes."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time

import pytest

from services.boot import supervisor
from services.boot.supervisor import ProcessSupervisor, StartError
from tests.support.polling import eventually

LOG = logging.getLogger("test.supervisor")


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_process_that_dies_at_start_is_a_clear_error() -> None:
    keeper = ProcessSupervisor("broken", python("print('cannot bind port 67'); raise "
                                                 "SystemExit(3)"), LOG)
    with pytest.raises(StartError, match="broken exited at start with status 3: cannot bind"):
        keeper.start()
    assert not keeper.running


def test_a_process_that_dies_later_is_restarted_with_back_off(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(supervisor, "MIN_BACKOFF_S", 0.2)
    keeper = ProcessSupervisor("sleeper", python("import time; print('up'); time.sleep(60)"),
                               LOG)
    keeper.start()
    try:
        first = keeper.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        # The new pid is visible a moment before the restart is counted.
        eventually(lambda: keeper.pid not in (None, first) and keeper.restarts == 1, 5,
                   "the restarted process")
        assert (f"sleeper (pid {first}) exited with status -9; restarting in 0 s. "
                f"Last output: up") in caplog.text
    finally:
        keeper.stop()
    assert not keeper.running


def test_stop_ends_the_process_by_its_pid_and_it_stays_stopped() -> None:
    keeper = ProcessSupervisor("sleeper", python("import time; time.sleep(60)"), LOG)
    keeper.start()
    pid = keeper.pid
    assert pid is not None
    keeper.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    time.sleep(supervisor.MIN_BACKOFF_S + 0.2)
    assert not keeper.running and keeper.restarts == 0


def test_output_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOG.name)
    keeper = ProcessSupervisor("talker", python("import sys, time; print('dhcp ready'); "
                                                "sys.stdout.flush(); time.sleep(60)"), LOG)
    keeper.start()
    try:
        eventually(lambda: "dhcp ready" in caplog.text, 5, "its log line")
        assert any(r.levelno == logging.DEBUG and r.getMessage() == "dhcp ready"
                   for r in caplog.records)
    finally:
        keeper.stop()
