"""VIFs (API 1.28): which port a VIF goes to (Ironic's rules), what the network interfaces do
with them, and the API's answers, through a served API with an in-process conductor."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.exceptions import Conflict, EnclumeError, Invalid
from services.common.membership import Membership
from services.common.models import Node, Port, Portgroup
from services.conductor.manager import ConductorManager
from services.conductor.rpc import server_app
from services.drivers.fake import FakeNetwork, NoopNetwork
from services.drivers.network.vifs import TENANT_VIF_KEY
from services.drivers.registry import Drivers
from tests.support.api_stack import faultstring as fault
from tests.support.api_stack import served_api
from tests.support.asgi import serving
from tests.unit import test_rpc_client as rpc_tests
from tests.unit import test_vlan_interface as vlan_tests
from tests.unit.test_vlan_interface import Fixture, link, make_task

NO_FREE = "Unable to attach VIF {}, not enough free physical ports."


# The vlan interface's tests' fixtures: a SQLite session, settings with two switches.
session = vlan_tests.session
settings = vlan_tests.settings


def vif_of(task: Any) -> dict[str, str]:
    """Each port's address -> its tenant VIF."""
    return {p.address: p.internal_info[TENANT_VIF_KEY] for p in task.node.ports
            if TENANT_VIF_KEY in p.internal_info}


# -- the port a VIF goes to -----------------------------------------------------------------


def test_pxe_enabled_ports_first_then_the_rest_then_no_free_port(session: Session) -> None:
    task = make_task(session, [{"pxe_enabled": False}, {}])
    network = FakeNetwork((0.0, 0.0))
    network.vif_attach(task, {"id": "vif-a"})
    assert vif_of(task) == {"52:54:00:00:00:01": "vif-a"}  # the PXE-enabled one
    network.vif_attach(task, {"id": "vif-b"})
    assert vif_of(task) == {"52:54:00:00:00:01": "vif-a", "52:54:00:00:00:00": "vif-b"}
    assert sorted(v["id"] for v in network.vif_list(task)) == ["vif-a", "vif-b"]
    with pytest.raises(Invalid) as refused:
        network.vif_attach(task, {"id": "vif-c"})
    assert refused.value.code == 400 and refused.value.message == NO_FREE.format("vif-c")


def test_a_vif_attached_twice_is_a_conflict_naming_its_port(session: Session) -> None:
    task = make_task(session, [{}, {}])
    network = FakeNetwork((0.0, 0.0))
    network.vif_attach(task, {"id": "vif-a"})
    [port] = [p for p in task.node.ports if p.internal_info]
    with pytest.raises(Conflict) as conflict:
        network.vif_attach(task, {"id": "vif-a"})
    assert conflict.value.code == 409
    assert conflict.value.message == ("Unable to attach VIF because VIF vif-a is already "
                                      f"attached to Ironic Port {port.uuid}")


def test_physical_networks_exclude_other_networks_and_prefer_a_match(session: Session) -> None:
    task = make_task(session, [{"physical_network": "storage"}, {},
                               {"physical_network": "tenant", "pxe_enabled": False}])
    network = FakeNetwork((0.0, 0.0))
    network.vif_attach(task, {"id": "vif-a", "physical_network": "tenant"})
    assert vif_of(task) == {"52:54:00:00:00:02": "vif-a"}  # a match beats PXE
    network.vif_attach(task, {"id": "vif-b", "physical_networks": ["tenant"]})
    assert vif_of(task)["52:54:00:00:00:01"] == "vif-b"  # no physical network: allowed
    with pytest.raises(Invalid, match="not enough free physical ports"):
        network.vif_attach(task, {"id": "vif-c", "physical_network": "tenant"})
    network.vif_attach(task, {"id": "vif-c"})  # none named: any physical network
    assert vif_of(task)["52:54:00:00:00:00"] == "vif-c"


def test_port_hint_and_port_groups(session: Session) -> None:
    task = make_task(session, [{}, {}])
    network = FakeNetwork((0.0, 0.0))
    second = sorted(task.node.ports, key=lambda p: p.address)[1]
    network.vif_attach(task, {"id": "vif-a", "port_uuid": second.uuid})
    assert vif_of(task) == {second.address: "vif-a"}
    with pytest.raises(Invalid, match="not enough free physical ports"):
        network.vif_attach(task, {"id": "vif-b", "port_uuid": second.uuid})
    # A port group that is not the node's has no free port (Ironic's answer).
    with pytest.raises(Invalid, match="not enough free physical ports"):
        network.vif_attach(task, {"id": "vif-b", "portgroup_uuid": str(uuid.uuid4())})


