"""The vlan network interface on a real SQLite database, with in-memory switches: which VLAN
each call of the conductor's flows puts a node's ports in, and what validate refuses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.classroom.networks import RoomVlans
from services.common.classroom_models import Room, RoomPC
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.models import Node, NodeHistory, Port
from services.conductor.task import Task
from services.drivers.base import DriverError
from services.drivers.network.inventory import SwitchConfig
from services.drivers.network.switches.base import check_interface_name
from services.drivers.network.vlan import SwitchFleet, VlanNetwork, node_vlans
from tests.unit.test_vlan_batching import InMemorySwitch

SWITCHES = """
switches:
  tor-1:
    driver: cisco_ios
    address: 192.0.2.10
    username: enclume
    password: pw
    mac: "00:1c:73:00:00:01"
  tor-2:
    driver: arista_eos
    address: 192.0.2.11
    username: enclume
    password: pw
"""


class MemoryCli(InMemorySwitch):
    def __init__(self, name: str) -> None:
        super().__init__(session_s=0.0, broken_ports=["Gi1/0/99"])
        self.name = name

    def check_port_id(self, port_id: str) -> str | None:
        return check_interface_name(port_id)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    path = tmp_path / "switches.yaml"
    path.write_text(SWITCHES)
    return Settings(
        network={"switches_file": path, "provisioning_vlan": 100, "tenant_vlan": 200,
                 "switch_batch_window_s": 0.0},
    )


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    url = f"sqlite:///{tmp_path / 'vlan.sqlite'}"
    upgrade_schema(url)
    with Database(url).session() as session:
        yield session


class Fixture:
    def __init__(self, settings: Settings) -> None:
        self.switches: dict[str, MemoryCli] = {}
        self.network = VlanNetwork(settings, SwitchFleet(settings, self._driver))

    def _driver(self, config: SwitchConfig, timeout_s: float) -> MemoryCli:
        return self.switches.setdefault(config.name, MemoryCli(config.name))

    def vlans(self) -> dict[str, dict[str, int]]:
        return {name: dict(switch.port_vlans) for name, switch in self.switches.items()}

    def session_count(self) -> int:
        return sum(len(s.sessions) for s in self.switches.values())


def make_task(session: Session, ports: list[dict[str, Any]], **driver_info: Any) -> Task:
    node = Node(driver="fake-hardware", network_interface="vlan", driver_info=driver_info)
    session.add(node)
    session.flush()
    for index, values in enumerate(ports):
        session.add(Port(node_id=node.id, address=f"52:54:00:00:00:{index:02x}", **values))
    session.flush()
    session.refresh(node)
    return Task(session, node, None, "conductor-a")  # type: ignore[arg-type]


def link(switch: str, port_id: str, by: str = "switch_info") -> dict[str, Any]:
    return {"local_link_connection": {by: switch, "port_id": port_id}}


def test_the_flows_move_pxe_ports_through_the_node_vlans(settings: Settings,
                                                         session: Session) -> None:
    fx = Fixture(settings)
    task = make_task(session, [link("tor-1", "Gi1/0/1"),
                               link("00:1C:73:00:00:01", "Gi1/0/2", by="switch_id"),
                               link("tor-2", "Ethernet7"),
                               {**link("tor-2", "Ethernet8"), "pxe_enabled": False}],
                     cleaning_vlan="150")
    net = fx.network
    net.validate(task)

    net.add_provisioning_network(task)
    assert fx.vlans() == {"tor-1": {"Gi1/0/1": 100, "Gi1/0/2": 100}, "tor-2": {"Ethernet7": 100}}
    sessions = fx.session_count()
    net.remove_provisioning_network(task)
    assert fx.session_count() == sessions  # stays until the tenant VLAN takes it
    net.configure_tenant_networks(task)
    assert fx.vlans() == {"tor-1": {"Gi1/0/1": 200, "Gi1/0/2": 200}, "tor-2": {"Ethernet7": 200}}
    net.unconfigure_tenant_networks(task)
    assert fx.vlans()["tor-2"] == {"Ethernet7": 100}
    net.add_cleaning_network(task)
    assert fx.vlans()["tor-1"] == {"Gi1/0/1": 150, "Gi1/0/2": 150}
    net.remove_cleaning_network(task)
    assert fx.vlans() == {"tor-1": {"Gi1/0/1": 100, "Gi1/0/2": 100}, "tor-2": {"Ethernet7": 100}}
    # one session per switch and move, both ports of tor-1 together
    assert [len(s) for s in fx.switches["tor-1"].sessions] == [2] * 5

    ports = {p.local_link_connection["port_id"]: p.internal_info for p in task.node.ports}
    assert ports["Gi1/0/1"] == {"access_vlan": 100} and ports["Ethernet8"] == {}
    history = session.scalars(select(NodeHistory.event).where(
        NodeHistory.node_id == task.node.id)).all()
    assert "Switch ports moved to the tenant VLAN 200: tor-1 Gi1/0/1, tor-1 Gi1/0/2, " \
           "tor-2 Ethernet7." in history


def test_without_a_separate_cleaning_vlan_leaving_cleaning_changes_nothing(
        settings: Settings, session: Session) -> None:
    fx = Fixture(settings)
    task = make_task(session, [link("tor-1", "Gi1/0/1")])
    fx.network.add_cleaning_network(task)
    assert fx.vlans() == {"tor-1": {"Gi1/0/1": 100}}
    fx.network.remove_cleaning_network(task)
    assert fx.session_count() == 1


def test_rescue_moves_the_pxe_ports_to_the_rescuing_vlan_then_to_the_tenant_vlan(
        settings: Settings, session: Session) -> None:
    fx = Fixture(settings)
    task = make_task(session, [link("tor-1", "Gi1/0/1")], rescuing_vlan="160")
    net = fx.network
    net.configure_tenant_networks(task)
    net.unconfigure_tenant_networks(task)  # the agent rescue interface's order
    net.add_rescuing_network(task)
    assert fx.vlans() == {"tor-1": {"Gi1/0/1": 160}}
    net.remove_rescuing_network(task)
    assert fx.vlans() == {"tor-1": {"Gi1/0/1": 100}}
    net.configure_tenant_networks(task)
    assert fx.vlans() == {"tor-1": {"Gi1/0/1": 200}}


def test_without_a_rescuing_vlan_rescue_runs_on_the_provisioning_vlan(
        settings: Settings, session: Session) -> None:
    fx = Fixture(settings)
    task = make_task(session, [link("tor-2", "Ethernet1")])
    fx.network.add_rescuing_network(task)
    assert fx.vlans() == {"tor-2": {"Ethernet1": 100}}
    fx.network.remove_rescuing_network(task)
    assert fx.session_count() == 1


def test_a_switch_refusing_fails_the_move_naming_it_and_the_other_switch_still_moves(
        settings: Settings, session: Session) -> None:
    fx = Fixture(settings)
    task = make_task(session, [link("tor-1", "Gi1/0/99"), link("tor-2", "Ethernet1")])
    with pytest.raises(DriverError, match="switch memory refused Gi1/0/99"):
        fx.network.configure_tenant_networks(task)
    assert fx.vlans()["tor-2"] == {"Ethernet1": 200}


def test_node_vlans_come_from_driver_info_else_the_settings(settings: Settings) -> None:
    defaults = node_vlans({}, settings)
    assert (defaults.provisioning, defaults.cleaning, defaults.tenant) == (100, 100, 200)
    own = node_vlans({"provisioning_vlan": 10, "cleaning_vlan": "11", "tenant_vlan": 12},
                     settings)
    assert (own.provisioning, own.cleaning, own.tenant) == (10, 11, 12)
    with pytest.raises(DriverError, match="driver_info/tenant_vlan must be a VLAN id"):
        node_vlans({"tenant_vlan": 5000}, settings)
    with pytest.raises(DriverError, match=r"No provisioning VLAN.*ENCLUME_NETWORK_PROVISIONING"):
        node_vlans({}, Settings())


def test_a_pc_of_a_room_rests_on_its_idle_vlan_and_boots_its_os_on_its_class_vlan(
        settings: Settings, session: Session) -> None:
    fx = Fixture(settings)
    task = make_task(session, [link("tor-1", "Gi1/0/1")], provisioning_vlan=10, tenant_vlan=12)
    room = Room(name="B12", time_zone="UTC", idle_vlan=110, class_vlan=201)
    session.add(room)
    session.flush()
    session.add(RoomPC(room_id=room.id, node_id=task.node.id))
    session.flush()
    net = fx.network
    net.validate(task)

    net.add_provisioning_network(task)
    assert fx.vlans() == {"tor-1": {"Gi1/0/1": 110}}
    net.configure_tenant_networks(task)
    assert fx.vlans() == {"tor-1": {"Gi1/0/1": 201}}
    net.unconfigure_tenant_networks(task)
    assert fx.vlans() == {"tor-1": {"Gi1/0/1": 110}}
    history = session.scalars(select(NodeHistory.event).where(
        NodeHistory.node_id == task.node.id)).all()
    assert "Switch ports moved to the tenant VLAN 201 (the class VLAN of room B12): " \
           "tor-1 Gi1/0/1." in history
    assert "Switch ports moved to the provisioning VLAN 110 (the idle VLAN of room B12): " \
           "tor-1 Gi1/0/1." in history

    # A room without VLANs leaves the node's own; out of its room, the node's own again.
    room.idle_vlan = room.class_vlan = None
    session.flush()
    net.configure_tenant_networks(task)
    assert fx.vlans() == {"tor-1": {"Gi1/0/1": 12}}
    room.class_vlan = 201
    session.execute(delete(RoomPC))
    session.flush()
    net.configure_tenant_networks(task)
    net.add_provisioning_network(task)
    assert fx.vlans() == {"tor-1": {"Gi1/0/1": 10}}
    assert [len(s) for s in fx.switches["tor-1"].sessions] == [1] * 6


def test_room_vlans_override_the_node_and_the_settings(settings: Settings) -> None:
    vlans = node_vlans({"tenant_vlan": 12}, settings, RoomVlans("B12", 110, 201))
    assert (vlans.provisioning, vlans.cleaning, vlans.tenant) == (110, 110, 201)
    assert dict(vlans.from_room) == {"provisioning": "the idle VLAN of room B12",
                                     "tenant": "the class VLAN of room B12"}
    partial = node_vlans({"tenant_vlan": 12}, settings, RoomVlans("B12", None, 201))
    assert (partial.provisioning, partial.tenant) == (100, 201)
    assert set(partial.from_room) == {"tenant"}


@pytest.mark.parametrize(("ports", "driver_info", "message"), [
    ([link("tor-1", "Gi1/0/1")], {"tenant_vlan": None},
     "No tenant VLAN for the vlan network interface: set the node's driver_info/tenant_vlan"),
    ([], {}, "The node has no PXE-enabled port"),
    ([{"local_link_connection": {"switch_info": "tor-1"}}], {},
     "needs a local_link_connection with switch_id (or switch_info) and port_id"),
    ([{}], {}, "needs a local_link_connection"),
    ([link("tor-9", "Gi1/0/1")], {},
     "the switch 'tor-9' of its local_link_connection is not in the switches file"),
    ([link("tor-1", "Gi1/0/1\nreload")], {}, "switch tor-1: port_id 'Gi1/0/1\\nreload' is not"),
])
def test_validate_says_what_is_missing(settings: Settings, session: Session,
                                       ports: list[dict[str, Any]], driver_info: dict[str, Any],
                                       message: str) -> None:
    if driver_info.get("tenant_vlan", 0) is None:
        settings = settings.model_copy(update={"network": settings.network.model_copy(
            update={"tenant_vlan": None})})
        driver_info = {}
    fx = Fixture(settings)
    task = make_task(session, ports, **driver_info)
    with pytest.raises(DriverError) as caught:
        fx.network.validate(task)
    assert message in str(caught.value)
    assert fx.session_count() == 0


def test_a_node_with_disable_power_off_is_refused_unless_the_setting_allows_it(
        settings: Settings, session: Session) -> None:
    """Ironic's neutron interface validate and [neutron]allow_disabling_power_off (API 1.95)."""
    task = make_task(session, [link("tor-1", "Gi1/0/1")])
    task.node.disable_power_off = True
    with pytest.raises(DriverError, match="Nodes with disable_power_off cannot be used with "
                                          "the vlan network interface"):
        Fixture(settings).network.validate(task)
    allowed = settings.model_copy(update={"network": settings.network.model_copy(
        update={"allow_disabling_power_off": True})})
    Fixture(allowed).network.validate(task)


def test_validate_without_a_switches_file_says_which_setting(session: Session) -> None:
    settings = Settings(network={"provisioning_vlan": 100, "tenant_vlan": 200})
    task = make_task(session, [link("tor-1", "Gi1/0/1")])
    with pytest.raises(DriverError, match="set ENCLUME_SWITCHES_FILE"):
        VlanNetwork(settings).validate(task)
