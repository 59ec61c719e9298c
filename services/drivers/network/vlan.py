"""The ``vlan`` network interface: moves a node's switch ports between VLANs.

Which VLAN when (the conductor's flows call these):

| call                           | the node's PXE ports go to |
|--------------------------------|----------------------------|
| add_provisioning_network       | provisioning VLAN          |
| remove_provisioning_network    | (stay; the next call moves them) |
| configure_tenant_networks      | tenant VLAN                |
| unconfigure_tenant_networks    | provisioning VLAN          |
| add_cleaning_network           | cleaning VLAN              |
| remove_cleaning_network        | provisioning VLAN (nothing to do when it is the cleaning VLAN) |
| add_rescuing_network           | rescuing VLAN (after unconfigure_tenant_networks)           |
| remove_rescuing_network        | provisioning VLAN (nothing to do when it is the rescuing VLAN) |

So a machine is never left on no VLAN, and an idle machine rests on the provisioning VLAN.

VIFs (API 1.28, services/drivers/network/vifs.py): a VIF attaches only to a port cabled to a
known switch port (a local_link_connection). When VIFs are attached, the tenant step moves the
ports that carry them (PXE-enabled or not) to the tenant VLAN, as Ironic's neutron interface
binds the VIFs' ports; PXE-enabled ports without a VIF stay on the provisioning VLAN. Without
VIFs, the PXE-enabled ports go, as before. The provisioning VLAN takes back both kinds.

The VLANs of a node: those of its room when it is a PC of one (the room's ``idle_vlan`` as its
provisioning VLAN, the room's ``class_vlan`` as its tenant VLAN: services/classroom/networks.py),
else its driver_info keys, else the settings' defaults.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from services.classroom.networks import PORT_VLAN_KEY, RoomVlans, room_vlans
from services.common.config import Settings
from services.drivers.base import DriverError, MissingParameters, NetworkInterface
from services.drivers.network.batching import SwitchBatcher
from services.drivers.network.inventory import SwitchConfig, find_switch, load_switches
from services.drivers.network.switches import PortVlan, SwitchDriver, make_switch_driver
from services.drivers.network.switches.base import check_vlan
from services.drivers.network.vifs import vif_ports

if TYPE_CHECKING:
    from services.common.models import Port
    from services.conductor.task import Task


@dataclass(frozen=True)
class NodeVlans:
    provisioning: int
    cleaning: int
    tenant: int | None
    # Which of these come from the node's room, e.g. {"tenant": "the class VLAN of room B12"}.
    from_room: Mapping[str, str] = field(default_factory=dict)
    rescuing: int | None = None  # None: the provisioning VLAN


def node_vlans(driver_info: Mapping[str, Any], settings: Settings,
               room: RoomVlans | None = None) -> NodeVlans:
    """The node's VLANs: its room's (a PC of a room), else its driver_info keys, else the
    settings' defaults."""

    def pick(key: str, default: int | None) -> int | None:
        value = driver_info.get(key)
        if value in (None, ""):
            return default
        return check_vlan(value, f"driver_info/{key}")

    idle, class_ = (room.idle, room.class_) if room is not None else (None, None)
    from_room: dict[str, str] = {}
    if room is not None and idle is not None:
        from_room["provisioning"] = f"the idle VLAN of room {room.room}"
    if room is not None and class_ is not None:
        from_room["tenant"] = f"the class VLAN of room {room.room}"
    provisioning = idle or pick("provisioning_vlan", settings.network.provisioning_vlan)
    if provisioning is None:
        raise MissingParameters("No provisioning VLAN for the vlan network interface: set the "
                                "node's driver_info/provisioning_vlan or "
                                "ENCLUME_NETWORK_PROVISIONING_VLAN.")
    cleaning = pick("cleaning_vlan", settings.network.cleaning_vlan) or provisioning
    tenant = class_ or pick("tenant_vlan", settings.network.tenant_vlan)
    rescuing = pick("rescuing_vlan", settings.network.rescuing_vlan) or provisioning
    return NodeVlans(provisioning, cleaning, tenant, rescuing=rescuing, from_room=from_room)


@dataclass(frozen=True)
class PortBinding:
    """A node's port and the switch port it is cabled to."""

    port: Port
    switch: str
    port_id: str


class SwitchFleet:
    """The switches of the switches file, each with its driver, lock and batcher; read once."""

    def __init__(self, settings: Settings,
                 make_driver: Callable[[SwitchConfig, float], SwitchDriver] = make_switch_driver
                 ) -> None:
        self.settings = settings
        self._make_driver = make_driver
        self._lock = threading.Lock()
        self._switches: dict[str, SwitchConfig] | None = None
        self._batchers: dict[str, SwitchBatcher] = {}

    def switches(self) -> dict[str, SwitchConfig]:
        with self._lock:
            if self._switches is None:
                path = self.settings.network.switches_file
                if path is None:
                    raise DriverError("No switches are configured for the vlan network "
                                      "interface: set ENCLUME_SWITCHES_FILE.")
                self._switches = load_switches(path)
            return self._switches

    def batcher(self, name: str) -> SwitchBatcher:
        switches = self.switches()
        with self._lock:
            if name not in self._batchers:
                driver = self._make_driver(switches[name], self.settings.network.switch_timeout_s)
                self._batchers[name] = SwitchBatcher(
                    driver, self.settings.network.switch_batch_window_s)
            return self._batchers[name]

    def driver(self, name: str) -> SwitchDriver:
        return self.batcher(name).driver

    def apply(self, changes: Mapping[str, list[PortVlan]]) -> None:
        """Apply the changes of every switch (switches in parallel); one DriverError naming
        every switch that failed."""
        if len(changes) == 1:
            [(name, switch_changes)] = changes.items()
            self.batcher(name).apply(switch_changes)
            return
        errors: list[str] = []
        with ThreadPoolExecutor(max_workers=len(changes)) as pool:
            futures = {name: pool.submit(self.batcher(name).apply, switch_changes)
                       for name, switch_changes in changes.items()}
            for future in futures.values():
                exc = future.exception()
                if exc is not None:
                    errors.append(str(exc))
        if errors:
            raise DriverError("; ".join(errors))