def grouped_task(session: Session, ports: list[dict[str, Any]], groups: int = 1) -> Any:
    """A node whose ports ``ports`` (``"group": index`` puts one in a port group)."""
    task = make_task(session, [{k: v for k, v in p.items() if k != "group"} for p in ports])
    made = []
    for index in range(groups):
        group = Portgroup(node_id=task.node.id, address=f"52:54:00:00:01:{index:02x}")
        session.add(group)
        made.append(group)
    session.flush()
    by_address = sorted(task.node.ports, key=lambda p: p.address)
    for port, values in zip(by_address, ports, strict=True):
        if "group" in values:
            port.portgroup_id = made[values["group"]].id
    session.flush()
    session.refresh(task.node)
    return task


def test_a_port_group_with_a_free_member_is_preferred_to_ports(session: Session) -> None:
    task = grouped_task(session, [{}, {"group": 0}, {"group": 0}])
    [group] = task.node.portgroups
    network = FakeNetwork((0.0, 0.0))
    network.vif_attach(task, {"id": "vif-a"})
    assert group.internal_info == {TENANT_VIF_KEY: "vif-a"}
    assert vif_of(task) == {}
    network.vif_attach(task, {"id": "vif-b"})  # the group is taken: the single port
    assert vif_of(task) == {"52:54:00:00:00:00": "vif-b"}
    with pytest.raises(Invalid, match=NO_FREE.format("vif-c")):
        network.vif_attach(task, {"id": "vif-c"})  # members go only with their group
    with pytest.raises(Conflict) as conflict:
        network.vif_attach(task, {"id": "vif-a"})
    assert conflict.value.message == ("Unable to attach VIF because VIF vif-a is already "
                                      f"attached to Ironic Portgroup {group.uuid}")
    assert sorted(v["id"] for v in network.vif_list(task)) == ["vif-a", "vif-b"]
    network.vif_detach(task, "vif-a")
    assert group.internal_info == {}


def test_portgroup_and_port_hints(session: Session) -> None:
    task = grouped_task(session, [{}, {"group": 0}, {"group": 1}], groups=2)
    first, second = sorted(task.node.portgroups, key=lambda g: g.address)
    network = FakeNetwork((0.0, 0.0))
    network.vif_attach(task, {"id": "vif-a", "portgroup_uuid": second.uuid})
    assert second.internal_info == {TENANT_VIF_KEY: "vif-a"} and first.internal_info == {}
    member = next(p for p in task.node.ports if p.portgroup_id == first.id)
    network.vif_attach(task, {"id": "vif-b", "port_uuid": member.uuid})  # a member, named
    assert vif_of(task) == {member.address: "vif-b"}
    # The group of a member with a VIF takes none; its free members would, but it has none.
    with pytest.raises(Invalid, match=NO_FREE.format("vif-c")):
        network.vif_attach(task, {"id": "vif-c", "portgroup_uuid": first.uuid})


def test_detach_clears_the_port_and_ironics_legacy_key(session: Session) -> None:
    task = make_task(session, [{"extra": {"vif_port_id": "vif-a", "rack": "r1"}}])
    network = FakeNetwork((0.0, 0.0))
    network.vif_attach(task, {"id": "vif-a"})
    network.vif_detach(task, "vif-a")
    [port] = task.node.ports
    assert port.internal_info == {} and port.extra == {"rack": "r1"}
    assert network.vif_list(task) == []
    with pytest.raises(Invalid) as refused:
        network.vif_detach(task, "vif-a")
    assert refused.value.message == (f"Unable to detach VIF vif-a from node {task.node.uuid} "
                                     "because it is not attached to it.")


def test_noop_accepts_vifs_and_keeps_none(session: Session) -> None:
    task = make_task(session, [{}])
    network = NoopNetwork((0.0, 0.0))
    network.vif_attach(task, {"id": "vif-a"})
    network.vif_detach(task, "vif-b")
    assert network.vif_list(task) == [] and task.node.ports[0].internal_info == {}


# -- the vlan interface ---------------------------------------------------------------------


