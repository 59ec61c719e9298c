"""The deploy interfaces that work through the agent: what ``direct`` and ``iscsi`` share.

Both boot the node into the deploy ramdisk and wait for its agent; on each heartbeat the
conductor calls ``continue_deploy`` (or ``continue_clean``), which advances the work by one
agent command and answers "wait" until the image is on the disk. They differ only in how the
image gets there, their ``ImageWriter``: the agent downloads it (``direct``) or the conductor
writes into the disk the agent exports (``iscsi``). A PC of a room taking logins at boot first
waits for its user's choice (``login_step``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from services.common.config import Settings
from services.drivers.base import WAIT, Resume
from services.drivers.deploy import login_step, state_save
from services.drivers.deploy.cleaning import AgentCleaning, CleansThroughAgent
from services.drivers.deploy.ramdisk import boot_ramdisk
from services.drivers.deploy.state_resume import STUDENT_STATE
from services.drivers.driver_info import InvalidParameter

if TYPE_CHECKING:
    from services.conductor.task import Task

DEPLOY_STEP = {"interface": "deploy", "step": "deploy", "priority": 100, "argsinfo": None}


class ImageWriter(Protocol):
    name: str

    def validate(self, task: Task) -> None:
        """Raise DriverError if the node's image cannot be written this way."""

    def write(self, task: Task, resume: Resume) -> str | None:
        """Advance the write on a heartbeat: "wait" until done, then None. Before work that
        holds the node for long (not just one agent command), call ``resume`` first."""


class AgentDeploy(CleansThroughAgent):
    def __init__(self, settings: Settings, writer: ImageWriter) -> None:
        self.settings = settings
        self.writer = writer
        self.cleaning = AgentCleaning(settings, writer.name)

    def validate(self, task: Task) -> None:
        if (task.node.instance_info or {}).get(STUDENT_STATE) and self.writer.name != "direct":
            raise InvalidParameter(f"A student's state is restored by the direct deploy "
                                   f"interface only, not by {self.writer.name}.")
        self.writer.validate(task)

    def deploy(self, task: Task) -> str | None:
        # Again: the config drive of the request was added to instance_info after validation.
        self.writer.validate(task)
        task.node.deploy_step = dict(DEPLOY_STEP)
        state_save.plan(task, self.settings)  # a logged-in student's work, saved first
        return boot_ramdisk(task, self.settings)

    def continue_deploy(self, task: Task, resume: Resume) -> str | None:
        if state_save.advance(task, self.settings) == WAIT:
            return WAIT
        if login_step.wanted(task, self.settings):
            action = login_step.advance(task, self.settings)
            if action == WAIT:
                return WAIT
            if action == login_step.MAINTENANCE:
                return None  # the disk boots as it is
        return self.writer.write(task, resume)
