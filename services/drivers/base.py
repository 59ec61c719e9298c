"""The driver contract: every interface's methods and optional capabilities, in one place.

A hardware type is composition, not inheritance: for each interface it names which
implementations it allows and which one is the default. A node picks one implementation per
interface; the conductor builds a ``NodeDriver`` of those instances for the work at hand.

Each interface is an abstract class below. An implementation subclasses exactly one of them and
defines its required methods (else it cannot be built); optional methods have a default here,
capabilities are class flags. A public method the contract does not declare (a misspelt
``continue_deploi``) is refused when the class is defined; helpers are private (``_name``).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from services.common.exceptions import DriverError
from services.common.hardware_types import (  # noqa: F401 (the drivers' names for them)
    BIOS_REGISTRY_FIELDS,
    BOOT_DEVICES,
    POWER_OFF,
    POWER_ON,
    POWER_TARGETS,
    REBOOT,
    SOFT_POWER_OFF,
    SOFT_REBOOT,
    HardwareType,
)
from services.common.raid_config import configuration_error
from services.drivers.console_stream import ConsoleStream
from services.drivers.driver_errors import (  # noqa: F401 (the drivers' names for them)
    ManualActionRequired,
    MissingParameters,
    UnsupportedDriverExtension,
    unexpected_error,
    unsupported,
)
from services.drivers.interface_root import WAIT, Interface, Resume
from services.drivers.network import vifs
from services.drivers.step_spec import (  # noqa: F401 (DriverStep: the drivers' name for it)
    RAID_CLEAN_STEPS,
    RAID_DEPLOY_STEPS,
    DriverStep,
    conductor_steps,
    run_method_step,
)

if TYPE_CHECKING:
    from services.common.models import Port
    from services.conductor.task import Task

class PowerInterface(Interface):
    # False: a change cannot be confirmed (Wake-on-LAN), so the node records what is read back.
    confirms_power_changes: ClassVar[bool] = True

    @abstractmethod
    def get_power_state(self, task: Task) -> str | None: ...

    @abstractmethod
    def set_power_state(self, task: Task, state: str) -> None: ...

    @abstractmethod
    def reboot(self, task: Task) -> None: ...

    def reaches_node_in_band(self, task: Task) -> bool:
        """True when the node is reached through its own network only (a service in the OS it
        runs), so that moving its switch ports would cut the way: a flow then powers it off
        first, as Ironic powers a node off before it adds the provisioning network."""
        return False


HEALTH_STATES = ("OK", "Warning", "Critical")  # Ironic's HealthState values


class ManagementInterface(Interface):
    # False: the machine boots from the network first by itself; the boot service decides what
    # it boots (the boot interfaces read this).
    can_set_boot_device: ClassVar[bool] = True

    @abstractmethod
    def get_supported_boot_devices(self, task: Task) -> list[str]: ...

    @abstractmethod
    def get_boot_device(self, task: Task) -> dict[str, Any]: ...

    @abstractmethod
    def set_boot_device(self, task: Task, device: str, persistent: bool) -> None: ...

    # The firmware's boot mode ("bios"/"uefi") and UEFI secure boot (API 1.75, 1.76); by
    # default not supported, with Ironic's UnsupportedDriverExtension text.
    def get_boot_mode(self, task: Task) -> str | None:
        raise unsupported(task, "get_boot_mode")

    def set_boot_mode(self, task: Task, mode: str) -> None:
        raise unsupported(task, "set_boot_mode")

    def get_secure_boot_state(self, task: Task) -> bool | None:
        raise unsupported(task, "get_secure_boot_state")

    def set_secure_boot_state(self, task: Task, enabled: bool) -> None:
        raise unsupported(task, "set_secure_boot_state")

    # Virtual media (API 1.89): an image at a URL the BMC fetches, as a "cdrom", "floppy" or
    # "disk"; detach ejects the given kinds (all when None).
    def attach_virtual_media(self, task: Task, device_type: str, image_url: str) -> None:
        raise unsupported(task, "attach_virtual_media")

    def detach_virtual_media(self, task: Task, device_types: list[str] | None) -> None:
        raise unsupported(task, "detach_virtual_media")

    # The BMC's drives (API 1.93): each {"media_types": [...], "inserted": ..., "image": ...}.
    def get_virtual_media(self, task: Task) -> list[dict[str, Any]]:
        raise unsupported(task, "get_virtual_media")

    # The hardware's health as the BMC reports it, one of HEALTH_STATES or None (API 1.109).
    def get_node_health(self, task: Task) -> str | None:
        raise unsupported(task, "get_node_health")


class BootInterface(Interface):
    # True: ``prepare_instance`` can boot a diskless node's kernel and ramdisk (or ISO) from the
    # network (Ironic's ``ramdisk_boot`` capability), as the ``ramdisk`` deploy interface needs.
    ramdisk_boot: ClassVar[bool] = False

    @abstractmethod
    def prepare_ramdisk(self, task: Task) -> None: ...

    @abstractmethod
    def clean_up_ramdisk(self, task: Task) -> None: ...

    @abstractmethod
    def prepare_instance(self, task: Task) -> None: ...

    @abstractmethod
    def clean_up_instance(self, task: Task) -> None: ...


class DeployInterface(Interface):
    # True: the instance is booted from the network and nothing is written to the disk (the
    # ``ramdisk`` deploy interface): no deploy ramdisk boots for the deploy, and the boot
    # interface's ``prepare_instance`` boots the instance's kernel and ramdisk.
    diskless: ClassVar[bool] = False

    @abstractmethod
    def deploy(self, task: Task) -> str | None:
        """The core deploy step ``deploy.deploy``: write the instance (or boot the ramdisk
        whose agent the next steps use). Returns WAIT when it continues asynchronously."""

    @abstractmethod
    def tear_down(self, task: Task) -> None: ...

    @abstractmethod
    def clean(self, task: Task) -> str | None: ...

    @abstractmethod
    def execute_clean_steps(self, task: Task, steps: list[dict[str, Any]]) -> str | None: ...

    def continue_deploy(self, task: Task, resume: Resume) -> str | None:
        """Kept for interfaces outside this tree: the deploy flow never calls it."""
        return WAIT

    def continue_clean(self, task: Task, resume: Resume) -> str | None:
        """As ``continue_deploy``, in clean wait: WAIT until the clean steps are done."""
        return WAIT

    def keeps_agent(self, task: Task) -> bool:
        """Fast track: whether the node's running agent stays up (powered on, not forgotten)
        after cleaning and inspection, for the next operation. The default: never."""
        return False

    def lock_down_agent(self, task: Task) -> None:
        """At the end of a deploy of a node that is not powered off (``disable_power_off``):
        the agent stops serving and takes the network down until the reboot into the
        instance (Ironic's ``tear_down_agent``). The default: no agent, nothing to do."""


class NetworkInterface(Interface):
    @abstractmethod
    def add_provisioning_network(self, task: Task) -> None: ...

    @abstractmethod
    def remove_provisioning_network(self, task: Task) -> None: ...

    @abstractmethod
    def add_cleaning_network(self, task: Task) -> None: ...

    @abstractmethod
    def remove_cleaning_network(self, task: Task) -> None: ...

    @abstractmethod
    def configure_tenant_networks(self, task: Task) -> None: ...

    @abstractmethod
    def unconfigure_tenant_networks(self, task: Task) -> None: ...

    # The rescue ramdisk's network (as Ironic's base: nothing to do unless the interface moves
    # ports); unconfigure_tenant_networks comes first, configure_tenant_networks after.
    def add_rescuing_network(self, task: Task) -> None:
        """Nothing by default."""

    def remove_rescuing_network(self, task: Task) -> None:
        """Nothing by default."""

    # VIFs (API 1.28), kept on the node's ports as Ironic keeps them: services/drivers/network/
    # vifs.py. The conductor calls them under the node's lock, after ``validate``.
    def vif_list(self, task: Task) -> list[dict[str, Any]]:
        return vifs.list_vifs(task)

    def vif_attach(self, task: Task, vif_info: dict[str, Any]) -> None:
        vifs.attach(task, vif_info, self._usable_for_vif)

    def vif_detach(self, task: Task, vif_id: str) -> None:
        vifs.detach(task, vif_id)

    def _usable_for_vif(self, port: Port) -> bool:
        """Whether this interface can put a VIF on ``port`` at all (any port by default)."""
        return True


class InspectInterface(Interface):
    @abstractmethod
    def inspect_hardware(self, task: Task) -> str | None:
        """Start inspection: WAIT when an agent calls back with the inventory, else None."""

    def continue_inspection(self, task: Task, resume: Resume) -> str | None:
        """On a heartbeat in inspect wait: WAIT, None once the inventory is applied."""
        return WAIT


@dataclass(frozen=True)
class BiosAttribute:
    """A BIOS setting as the machine reports it; ``registry`` holds BIOS_REGISTRY_FIELDS."""

    name: str
    value: str | None
    registry: dict[str, Any] = field(default_factory=dict)


class BiosInterface(Interface):
    """Firmware settings. The conductor caches what ``read_settings`` answers (the node's
    ``/bios``) after verification and cleaning, and runs the steps (clean and deploy steps)."""

    clean_steps = deploy_steps = conductor_steps(
        ("apply_configuration", "A list of BIOS settings to be applied"),
        ("factory_reset", None))

    def execute_step(self, task: Task, name: str, args: dict[str, Any], resume: Resume
                     ) -> str | None:
        run_method_step(self, "bios", task, name, args)
        return None

    @abstractmethod
    def read_settings(self, task: Task) -> list[BiosAttribute]: ...

    @abstractmethod
    def apply_configuration(self, task: Task, settings: list[dict[str, Any]]) -> None:
        """Set each ``{"name", "value"}``; DriverError with the machine's reason when it
        refuses one or does not apply it."""

    @abstractmethod
    def factory_reset(self, task: Task) -> None: ...


class FirmwareInterface(Interface):
    """Firmware components ("bios", "bmc") and their versions: cached by the conductor as the
    bios settings are; updated by the ``update`` clean step, which the conductor runs."""

    clean_steps = deploy_steps = conductor_steps(
        ("update", "A list of dicts with firmware components to be updated"))

    def execute_step(self, task: Task, name: str, args: dict[str, Any], resume: Resume
                     ) -> str | None:
        run_method_step(self, "firmware", task, name, args)
        return None

    @abstractmethod
    def read_components(self, task: Task) -> dict[str, str | None]:
        """Component name -> its current version."""

    def read_identities(self, task: Task) -> dict[str, dict[str, str | None]]:
        """Component name -> its vendor, model, serial_number (API 1.114); none by default."""
        return {}

    @abstractmethod
    def update(self, task: Task, settings: list[dict[str, Any]]) -> None:
        """Flash each ``{"component", "url"}`` in order; DriverError with the machine's reason
        when it refuses one or the component's version does not change."""


class ConsoleInterface(Interface):
    # Ironic's console_info "type" ("socat": a raw TCP URL, "shellinabox": a web page).
    console_type: ClassVar[str] = "socat"

    @abstractmethod
    def open_console(self, task: Task, on_output: Callable[[bytes], None],
                     on_lost: Callable[[str], None]) -> ConsoleStream:
        """The node's serial console, connected (DriverError when it cannot be)."""

    def terminal_port(self, task: Task) -> int:
        """The TCP port of a ``socat`` console (0: any free port)."""
        return 0


class RaidInterface(Interface):
    """RAID on the node's controllers, as Ironic's: ``create_configuration`` makes the logical
    disks of the node's ``target_raid_config`` and records what the machine then has in
    ``raid_config`` (services/drivers/raid.py's ``record``); the steps run in the conductor."""

    clean_steps = RAID_CLEAN_STEPS
    deploy_steps = RAID_DEPLOY_STEPS

    def execute_step(self, task: Task, name: str, args: dict[str, Any], resume: Resume
                     ) -> str | None:
        run_method_step(self, "raid", task, name, args)
        return None

    def validate(self, task: Task) -> None:
        if task.node.target_raid_config:
            self.validate_raid_config(task, task.node.target_raid_config)

    def validate_raid_config(self, task: Task, raid_config: dict[str, Any]) -> None:
        """DriverError with Ironic's text when this interface cannot take ``raid_config``."""
        problem = configuration_error(raid_config)
        if problem:
            raise DriverError(problem)

    def apply_configuration(self, task: Task, raid_config: dict[str, Any],
                            create_root_volume: bool = True,
                            create_nonroot_volumes: bool = False,
                            delete_existing: bool = False) -> None:
        """The deploy step: ``raid_config`` becomes the node's target, then is created."""
        self.validate_raid_config(task, raid_config)
        task.node.target_raid_config = raid_config
        self.create_configuration(task, create_root_volume, create_nonroot_volumes,
                                  delete_existing)

    @abstractmethod
    def create_configuration(self, task: Task, create_root_volume: bool = True,
                             create_nonroot_volumes: bool = True,
                             delete_existing: bool = False) -> None: ...

    @abstractmethod
    def delete_configuration(self, task: Task) -> None: ...


class RescueInterface(Interface):
    """Rescue (API 1.38): ``rescue`` answers WAIT when the rescue ramdisk's agent calls back
    (``continue_rescue`` on its heartbeats), None when the node is rescued at once."""

    @abstractmethod
    def rescue(self, task: Task) -> str | None: ...

    @abstractmethod
    def unrescue(self, task: Task) -> None: ...

    def continue_rescue(self, task: Task, resume: Resume) -> str | None:
        return None

    def clean_up(self, task: Task) -> None:
        """After a rescue, its failure or timeout: forget the password (and undo the rest)."""


class OtherInterface(Interface):
    """The interfaces Enclume declares no methods for yet (storage, vendor): a node chooses
    an implementation, which only validates."""


# Which contract each interface name's implementations follow.
CONTRACTS: dict[str, type[Interface]] = {
    "power": PowerInterface,
    "management": ManagementInterface,
    "boot": BootInterface,
    "deploy": DeployInterface,
    "network": NetworkInterface,
    "inspect": InspectInterface,
    "bios": BiosInterface,
    "firmware": FirmwareInterface,
    "console": ConsoleInterface,
    "raid": RaidInterface,
    "rescue": RescueInterface,
    **{name: OtherInterface for name in ("storage", "vendor")},
}
