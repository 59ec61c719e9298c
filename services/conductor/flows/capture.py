"""Capture of a reference PC: a manual cleaning whose one step the conductor planned itself
(``deploy.capture_image``, services/classroom/image_capture.py). The node boots the deploy
ramdisk, its agent sends its disk to the image store (``image.capture_blocks``), then the node is
powered off and back in ``manageable``; a failure ends in ``clean failed`` with the agent's
reason, powered off, as any cleaning. Heartbeats continue it as cleaning (``clean wait``)."""

from __future__ import annotations

from typing import Any

from services.classroom.image_capture import OPTION
from services.common.exceptions import Invalid
from services.conductor.flows import clean
from services.conductor.flows.steps import Step, event, on_ramdisk, validate
from services.conductor.task import Task
from services.drivers.boot_mode import boot_mode
from services.drivers.deploy.agent_deploy import AgentDeploy


def prepare(options: dict[str, Any]) -> Step:
    step = options[OPTION]

    def prepare(task: Task) -> None:
        settings = _agent_deploy(task).settings
        validate(task, "power", "management", "boot")
        planned = {**step, "args": {**step["args"], "boot_mode": boot_mode(task.node, settings)}}
        task.update_internal_info(clean_steps=[planned])
        event("clean")(task)

    return prepare


def capture(task: Task) -> None:
    on_ramdisk(task, task.driver.network.add_cleaning_network,
               lambda task: _agent_deploy(task).cleaning.start(task), clean.finish)


def _agent_deploy(task: Task) -> AgentDeploy:
    deploy = task.driver.deploy
    if not isinstance(deploy, AgentDeploy):
        raise Invalid(f"Node {task.node.uuid} cannot be captured: its deploy interface "
                      f"{task.node.deploy_interface!r} does not run the agent (direct or iscsi "
                      f"does).")
    return deploy