def test_vlan_tenant_step_moves_the_ports_with_vifs(settings: Settings,
                                                    session: Session) -> None:
    fx = Fixture(settings)
    task = make_task(session, [link("tor-1", "Gi1/0/1"), link("tor-1", "Gi1/0/2"),
                               {**link("tor-2", "Ethernet8"), "pxe_enabled": False},
                               {"pxe_enabled": False}])  # not cabled: no VIF on it
    net = fx.network
    net.vif_attach(task, {"id": "vif-pxe", "port_uuid": task.node.ports[0].uuid})
    net.vif_attach(task, {"id": "vif-data", "port_uuid": task.node.ports[2].uuid})
    with pytest.raises(Invalid, match="not enough free physical ports"):
        net.vif_attach(task, {"id": "vif-x", "port_uuid": task.node.ports[3].uuid})
    net.validate(task)
    net.add_provisioning_network(task)
    assert fx.vlans() == {"tor-1": {"Gi1/0/1": 100, "Gi1/0/2": 100}, "tor-2": {"Ethernet8": 100}}
    net.configure_tenant_networks(task)
    # The VIFs' ports go to the tenant VLAN; the PXE port without a VIF stays.
    assert fx.vlans() == {"tor-1": {"Gi1/0/1": 200, "Gi1/0/2": 100}, "tor-2": {"Ethernet8": 200}}
    net.unconfigure_tenant_networks(task)
    assert fx.vlans() == {"tor-1": {"Gi1/0/1": 100, "Gi1/0/2": 100}, "tor-2": {"Ethernet8": 100}}
    net.vif_detach(task, "vif-pxe")
    net.vif_detach(task, "vif-data")
    net.configure_tenant_networks(task)  # no VIFs: the PXE ports, as before
    assert fx.vlans() == {"tor-1": {"Gi1/0/1": 200, "Gi1/0/2": 200}, "tor-2": {"Ethernet8": 100}}


# -- the API --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    directory: Path = tmp_path_factory.mktemp("vifs")
    url = f"sqlite:///{directory / 'api.sqlite'}"
    upgrade_schema(url)
    api_settings = Settings(process={"data_dir": directory},
                            conductor={"hostname": "conductor-1"})
    with served_api(api_settings, Database(url)) as served:
        yield served.client


def node_with_ports(api: httpx.Client, count: int, network: str = "flat") -> str:
    response = api.post("/v1/nodes", json={"driver": "fake-hardware",
                                           "network_interface": network})
    assert response.status_code == 201, response.text
    node: str = response.json()["uuid"]
    for _ in range(count):
        mac = "52:54:01:" + ":".join(uuid.uuid4().hex[i:i + 2] for i in (0, 2, 4))
        assert api.post("/v1/ports", json={"node_uuid": node, "address": mac}
                        ).status_code == 201
    return node


def test_api_attach_list_detach(api: httpx.Client) -> None:
    node = node_with_ports(api, 1)
    vifs = f"/v1/nodes/{node}/vifs"
    assert api.get(vifs).json() == {"vifs": []}
    response = api.post(vifs, json={"id": "vif-1"})
    assert response.status_code == 204, response.text
    assert api.get(vifs).json() == {"vifs": [{"id": "vif-1"}]}
    [port] = api.get(f"/v1/nodes/{node}/ports/detail").json()["ports"]
    assert port["internal_info"] == {"tenant_vif_port_id": "vif-1"}

    again = api.post(vifs, json={"id": "vif-1"})
    assert again.status_code == 409
    assert fault(again) == ("Unable to attach VIF because VIF vif-1 is already attached to "
                            f"Ironic Port {port['uuid']}")
    full = api.post(vifs, json={"id": "vif-2"})
    assert full.status_code == 400
    assert fault(full) == NO_FREE.format("vif-2")

    busy = api.delete(f"/v1/ports/{port['uuid']}")
    assert busy.status_code == 409
    assert fault(busy) == (f"Cannot delete the port {port['uuid']} as it is bound to VIF "
                           "vif-1 for use.")
    assert api.delete(f"{vifs}/vif-1").status_code == 204
    assert api.get(vifs).json() == {"vifs": []}
    missing = api.delete(f"{vifs}/vif-1")
    assert missing.status_code == 400 and "because it is not attached to it" in fault(missing)
    history = api.get(f"/v1/nodes/{node}/history").json()["history"]
    assert [e["event"] for e in history if "VIF" in e["event"]] == [
        f"VIF vif-1 attached to port {port['uuid']} ({port['address']}).",
        f"VIF vif-1 detached from port {port['uuid']} ({port['address']}).",
    ]
    assert api.delete(f"/v1/ports/{port['uuid']}").status_code == 204


