"""The vlan network interface in a real enclume-aio, driven through the API: a node with one
port on a real vde_switch and one on a fake Cisco IOS switch. Providing, deploying and
undeploying move both ports through the cleaning, provisioning and tenant VLANs; the
provisioning network's DHCP server (dnsmasq in a namespace on the provisioning VLAN) answers the
machine while it is provisioned and no longer hears it once it is deployed. A PC of a room rests
on the room's idle VLAN and a room restore leaves it on the room's class VLAN."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.common.db import Database
from services.common.models import Node, NodeHistory
from tests.lab.harness import Lab, NetnsHost, VdeSwitch, require_tool
from tests.support.aio import Server, running_aio
from tests.support.dhcp_client import DhcpClient
from tests.support.fake_switch import FakeSwitch
from tests.support.polling import eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}
PROVISIONING, CLEANING, TENANT = 100, 150, 200
IDLE, CLASS = 110, 201  # the room's
SUBNET = "10.80.0"
IOS_PORT = "GigabitEthernet0/5"
SECOND_MAC = "52:54:00:80:00:06"
STATE_TIMEOUT_S = 60.0


@dataclass
class World:
    api: httpx.Client
    aio: Server
    vde: VdeSwitch
    ios: FakeSwitch
    machine: NetnsHost
    boot: NetnsHost
    dhcp: DhcpClient
    lab: Lab

    @property
    def machine_mac(self) -> str:
        """The MAC of the machine's interface: unicast DHCP answers go to it."""
        return mac_of(self.machine)


def mac_of(host: NetnsHost) -> str:
    return str(json.loads(host.execute(
        ["ip", "-json", "link", "show", "tap0"]).stdout)[0]["address"])


def serve_dhcp(host: NetnsHost, workdir: Path) -> None:
    """A plain dnsmasq leasing addresses on the provisioning VLAN, as the boot service would."""
    host.run([require_tool("dnsmasq"), "--keep-in-foreground", "--log-facility=-",
              "--conf-file=/dev/null", "--port=0", "--interface=tap0", "--bind-interfaces",
              "--user=root", f"--pid-file={workdir / 'dnsmasq.pid'}",
              f"--dhcp-leasefile={workdir / 'dnsmasq.leases'}",
              f"--dhcp-range={SUBNET}.100,{SUBNET}.200,255.255.255.0,5m", "--no-ping"],
             "dnsmasq")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("vlan")
    with Lab(base / "lab") as lab, FakeSwitch("cisco_ios", [IOS_PORT], name="tor-1") as ios:
        vde = lab.switch()
        boot = lab.host("boot", vde, f"{SUBNET}.1/24", vlan=PROVISIONING)
        serve_dhcp(boot, base)
        machine = lab.host("machine", vde, f"{SUBNET}.50/24")  # VLAN 0 until Enclume moves it
        switches = base / "switches.yaml"
        switches.write_text(
            "switches:\n"
            f"  lab:\n    driver: vde\n    socket: {vde.management_socket}\n"
            f"  tor-1:\n    driver: cisco_ios\n    address: 127.0.0.1\n    port: {ios.port}\n"
            f"    username: {ios.username}\n    password: {ios.password}\n"
            "    mac: 00:1c:73:00:00:01\n")
        env = {"ENCLUME_SWITCHES_FILE": str(switches),
               "ENCLUME_NETWORK_PROVISIONING_VLAN": str(PROVISIONING),
               "ENCLUME_NETWORK_CLEANING_VLAN": str(CLEANING),
               "ENCLUME_SWITCH_BATCH_WINDOW_S": "0.1"}  # no default tenant VLAN
        dhcp = DhcpClient(machine.name, "tap0")
        try:
            with running_aio(base / "aio", env=env) as aio, \
                    httpx.Client(base_url=aio.url, headers=HEADERS, timeout=30) as api:
                yield World(api, aio, vde, ios, machine, boot, dhcp, lab)
        finally:
            dhcp.close()




