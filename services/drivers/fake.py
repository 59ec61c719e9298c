"""The ``fake`` implementations: they touch no hardware, each after an optional random delay.

Like Ironic's fake-hardware, they let the whole life of a node run without a machine, for
tests, development and benchmarks. Delay ranges come from the settings (ENCLUME_FAKE_*_DELAY_S).

A fake deploy that lasts a second or more reports its image write's progress as the agent path
does: ``driver_internal_info["agent_command"]`` names a running ``standby.write_image`` with its
``progress`` (bytes done of ``driver_info["fake_image_bytes"]``, 400 MB by default), committed
every ``PROGRESS_EVERY_S``; the room jobs and the web page read it from there as they read a
real agent's.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from services.drivers.agent_client import AGENT_COMMAND
from services.drivers.base import (
    BOOT_DEVICES,
    POWER_OFF,
    POWER_ON,
    SOFT_POWER_OFF,
    BootInterface,
    DeployInterface,
    DriverError,
    DriverStep,
    InspectInterface,
    ManagementInterface,
    NetworkInterface,
    OtherInterface,
    PowerInterface,
    RescueInterface,
    Resume,
)
from services.drivers.deploy.direct import WRITE_IMAGE

if TYPE_CHECKING:
    from services.conductor.task import Task

FAKE_IMAGE_BYTES = 400_000_000  # at 3 to 6 s a deploy: 70 to 130 MB/s, a gigabit link
PROGRESS_EVERY_S = 0.5


class FakeDelay:
    def __init__(self, delay_range: tuple[float, float]) -> None:
        self.low, self.high = delay_range

    def draw(self) -> float:
        return random.uniform(self.low, self.high) if self.high > 0 else 0.0

    def sleep(self) -> None:
        if seconds := self.draw():
            time.sleep(seconds)


class _Fake:
    """What the fake implementations share: validation passes, every action just waits."""

    def __init__(self, delay_range: tuple[float, float] = (0.0, 0.0)) -> None:
        self.delay = FakeDelay(delay_range)

    def validate(self, task: Task) -> None:
        return None


class FakeOther(_Fake, OtherInterface):
    """``fake`` bios, console ... and ``noop`` storage: they validate and have nothing to do."""


class FakePower(_Fake, PowerInterface):
    """A machine whose power switch lives in ``driver_internal_info["fake_power_state"]``.

    That is the "hardware": what the conductor believes is ``power_state``; a test can flip the
    switch behind the conductor's back, as a person at the machine would.
    """

    def get_power_state(self, task: Task) -> str:
        self.delay.sleep()
        physical = task.node.driver_internal_info.get("fake_power_state")
        return str(physical or task.node.power_state or POWER_OFF)

    def set_power_state(self, task: Task, state: str) -> None:
        if state not in (POWER_ON, POWER_OFF, SOFT_POWER_OFF):
            raise DriverError(f"fake power cannot set the power state {state!r}")
        self.delay.sleep()
        task.update_internal_info(fake_power_state=POWER_ON if state == POWER_ON else POWER_OFF)

    def reboot(self, task: Task) -> None:
        self.delay.sleep()
        task.update_internal_info(fake_power_state=POWER_ON)


class FakeManagement(_Fake, ManagementInterface):
    def get_supported_boot_devices(self, task: Task) -> list[str]:
        return ["pxe", "disk", "cdrom", "bios", "safe"]

    def get_boot_device(self, task: Task) -> dict[str, Any]:
        self.delay.sleep()
        stored = task.node.driver_internal_info.get("fake_boot_device")
        return stored or {"boot_device": None, "persistent": None}

    def set_boot_device(self, task: Task, device: str, persistent: bool) -> None:
        if device not in BOOT_DEVICES:
            raise DriverError(f"unknown boot device {device!r}")
        self.delay.sleep()
        chosen = {"boot_device": device, "persistent": persistent}
        task.update_internal_info(fake_boot_device=chosen)

    def get_boot_mode(self, task: Task) -> str | None:
        mode: str | None = task.node.driver_internal_info.get("fake_boot_mode")
        return mode

    def set_boot_mode(self, task: Task, mode: str) -> None:
        self.delay.sleep()
        task.update_internal_info(fake_boot_mode=mode)

    def get_secure_boot_state(self, task: Task) -> bool | None:
        enabled: bool | None = task.node.driver_internal_info.get("fake_secure_boot")
        return enabled

    def set_secure_boot_state(self, task: Task, enabled: bool) -> None:
        self.delay.sleep()
        task.update_internal_info(fake_secure_boot=enabled)


class FakeBoot(_Fake, BootInterface):
    ramdisk_boot = True  # as Ironic's fake boot: a diskless deploy can be tried on it

    def prepare_ramdisk(self, task: Task) -> None:
        self.delay.sleep()

    def clean_up_ramdisk(self, task: Task) -> None:
        self.delay.sleep()

    def prepare_instance(self, task: Task) -> None:
        self.delay.sleep()

    def clean_up_instance(self, task: Task) -> None:
        self.delay.sleep()


FAKE_DEPLOY_STEPS = {"deploy": DriverStep("deploy", 100, requires_ramdisk=False)}


# The agent interfaces' erase steps, as names the fake deploy accepts and does nothing for.
FAKE_CLEAN_STEPS = {name: DriverStep(name, priority, requires_ramdisk=False)
                    for name, priority in (("erase_devices_metadata", 99), ("erase_devices", 10))}


class FakeDeploy(_Fake, DeployInterface):
    deploy_steps = FAKE_DEPLOY_STEPS
    clean_steps = FAKE_CLEAN_STEPS

    def execute_step(self, task: Task, name: str, args: dict[str, Any], resume: Resume
                     ) -> str | None:
        if name == "deploy":
            return self.deploy(task)
        if name not in FAKE_CLEAN_STEPS:
            raise DriverError(f"fake deploy has no step {name}")
        self.delay.sleep()
        return None

    def deploy(self, task: Task) -> str | None:
        """Fails with ``driver_info["fake_deploy_error"]`` when set (a disk that breaks); counts
        the images written in ``driver_internal_info["fake_deploys"]``, as a disk would show."""
        self._write_image(task)
        if error := task.node.driver_info.get("fake_deploy_error"):
            raise DriverError(str(error))
        task.update_internal_info(fake_deploys=task.node.driver_internal_info.get(
            "fake_deploys", 0) + 1)
        return None

    def _write_image(self, task: Task) -> None:
        """The deploy's delay, in steps that each report the bytes written so far."""
        seconds = self.delay.draw()
        steps = int(seconds / PROGRESS_EVERY_S)
        if steps < 2:
            time.sleep(seconds)
            return
        total = int(task.node.driver_info.get("fake_image_bytes") or FAKE_IMAGE_BYTES)
        try:
            for step in range(1, steps):
                time.sleep(seconds / steps)
                task.update_internal_info(**{AGENT_COMMAND: {
                    "id": f"fake-{task.node.uuid}", "name": WRITE_IMAGE,
                    "progress": {"done_bytes": total * step // steps, "total_bytes": total}}})
                task.commit()
            time.sleep(seconds / steps)
        finally:
            task.pop_internal_info(AGENT_COMMAND)  # committed with the deploy's end or failure

    def tear_down(self, task: Task) -> None:
        self.delay.sleep()

    def clean(self, task: Task) -> str | None:
        self.delay.sleep()
        return None

    def execute_clean_steps(self, task: Task, steps: list[dict[str, Any]]) -> str | None:
        self.delay.sleep()
        return None


class FakeNetwork(_Fake, NetworkInterface):
    def add_provisioning_network(self, task: Task) -> None:
        self.delay.sleep()

    def remove_provisioning_network(self, task: Task) -> None:
        self.delay.sleep()

    def add_cleaning_network(self, task: Task) -> None:
        self.delay.sleep()

    def remove_cleaning_network(self, task: Task) -> None:
        self.delay.sleep()

    def configure_tenant_networks(self, task: Task) -> None:
        self.delay.sleep()

    def unconfigure_tenant_networks(self, task: Task) -> None:
        self.delay.sleep()


class NoopNetwork(FakeNetwork):
    """The ``noop`` network interface: the node stays on whatever network it is on.

    As Ironic's: it accepts VIFs and keeps none (attach and detach do nothing, the list is
    empty), so a client that attaches VIFs before deploying works with it."""

    def vif_list(self, task: Task) -> list[dict[str, Any]]:
        return []

    def vif_attach(self, task: Task, vif_info: dict[str, Any]) -> None:
        """Accepted; nothing is recorded."""

    def vif_detach(self, task: Task, vif_id: str) -> None:
        """Accepted; nothing is recorded."""


class FakeInspect(_Fake, InspectInterface):
    def inspect_hardware(self, task: Task) -> str | None:
        self.delay.sleep()
        return None


class NoInterface(_Fake, OtherInterface):
    """The ``no-*`` implementations (no-bios, no-console ...): nothing to do, nothing to check."""

    supported = False


class NoInspect(_Fake, InspectInterface):
    """``no-inspect``: the node cannot be inspected (the conductor refuses before calling)."""

    supported = False

    def inspect_hardware(self, task: Task) -> str | None:
        raise DriverError("the no-inspect interface cannot inspect a node")


class FakeRescue(_Fake, RescueInterface):
    """``fake`` rescue, as Ironic's: the node is rescued (and back to active) at once."""

    def rescue(self, task: Task) -> str | None:
        self.delay.sleep()
        return None

    def unrescue(self, task: Task) -> None:
        self.delay.sleep()


class NoRescue(_Fake, RescueInterface):
    """``no-rescue``: the conductor refuses a rescue before calling it."""

    supported = False

    def rescue(self, task: Task) -> str | None:
        raise DriverError("the no-rescue rescue interface cannot rescue a node")

    def unrescue(self, task: Task) -> None:
        raise DriverError("the no-rescue rescue interface cannot unrescue a node")
