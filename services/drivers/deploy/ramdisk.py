"""Booting a node into the deploy ramdisk, and forgetting the agent of an earlier boot.

Everything about one boot of the ramdisk (its URL, token, last heartbeat, the command being
waited for) is forgotten whenever a new boot starts and when an operation ends, so that an
agent of an earlier boot can neither be mistaken for the new one nor be sent commands.

Fast track (services/common/fast_track.py) is the exception: when the node's agent is up
(``agent_is_up``, Ironic's ``is_fast_track``) an operation uses it as it is, with no reboot,
and cleaning and inspection leave it running for the next operation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.common import fast_track
from services.common.config import Settings
from services.common.exceptions import Invalid
from services.drivers import agent_client, power_actions
from services.drivers.base import POWER_ON, WAIT

if TYPE_CHECKING:
    from services.conductor.task import Task


def forget_agent(task: Task) -> None:
    task.pop_internal_info(*agent_client.AGENT_KEYS)


def agent_is_up(task: Task, settings: Settings) -> bool:
    """Fast track is on for the node, it has no last_error, its power reads on and its agent
    heartbeated within ENCLUME_DEPLOY_FAST_TRACK_TIMEOUT_S (as Ironic's is_fast_track)."""
    node = task.node
    try:
        if not fast_track.enabled(node.driver_info, settings.deploy.fast_track):
            return False
    except Invalid:
        return False
    if node.last_error or not agent_client.is_alive(node, settings.deploy.fast_track_timeout_s):
        return False
    return task.driver.power.get_power_state(task) == POWER_ON


def boot_ramdisk(task: Task, settings: Settings) -> str:
    """Reboot into the ramdisk the boot interface prepared; the agent calls back later. With
    fast track and the agent up, no reboot: its next heartbeat continues the operation."""
    if agent_is_up(task, settings):
        task.pop_internal_info(agent_client.AGENT_COMMAND)  # the previous operation's
        task.record("provisioning", "Fast track: the node's agent is up; it is used without "
                                    "a reboot.")
        return WAIT
    power_actions.reboot(task)
    forget_agent(task)
    return WAIT