def provision(world: World, node: str, target: str, reach: str) -> dict[str, Any]:
    response = world.api.put(f"/v1/nodes/{node}/states/provision", json={"target": target})
    assert response.status_code == 202, response.text

    def reached() -> dict[str, Any] | None:
        current = world.api.get(f"/v1/nodes/{node}").json()
        if current["last_error"]:
            raise AssertionError(f"{target} failed: {current['last_error']}")
        if current["provision_state"] == reach and current["reservation"] is None:
            return dict(current)
        return None

    return dict(eventually(reached, STATE_TIMEOUT_S, f"node {node} to reach {reach}"))


def make_node(world: World, driver_info: dict[str, Any],
              links: list[tuple[str, dict[str, Any]]]) -> str:
    response = world.api.post("/v1/nodes", json={"driver": "fake-hardware",
                                                 "network_interface": "vlan",
                                                 "driver_info": driver_info})
    assert response.status_code == 201, response.text
    uuid = str(response.json()["uuid"])
    for mac, link in links:
        response = world.api.post("/v1/ports", json={"node_uuid": uuid, "address": mac,
                                                     "local_link_connection": link})
        assert response.status_code == 201, response.text
    return uuid


def access_vlans(ios: FakeSwitch) -> list[int]:
    """Every `switchport access vlan N` the fake IOS switch was told, in order."""
    return [int(m.group(1)) for session in ios.sessions for line in session
            if (m := re.fullmatch(r"switchport access vlan (\d+)", line))]


def dhcp_offers(world: World) -> list[str]:
    return [r.yiaddr for r in world.dhcp.discover(world.machine_mac, wait=1.0)
            if r.message_type == "2"]  # DHCPOFFER


def test_deploy_moves_the_ports_to_the_tenant_vlan_and_undeploy_brings_them_back(
        world: World) -> None:
    node = make_node(world, {"tenant_vlan": TENANT}, [
        (world.machine_mac, {"switch_id": "lab", "port_id": str(world.machine.port)}),
        (SECOND_MAC, {"switch_id": "00:1C:73:00:00:01", "switch_info": "tor-1",
                      "port_id": IOS_PORT})])
    assert world.vde.port_status(world.machine.port) == (0, True)
    assert dhcp_offers(world) == []  # not on the provisioning VLAN yet

    provision(world, node, "manage", "manageable")
    provision(world, node, "provide", "available")  # cleaning, then back to provisioning
    assert world.vde.port_status(world.machine.port) == (PROVISIONING, True)
    assert access_vlans(world.ios) == [CLEANING, PROVISIONING]
    assert eventually(lambda: dhcp_offers(world), 15, "a DHCP offer on the provisioning VLAN")
    assert world.machine.pings(world.boot.ipv4, timeout_s=10)

    provision(world, node, "active", "active")
    assert world.vde.port_status(world.machine.port) == (TENANT, True)
    assert world.ios.port_vlans == {IOS_PORT: TENANT}
    assert access_vlans(world.ios)[2:] == [PROVISIONING, TENANT]
    assert dhcp_offers(world) == []  # the provisioning DHCP no longer hears the machine
    assert not world.machine.pings(world.boot.ipv4)

    provision(world, node, "deleted", "available")  # tear down, cleaning, back to provisioning
    assert world.vde.port_status(world.machine.port) == (PROVISIONING, True)
    assert access_vlans(world.ios)[4:] == [PROVISIONING, CLEANING, PROVISIONING]
    assert eventually(lambda: dhcp_offers(world), 15, "a DHCP offer after undeploy")

    ports = world.api.get(f"/v1/nodes/{node}/ports/detail").json()["ports"]
    assert {p["address"]: p["internal_info"].get("access_vlan") for p in ports} == {
        world.machine_mac: PROVISIONING, SECOND_MAC: PROVISIONING}
    database = Database(f"sqlite:///{world.aio.data_dir / 'enclume.sqlite'}")
    with database.session() as session:  # the node's history, as the conductor recorded it
        events = session.scalars(select(NodeHistory.event).join(Node).where(
            Node.uuid == node)).all()
    assert (f"Switch ports moved to the tenant VLAN {TENANT}: lab {world.machine.port}, "
            f"tor-1 {IOS_PORT}.") in events


