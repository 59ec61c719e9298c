"""Powering off or rebooting a deployed OS through its session service, for machines without
a BMC (the ``wol`` power interface): the conductor records a command, the service fetches it on
its next heartbeat (services/common/session_service.py), and the conductor waits until it did.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from services.common import session_service
from services.common.config import Settings
from services.common.models import utcnow
from services.common.session_models import SessionService
from services.drivers.base import ManualActionRequired

if TYPE_CHECKING:
    from services.conductor.task import Task

DELIVERY_POLL_S = 0.5
UNREACHED = "no BMC and the session service did not answer"


def state(task: Task, settings: Settings) -> str | None:
    """``up``, ``off`` or None (unknown), as the node's session service was last heard of."""
    row = session_service.find(task.session, task.node.id)
    return session_service.status(row, utcnow(),
                                  timedelta(seconds=settings.session_service.timeout_s))


def run(task: Task, settings: Settings, command: str) -> None:
    """Have the node's session service run ``command``; ManualActionRequired (saying
    ``UNREACHED``) when it is not up or does not fetch the command in time."""
    row = session_service.find(task.session, task.node.id)
    if state(task, settings) != session_service.UP:
        raise ManualActionRequired(f"{UNREACHED} (it is not running or not reporting)")
    assert row is not None
    before = row.delivered_at
    session_service.request_command(row, command, utcnow())
    task.commit()  # the API hands it out from the database
    deadline = time.monotonic() + settings.session_service.command_timeout_s
    while time.monotonic() < deadline:
        time.sleep(DELIVERY_POLL_S)
        if _fetched(task, row, command, before):
            return
    row.command = row.command_at = None  # withdrawn: a PC coming back later must not obey it
    task.commit()
    if _fetched(task, row, command, before):  # fetched at the last moment
        return
    raise ManualActionRequired(f"{UNREACHED} (it did not fetch the {command} command in "
                               f"{settings.session_service.command_timeout_s:.0f} s)")


def _fetched(task: Task, row: SessionService, command: str, before: datetime | None) -> bool:
    task.session.refresh(row)
    if not session_service.delivered(row, command, before):
        return False
    task.record("power", f"The session service of the deployed OS fetched the {command} "
                         f"command.")
    return True