def test_api_a_node_in_maintenance_may_lose_a_port_with_a_vif(api: httpx.Client) -> None:
    node = node_with_ports(api, 1)
    assert api.post(f"/v1/nodes/{node}/vifs", json={"id": "vif-m"}).status_code == 204
    [port] = api.get(f"/v1/nodes/{node}/ports").json()["ports"]
    assert api.put(f"/v1/nodes/{node}/maintenance", json={"reason": "nic swap"}
                   ).status_code == 202
    assert api.delete(f"/v1/ports/{port['uuid']}").status_code == 204
    assert api.get(f"/v1/nodes/{node}/vifs").json() == {"vifs": []}


def test_api_before_1_28_has_no_vifs(api: httpx.Client) -> None:
    node = node_with_ports(api, 1)
    old = {"X-OpenStack-Ironic-API-Version": "1.27"}
    assert api.get(f"/v1/nodes/{node}/vifs", headers=old).status_code == 404
    assert api.post(f"/v1/nodes/{node}/vifs", json={"id": "v"}, headers=old).status_code == 404
    assert api.delete(f"/v1/nodes/{node}/vifs/v", headers=old).status_code == 404
    new = {"X-OpenStack-Ironic-API-Version": "1.28"}
    assert api.get(f"/v1/nodes/{node}/vifs", headers=new).status_code == 200
    assert api.get(f"/v1/nodes/{uuid.uuid4()}/vifs").status_code == 404


def test_api_refuses_bad_vif_bodies(api: httpx.Client) -> None:
    node = node_with_ports(api, 1)
    vifs = f"/v1/nodes/{node}/vifs"
    for body in ({}, {"id": 5}, {"id": ""}, ["vif"], {"id": "x" * 256}):
        assert api.post(vifs, json=body).status_code == 400, body
    both = api.post(vifs, json={"id": "v", "port_uuid": str(uuid.uuid4()),
                                "portgroup_uuid": str(uuid.uuid4())})
    assert both.status_code == 400
    assert fault(both) == "Cannot specify both port_uuid and portgroup_uuid"
    assert api.get(vifs).json() == {"vifs": []}


def test_api_noop_network_accepts_vifs(api: httpx.Client) -> None:
    node = node_with_ports(api, 0, network="noop")
    assert api.post(f"/v1/nodes/{node}/vifs", json={"id": "vif-1"}).status_code == 204
    assert api.get(f"/v1/nodes/{node}/vifs").json() == {"vifs": []}
    assert api.delete(f"/v1/nodes/{node}/vifs/vif-1").status_code == 204


def test_vifs_cross_rpc_with_their_codes_and_texts(tmp_path: Path) -> None:
    """In a cluster the API's RPC client calls the owning conductor's manager: same answers."""
    url = f"sqlite:///{tmp_path / 'rpc.sqlite'}"
    upgrade_schema(url)
    db = Database(url)
    settings = Settings(process={"data_dir": tmp_path}, conductor={"hostname": "rpc-conductor"},
                        rpc={"secret": rpc_tests.SECRET, "retries": 0})
    manager = ConductorManager(db, settings, Drivers(settings), Membership(db, settings))
    with serving(server_app(manager, rpc_tests.SECRET)) as address:
        client, node_uuid = rpc_tests.client_routing_to(db, tmp_path, address)
        try:
            with db.session() as session:
                node = session.scalar(select(Node).where(Node.uuid == node_uuid))
                assert node is not None
                node.network_interface = "flat"
                session.add(Port(node_id=node.id, address="52:54:00:aa:00:01"))
            client.vif_attach(node_uuid, {"id": "vif-rpc"})
            assert client.vif_list(node_uuid) == [{"id": "vif-rpc"}]
            with pytest.raises(EnclumeError) as conflict:
                client.vif_attach(node_uuid, {"id": "vif-rpc"})
            assert conflict.value.code == 409 and "already attached" in conflict.value.message
            with pytest.raises(EnclumeError) as full:
                client.vif_attach(node_uuid, {"id": "vif-2"})
            assert (full.value.code, full.value.message) == (400, NO_FREE.format("vif-2"))
            client.vif_detach(node_uuid, "vif-rpc")
            assert client.vif_list(node_uuid) == []
        finally:
            client.close()