def test_a_node_without_a_tenant_vlan_is_refused_before_anything_moves(world: World) -> None:
    port = world.vde.create_port(0)
    node = make_node(world, {}, [("52:54:00:80:00:07", {"switch_id": "lab",
                                                        "port_id": str(port)})])
    provision(world, node, "manage", "manageable")
    world.api.patch(f"/v1/nodes/{node}", json=[
        {"op": "replace", "path": "/automated_clean", "value": False}])
    provision(world, node, "provide", "available")

    validation = world.api.get(f"/v1/nodes/{node}/validate").json()
    assert validation["network"]["result"] is False
    assert "No tenant VLAN" in validation["network"]["reason"]
    response = world.api.put(f"/v1/nodes/{node}/states/provision", json={"target": "active"})
    assert response.status_code == 400
    assert "set the node's driver_info/tenant_vlan or ENCLUME_NETWORK_TENANT_VLAN" in \
        response.text
    assert world.vde.port_status(port) == (0, False)


def test_a_port_on_an_unknown_switch_fails_validation_naming_it(world: World) -> None:
    node = make_node(world, {"tenant_vlan": TENANT}, [
        ("52:54:00:80:00:08", {"switch_id": "00:00:5e:00:53:99", "port_id": "Gi1/0/1"})])
    validation = world.api.get(f"/v1/nodes/{node}/validate").json()
    assert validation["network"]["result"] is False
    assert "the switch '00:00:5e:00:53:99' of its local_link_connection is not in the " \
           "switches file" in validation["network"]["reason"]


def node_history(world: World, node: str) -> list[str]:
    database = Database(f"sqlite:///{world.aio.data_dir / 'enclume.sqlite'}")
    with database.session() as session:
        return list(session.scalars(select(NodeHistory.event).join(Node).where(
            Node.uuid == node)))


def test_a_room_restore_leaves_its_pcs_on_the_class_vlan_and_they_rest_on_its_idle_vlan(
        world: World) -> None:
    pc = world.lab.host("pc", world.vde, f"{SUBNET}.60/24")  # VLAN 0 until Enclume moves it
    classmate = world.lab.host("classmate", world.vde, f"{SUBNET}.61/24", vlan=CLASS)
    node = make_node(world, {"tenant_vlan": TENANT}, [
        (mac_of(pc), {"switch_id": "lab", "port_id": str(pc.port)})])
    response = world.api.post("/enclume/v1/images", json={"name": "debian", "versions": [
        {"version": "v1", "source": "http://images.example/debian.img", "checksum": "d" * 64}]})
    assert response.status_code == 201, response.text
    response = world.api.post("/enclume/v1/rooms", json={
        "name": "B12", "time_zone": "UTC", "idle_vlan": IDLE, "class_vlan": CLASS,
        "allowed_images": ["debian"], "pcs": [node]})
    assert response.status_code == 201, response.text

    provision(world, node, "manage", "manageable")
    provision(world, node, "provide", "available")  # cleaning, then the room's idle VLAN
    assert world.vde.port_status(pc.port) == (IDLE, True)

    response = world.api.post("/enclume/v1/rooms/B12/actions",
                              json={"action": "restore", "image": "debian:v1"})
    assert response.status_code == 202, response.text
    job = response.json()["uuid"]

    def ended() -> dict[str, Any] | None:
        document = world.api.get(f"/enclume/v1/jobs/{job}").json()
        return document if document["state"] in ("done", "failed-partly") else None

    final = eventually(ended, STATE_TIMEOUT_S, "the room's restore")
    assert final["state"] == "done", final
    # The OS runs on the room's class VLAN, not the node's own tenant VLAN.
    assert world.vde.port_status(pc.port) == (CLASS, True)
    assert pc.pings(classmate.ipv4, timeout_s=10)
    assert not pc.pings(world.boot.ipv4)
    events = node_history(world, node)
    assert f"Switch ports moved to the provisioning VLAN {IDLE} (the idle VLAN of room B12): " \
           f"lab {pc.port}." in events
    assert f"Switch ports moved to the tenant VLAN {CLASS} (the class VLAN of room B12): " \
           f"lab {pc.port}." in events

    provision(world, node, "deleted", "available")  # tear down, cleaning, back to idle
    assert world.vde.port_status(pc.port) == (IDLE, True)
    assert not pc.pings(classmate.ipv4)
