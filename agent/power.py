"""standby.power_off / reboot / sync: the answer leaves first, then the machine goes; and the
running of such a command (a locked down agent's network command too)."""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time

LOG = logging.getLogger(__name__)


def sync() -> dict[str, str]:
    os.sync()
    return {"synced": "all file systems and block devices"}


def run(command: tuple[str, ...]) -> None:
    """Run ``command``; its failure is logged, as nobody waits for an answer any more."""
    LOG.info("running %s", " ".join(command))
    done = subprocess.run(list(command), check=False, capture_output=True)
    if done.returncode != 0:
        LOG.error("%s failed: %s", " ".join(command), done.stderr.decode(errors="replace"))


def _act(command: tuple[str, ...], delay_s: float) -> None:
    time.sleep(delay_s)
    os.sync()
    run(command)


def schedule(command: tuple[str, ...], delay_s: float) -> dict[str, str]:
    os.sync()
    threading.Thread(target=_act, args=(command, delay_s), name="power", daemon=True).start()
    return {"scheduled": " ".join(command), "after_s": str(delay_s)}
