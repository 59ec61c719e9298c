"""The ``noop`` management interface: for machines whose firmware boots from the network first.

Classroom PCs without a BMC are set up that way once; the boot service then decides what they
boot (the deploy ramdisk, or their local disk) and there is no boot device to set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.drivers.base import ManagementInterface

if TYPE_CHECKING:
    from services.conductor.task import Task


class NoopManagement(ManagementInterface):
    # The boot interfaces read this: such nodes are told to boot from disk by the boot service.
    can_set_boot_device = False

    def validate(self, task: Task) -> None:
        return None

    def get_supported_boot_devices(self, task: Task) -> list[str]:
        return ["pxe", "disk"]

    def get_boot_device(self, task: Task) -> dict[str, Any]:
        return {"boot_device": None, "persistent": None}

    def set_boot_device(self, task: Task, device: str, persistent: bool) -> None:
        task.record("management", f"Boot device {device} not set: the noop management "
                                  f"interface relies on the machine booting from the network "
                                  f"first.")
