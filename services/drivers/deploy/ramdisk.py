"""Booting a node into the deploy ramdisk, and forgetting the agent of an earlier boot.

Everything about one boot of the ramdisk (its URL, token, last heartbeat, the command being
waited for) is forgotten whenever a new boot starts and when an operation ends, so that an
agent of an earlier boot can neither be mistaken for the new one nor be sent commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.drivers import agent_client, power_actions
from services.drivers.base import WAIT

if TYPE_CHECKING:
    from services.conductor.task import Task



def forget_agent(task: Task) -> None:
    task.pop_internal_info(*agent_client.AGENT_KEYS)


def boot_ramdisk(task: Task) -> str:
    """Reboot into the ramdisk the boot interface prepared; the agent calls back later."""
    power_actions.reboot(task)
    forget_agent(task)
    return WAIT
