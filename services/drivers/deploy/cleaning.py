"""Cleaning through the agent: the clean steps of the ``direct`` and ``iscsi`` deploy
interfaces, run one agent command after the other across heartbeats.

Automated cleaning (provide, and after a tear down) runs ENCLUME_AUTOMATED_CLEAN_STEPS;
manual cleaning runs the steps the user gave. The steps to run are kept in
``driver_internal_info["clean_steps"]`` and the next one's index in ``clean_step_index``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.classroom import image_capture as capture
from services.common.config import Settings
from services.drivers.agent_client import AgentCommandFailed
from services.drivers.base import WAIT, DeployInterface, DriverError, DriverStep, Resume
from services.drivers.deploy import steps
from services.drivers.deploy.block_restore import forget_written
from services.drivers.deploy.ramdisk import agent_is_up, boot_ramdisk, forget_agent

if TYPE_CHECKING:
    from services.conductor.task import Task

# The clean steps of the agent deploy interfaces: the agent command of each, with Ironic's
# default priorities.
# Their argument: the agent's ``disks`` parameter (all disks when absent).
ERASE_ARGS = {"disks": {"description": "the device paths of the disks to erase (all disks "
                                       "when absent)", "required": False}}
CLEAN_STEPS: dict[str, DriverStep] = {
    step.name: step for step in (
        DriverStep("erase_devices_metadata", 99, "deploy.erase_devices_metadata", ERASE_ARGS),
        DriverStep("erase_devices", 10, "deploy.erase_devices", ERASE_ARGS),
    )
}
# Steps the conductor plans itself, which a user's clean request may not name: the capture of
# a reference PC (services/classroom/image_capture.py), whose args say where the disk goes.
INTERNAL_STEPS: dict[str, DriverStep] = {
    capture.STEP: DriverStep(capture.STEP, 0, capture.AGENT_COMMAND),
}
STEP_INDEX = "clean_step_index"
LOCKDOWN = "system.lockdown"  # Ironic's agent command, for nodes not powered off


def automated_steps(settings: Settings) -> list[dict[str, Any]]:
    unknown = [name for name in settings.deploy.automated_clean_steps if name not in CLEAN_STEPS]
    if unknown:
        raise DriverError(f"ENCLUME_AUTOMATED_CLEAN_STEPS names unknown steps "
                          f"{', '.join(unknown)}; known: {', '.join(CLEAN_STEPS)}.")
    return [{"interface": "deploy", "step": name, "priority": CLEAN_STEPS[name].priority,
             "args": {}, "abortable": True} for name in settings.deploy.automated_clean_steps]


def check_manual_steps(requested: list[dict[str, Any]], interface: str) -> None:
    for step in requested:
        if step.get("interface") != "deploy" or step.get("step") not in CLEAN_STEPS:
            raise DriverError(
                f"Clean step {step.get('interface')}.{step.get('step')} is not supported by the "
                f"{interface} deploy interface; it supports "
                f"{', '.join('deploy.' + name for name in CLEAN_STEPS)}.")
        if not isinstance(step.get("args", {}), dict):
            raise DriverError(f"The args of clean step deploy.{step['step']} must be an "
                              f"object.")


class AgentCleaning:
    def __init__(self, settings: Settings, interface: str) -> None:
        self.settings = settings
        self.interface = interface

    def clean(self, task: Task) -> str | None:
        planned = automated_steps(self.settings)
        if not planned:
            return None
        task.update_internal_info(clean_steps=planned, **{STEP_INDEX: 0})
        return boot_ramdisk(task, self.settings)

    def execute_clean_steps(self, task: Task, requested: list[dict[str, Any]]) -> str | None:
        check_manual_steps(requested, self.interface)
        return self.start(task)

    def start(self, task: Task) -> str:
        """Boot the ramdisk to run the node's planned ``clean_steps`` from the first."""
        task.update_internal_info(**{STEP_INDEX: 0})
        return boot_ramdisk(task, self.settings)

    def continue_clean(self, task: Task) -> str | None:
        """On a heartbeat: advance the current step; None once every step is done."""
        planned = task.node.driver_internal_info.get("clean_steps") or []
        index = int(task.node.driver_internal_info.get(STEP_INDEX, 0))
        while index < len(planned):
            step = planned[index]
            task.node.clean_step = step
            command = {**CLEAN_STEPS, **INTERNAL_STEPS}[step["step"]].agent_command
            assert command is not None
            try:
                result = steps.advance(task, command, lambda s=step: dict(s.get("args") or {}),
                                       self.settings.deploy.agent_command_timeout_s)
            except AgentCommandFailed as exc:
                raise AgentCommandFailed(f"clean step deploy.{step['step']} failed: "
                                         f"{exc}") from None
            if result is None:
                return WAIT
            task.record("cleaning", f"Clean step deploy.{step['step']} done.")
            if step["step"] == "erase_devices":
                forget_written(task)  # every byte is zero: no image left to compare with
            index += 1
            task.update_internal_info(**{STEP_INDEX: index})
        task.pop_internal_info(STEP_INDEX)
        return None


class CleansThroughAgent(DeployInterface):
    """What the deploy interfaces that clean through the agent share (``direct``, ``iscsi``,
    ``ramdisk``): their clean steps, tear down, and fast track's ``keeps_agent``. A subclass
    sets ``settings`` and ``cleaning`` and defines ``validate`` and ``deploy``."""

    clean_steps = CLEAN_STEPS
    settings: Settings
    cleaning: AgentCleaning

    def tear_down(self, task: Task) -> None:
        forget_agent(task)

    def clean(self, task: Task) -> str | None:
        return self.cleaning.clean(task)

    def execute_clean_steps(self, task: Task, requested: list[dict[str, Any]]) -> str | None:
        return self.cleaning.execute_clean_steps(task, requested)

    def continue_clean(self, task: Task, resume: Resume) -> str | None:
        return self.cleaning.continue_clean(task)

    def keeps_agent(self, task: Task) -> bool:
        return agent_is_up(task, self.settings)

    def lock_down_agent(self, task: Task) -> None:
        try:
            steps.run_to_end(task, LOCKDOWN, {}, self.settings.deploy.agent_command_timeout_s)
        except DriverError as exc:
            raise DriverError(f"Error locking down the agent of node {task.node.uuid} after "
                              f"deploy: {exc}") from None
