"""Running an agent command across heartbeats: sent once, then polled until it ends.

The command being waited for is kept in ``driver_internal_info["agent_command"]`` (its id and
name), so whichever conductor gets the next heartbeat (after a takeover too) goes on polling it.
Long commands answer RUNNING; short ones answer SUCCEEDED or FAILED at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from services.drivers import agent_client
from services.drivers.agent_client import (
    AGENT_COMMAND,
    FAILED,
    RUNNING,
    AgentBusy,
    AgentCommandFailed,
)
from services.drivers.base import DriverError

if TYPE_CHECKING:
    from services.conductor.task import Task

Params = Callable[[], dict[str, Any]]
POLL_INTERVAL_S = 0.5


def _running_command(task: Task, name: str, timeout_s: float) -> dict[str, Any] | None:
    """The agent's running ``name`` command, e.g. one sent by a conductor that died since."""
    running = [c for c in agent_client.list_commands(task.node, timeout_s)
               if c.get("command_name") == name and c.get("command_status") == RUNNING]
    return running[-1] if running else None


def _send(task: Task, name: str, params: Params, timeout_s: float) -> dict[str, Any]:
    try:
        return agent_client.run_command(task.node, name, params(), timeout_s)
    except AgentBusy:
        adopted = _running_command(task, name, timeout_s)
        if adopted is None:
            raise
        return adopted


def _ended(task: Task, name: str, document: dict[str, Any]) -> dict[str, Any]:
    if agent_client.status_of(task.node, document) == FAILED:
        error = document.get("command_error") or "the agent gave no reason"
        raise AgentCommandFailed(str(error))
    result = document.get("command_result")
    return result if isinstance(result, dict) else {}


def advance(task: Task, name: str, params: Params, timeout_s: float) -> dict[str, Any] | None:
    """One heartbeat's worth of ``name``: None while it runs, its result once it succeeded.

    A command that failed raises AgentCommandFailed with the agent's message.
    """
    node = task.node
    current = node.driver_internal_info.get(AGENT_COMMAND)
    if isinstance(current, dict) and current.get("name") == name and current.get("id"):
        document = agent_client.get_command(node, str(current["id"]), timeout_s)
    else:
        document = _send(task, name, params, timeout_s)
    if agent_client.status_of(node, document) == RUNNING:
        command_id = document.get("id")
        if not command_id:
            raise DriverError(f"the agent of node {node.uuid} runs {name} without a command id")
        task.update_internal_info(**{AGENT_COMMAND: {
            "id": str(command_id), "name": name, "progress": document.get("progress")}})
        return None
    task.pop_internal_info(AGENT_COMMAND)
    return _ended(task, name, document)


def run_to_end(task: Task, name: str, params: dict[str, Any], timeout_s: float
               ) -> dict[str, Any]:
    """Run a short command now and wait for its end (at most ``timeout_s``)."""
    node = task.node
    document = agent_client.run_command(node, name, params, timeout_s)
    deadline = time.monotonic() + timeout_s
    while agent_client.status_of(node, document) == RUNNING:
        if time.monotonic() > deadline:
            raise DriverError(f"the agent of node {node.uuid} did not finish {name} within "
                              f"{timeout_s:.0f} s")
        time.sleep(POLL_INTERVAL_S)
        document = agent_client.get_command(node, str(document.get("id")), timeout_s)
    return _ended(task, name, document)
