"""The ``ramdisk`` deploy interface (Ironic's ``RamdiskDeploy``): a diskless node boots its
instance's kernel and ramdisk (or an ISO) from the network, every time; nothing is written to
its disk, no deploy ramdisk boots for the deploy.

Deploy: validate the instance's files (``instance_info/kernel`` and ``ramdisk``, or
``boot_iso``: services/drivers/boot/instance_ramdisk.py) and power the node off; the conductor's
deploy flow then configures the tenant network, has the boot interface prepare the instance
(its desired boot becomes the instance's kernel and ramdisk, the boot device the network,
persistently) and powers the node on: ``active`` at once, as in Ironic (no agent reports the
instance). A config drive is refused: there is no disk to put it on.

Tear down (and rebuild) power off and remove the instance's boot; cleaning boots the deploy
ramdisk and runs the agent's clean steps, as the ``direct`` interface does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.common.config import Settings
from services.drivers.boot import instance_ramdisk
from services.drivers.boot.ipxe import NetworkBoot, check_reachable
from services.drivers.deploy.cleaning import AgentCleaning, CleansThroughAgent
from services.drivers.driver_info import InvalidParameter
from services.drivers.power_actions import power_off_or_ask

if TYPE_CHECKING:
    from services.conductor.task import Task

DEPLOY_STEP = {"interface": "deploy", "step": "deploy", "priority": 100, "argsinfo": None}
# Ironic's words (ramdisk.RamdiskDeploy.validate).
NO_RAMDISK_BOOT = ("Invalid configuration: The boot interface must have the `ramdisk_boot` "
                   "capability. You are using an incompatible boot interface.")


class RamdiskDeploy(CleansThroughAgent):
    diskless = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cleaning = AgentCleaning(settings, "ramdisk")

    def validate(self, task: Task) -> None:
        if not task.driver.boot.ramdisk_boot:
            raise InvalidParameter(NO_RAMDISK_BOOT)
        node = task.node
        if (node.instance_info or {}).get("configdrive") is not None:
            raise InvalidParameter(
                f"A config drive cannot be used with the ramdisk deploy interface: node "
                f"{node.uuid} boots from the network and nothing is written to its disk. "
                f"Deploy without a configdrive, or use the direct deploy interface.")
        files = instance_ramdisk.instance_files(self.settings, node)
        if files.get("kernel"):
            instance_ramdisk.instance_kernel_params(self.settings, node)
        if isinstance(task.driver.boot, NetworkBoot):  # the files a real machine fetches
            for key, url in files.items():
                check_reachable(self.settings, f"instance {key}", url)

    def deploy(self, task: Task) -> str | None:
        self.validate(task)  # again: the request's config drive was added after validation
        task.node.deploy_step = dict(DEPLOY_STEP)
        power_off_or_ask(task)  # the flow powers it on once its boot is the instance's
        return None


def ramdisk_deploy(settings: Settings) -> RamdiskDeploy:
    return RamdiskDeploy(settings)
