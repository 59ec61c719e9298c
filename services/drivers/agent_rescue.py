"""The ``agent`` rescue interface, as Ironic's AgentRescue.

Rescue: the node leaves its tenant network for the rescuing one and boots the rescue ramdisk
(Enclume's deploy ramdisk); the flow waits (``rescue wait``) for its agent. On the agent's
heartbeat the conductor sends ``rescue.finalize_rescue`` with the password's crypt hash
(``hashed_rescue_password``, ``hashed: true``, as Ironic sends it: the password itself never
leaves the conductor); the agent sets the ``rescue`` user's password and stops serving its API.
Then the ramdisk boot and the password are forgotten and the node goes back to its tenant
network, still running the rescue ramdisk: ``rescue``. Unrescue boots the instance again on
the tenant network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.common.config import Settings
from services.drivers.agent_client import AgentCommandFailed
from services.drivers.base import (
    WAIT,
    DriverError,
    MissingParameters,
    RescueInterface,
    Resume,
)
from services.drivers.deploy import steps
from services.drivers.deploy.ramdisk import forget_agent
from services.drivers.power_actions import power_off_or_ask, power_on_or_reboot
from services.drivers.rescue_password import forget_password

if TYPE_CHECKING:
    from services.conductor.task import Task

FINALIZE_RESCUE = "rescue.finalize_rescue"


class AgentRescue(RescueInterface):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def validate(self, task: Task) -> None:
        task.driver.boot.validate(task)
        password = task.node.instance_info.get("rescue_password")
        if password is None:
            raise MissingParameters(f"Node {task.node.uuid} is missing "
                                    "'instance_info/rescue_password'. It is required for "
                                    "rescuing node.")
        if not str(password).strip():
            raise DriverError(f"The 'instance_info/rescue_password' is an empty string for "
                              f"node {task.node.uuid}. The 'rescue_password' must be a "
                              "non-empty string value.")

    def rescue(self, task: Task) -> str | None:
        power_off_or_ask(task)
        task.driver.boot.clean_up_instance(task)
        task.driver.network.unconfigure_tenant_networks(task)
        task.driver.network.add_rescuing_network(task)
        task.driver.boot.prepare_ramdisk(task)
        forget_agent(task)  # an agent of an earlier boot is not this one
        power_on_or_reboot(task)
        return WAIT

    def continue_rescue(self, task: Task, resume: Resume) -> str | None:
        hashed = task.node.instance_info.get("hashed_rescue_password")
        if not hashed:
            raise DriverError("Agent rescue requires rescue_password in instance_info")
        try:
            steps.run_to_end(task, FINALIZE_RESCUE, {"rescue_password": hashed, "hashed": True},
                             self.settings.deploy.agent_command_timeout_s)
        except AgentCommandFailed as exc:
            raise DriverError(f"Agent returned bad result for command finalize_rescue: "
                              f"{exc}") from None
        self.clean_up(task)
        forget_agent(task)  # it serves no API any more
        task.driver.network.configure_tenant_networks(task)
        return None

    def unrescue(self, task: Task) -> None:
        power_off_or_ask(task)
        self.clean_up(task)
        task.driver.network.configure_tenant_networks(task)
        task.driver.boot.prepare_instance(task)
        power_on_or_reboot(task)

    def clean_up(self, task: Task) -> None:
        forget_password(task)
        task.driver.boot.clean_up_ramdisk(task)
        task.driver.network.remove_rescuing_network(task)