class VlanNetwork(NetworkInterface):
    def __init__(self, settings: Settings, fleet: SwitchFleet | None = None) -> None:
        self.settings = settings
        self.fleet = fleet or SwitchFleet(settings)

    # -- checks ------------------------------------------------------------------------------

    def _vlans(self, task: Task) -> NodeVlans:
        """The node's VLANs now (its room's, if it is a PC of one: read on every move)."""
        return node_vlans(task.node.driver_info or {}, self.settings,
                          room_vlans(task.session, task.node.id))

    def validate(self, task: Task) -> None:
        if task.node.disable_power_off and not self.settings.network.allow_disabling_power_off:
            raise DriverError("Nodes with disable_power_off cannot be used with the vlan "
                              "network interface (disallowed in the configuration: "
                              "ENCLUME_NETWORK_ALLOW_DISABLING_POWER_OFF)")
        vlans = self._vlans(task)
        if vlans.tenant is None:
            raise MissingParameters("No tenant VLAN for the vlan network interface: set the "
                                    "node's driver_info/tenant_vlan or "
                                    "ENCLUME_NETWORK_TENANT_VLAN (or its room's class_vlan).")
        self._bindings(task)

    def _ports(self, task: Task, network: str) -> list[Port]:
        """The ports a move to ``network`` concerns (see the module's docstring)."""
        pxe = [p for p in task.node.ports if p.pxe_enabled]
        if not pxe:
            raise DriverError("The node has no PXE-enabled port: the vlan network interface "
                              "moves the switch ports of PXE-enabled ports.")
        with_vifs = vif_ports(task.node.ports)
        if network == "tenant" and with_vifs:
            ports = with_vifs
        elif network in ("provisioning", "all"):
            ports = pxe + [p for p in with_vifs if not p.pxe_enabled]
        else:
            ports = pxe
        return sorted(ports, key=lambda p: p.address)

    def _usable_for_vif(self, port: Port) -> bool:
        link = port.local_link_connection or {}
        return bool((link.get("switch_id") or link.get("switch_info")) and link.get("port_id"))

    def _bindings(self, task: Task, network: str = "all") -> list[PortBinding]:
        """The switch port of each port a move to ``network`` concerns; DriverError naming
        the port when one has no usable local_link_connection."""
        switches = self.fleet.switches()
        ports = self._ports(task, network)
        bindings = []
        for port in ports:
            link = port.local_link_connection or {}
            where = f"Port {port.uuid} ({port.address})"
            port_id = link.get("port_id")
            if not (link.get("switch_id") or link.get("switch_info")) or not port_id:
                raise DriverError(f"{where} needs a local_link_connection with switch_id (or "
                                  "switch_info) and port_id for the vlan network interface.")
            switch = find_switch(switches, link)
            if switch is None:
                named = link.get("switch_info") or link.get("switch_id")
                raise DriverError(f"{where}: the switch {named!r} of its local_link_connection "
                                  f"is not in the switches file "
                                  f"{self.settings.network.switches_file}.")
            problem = self.fleet.driver(switch.name).check_port_id(str(port_id))
            if problem:
                raise DriverError(f"{where}: switch {switch.name}: {problem}.")
            bindings.append(PortBinding(port, switch.name, str(port_id)))
        return bindings

    # -- the interface -----------------------------------------------------------------------

    def add_provisioning_network(self, task: Task) -> None:
        self._move(task, "provisioning")

    def remove_provisioning_network(self, task: Task) -> None:
        """Nothing: the ports stay until configure_tenant_networks moves them."""

    def configure_tenant_networks(self, task: Task) -> None:
        self._move(task, "tenant")

    def unconfigure_tenant_networks(self, task: Task) -> None:
        self._move(task, "provisioning")

    def add_cleaning_network(self, task: Task) -> None:
        self._move(task, "cleaning")

    def remove_cleaning_network(self, task: Task) -> None:
        vlans = self._vlans(task)
        if vlans.cleaning != vlans.provisioning:
            self._move(task, "provisioning")

    def add_rescuing_network(self, task: Task) -> None:
        self._move(task, "rescuing")

    def remove_rescuing_network(self, task: Task) -> None:
        vlans = self._vlans(task)
        if vlans.rescuing != vlans.provisioning:
            self._move(task, "provisioning")

    def _move(self, task: Task, network: str) -> None:
        vlans = self._vlans(task)
        vlan = getattr(vlans, network)
        if vlan is None:
            raise MissingParameters(f"No {network} VLAN for the vlan network interface: set the "
                                    f"node's driver_info/{network}_vlan or "
                                    f"ENCLUME_NETWORK_{network.upper()}_VLAN.")
        bindings = self._bindings(task, network)
        changes: dict[str, list[PortVlan]] = {}
        for binding in bindings:
            changes.setdefault(binding.switch, []).append(PortVlan(binding.port_id, vlan))
        self.fleet.apply(changes)
        for binding in bindings:
            binding.port.internal_info = {**binding.port.internal_info, PORT_VLAN_KEY: vlan}
        moved = ", ".join(sorted(f"{b.switch} {b.port_id}" for b in bindings))
        why = f" ({vlans.from_room[network]})" if network in vlans.from_room else ""
        task.record("network", f"Switch ports moved to the {network} VLAN {vlan}{why}: {moved}.")
