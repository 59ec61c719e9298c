"""The deploy interfaces that work through the agent: what ``direct`` and ``iscsi`` share.

Both offer Ironic's agent deploy steps: ``deploy.deploy`` (100) boots the node into the deploy
ramdisk and waits for its agent, ``deploy.write_image`` (80) writes the image on the agent's
heartbeats, answering "wait" until it is on the disk; the agent's own steps (the erase steps,
priority 0 unless a user or a deploy template asks) run as agent commands in between. On each
heartbeat in clean wait the conductor calls ``continue_clean``. They differ only in how the
image gets there, their ``ImageWriter``: the agent downloads it (``direct``) or the conductor
writes into the disk the agent exports (``iscsi``). A PC of a room taking logins at boot first
waits for its user's choice (``login_step``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from services.common.config import Settings
from services.drivers.agent_client import AgentCommandFailed
from services.drivers.base import WAIT, DriverError, DriverStep, Resume
from services.drivers.deploy import login_step, state_save, steps
from services.drivers.deploy.block_restore import forget_written
from services.drivers.deploy.cleaning import (
    CLEAN_STEPS,
    ERASE_ARGS,
    AgentCleaning,
    CleansThroughAgent,
)
from services.drivers.deploy.ramdisk import boot_ramdisk
from services.drivers.deploy.state_resume import STUDENT_STATE
from services.drivers.driver_info import InvalidParameter

if TYPE_CHECKING:
    from services.conductor.task import Task

# Ironic's priorities; the agent's steps are disabled (0) unless asked for.
DEPLOY_STEPS: dict[str, DriverStep] = {step.name: step for step in (
    DriverStep("deploy", 100),
    DriverStep("write_image", 80),
    *(DriverStep(step.name, 0, step.agent_command, ERASE_ARGS) for step in CLEAN_STEPS.values()),
)}


class ImageWriter(Protocol):
    name: str

    def validate(self, task: Task) -> None:
        """Raise DriverError if the node's image cannot be written this way."""

    def write(self, task: Task, resume: Resume) -> str | None:
        """Advance the write on a heartbeat: "wait" until done, then None. Before work that
        holds the node for long (not just one agent command), call ``resume`` first."""


class AgentDeploy(CleansThroughAgent):
    deploy_steps = DEPLOY_STEPS

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
        state_save.plan(task, self.settings)  # a logged-in student's work, saved first
        return boot_ramdisk(task, self.settings)

    def execute_step(self, task: Task, name: str, args: dict[str, Any], resume: Resume
                     ) -> str | None:
        if name == "deploy":
            return self.deploy(task)
        return self.continue_step(task, name, args, resume)

    def continue_step(self, task: Task, name: str, args: dict[str, Any], resume: Resume
                      ) -> str | None:
        if name == "deploy":
            # The agent of the ramdisk it booted is up: before any other step touches the
            # disk, a logged-in student's work is saved, then the PC asks who is there.
            return WAIT if self._before_writing(task) == WAIT else None
        if self._before_writing(task) == login_step.MAINTENANCE:
            return None  # the user chose maintenance: the disk boots as it is
        if name == "write_image":
            return self.writer.write(task, resume)
        command = DEPLOY_STEPS[name].agent_command
        if command is None:
            raise DriverError(f"the {self.writer.name} deploy interface has no step {name}")
        try:
            result = steps.advance(task, command, lambda: dict(args),
                                   self.settings.deploy.agent_command_timeout_s)
        except AgentCommandFailed as exc:
            raise AgentCommandFailed(f"the agent's {command} failed: {exc}") from None
        if result is None:
            return WAIT
        if name == "erase_devices":
            forget_written(task)  # every byte is zero: no image left to compare with
        return None

    def _before_writing(self, task: Task) -> str | None:
        """The state save, then the login step (#20): WAIT while one runs, then the login's
        choice (MAINTENANCE: nothing is written), None without a login step. Both are done
        once: called again, it answers at once."""
        if state_save.advance(task, self.settings) == WAIT:
            return WAIT
        if login_step.wanted(task, self.settings):
            return login_step.advance(task, self.settings)
        return None
