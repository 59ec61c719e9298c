"""Port groups and chassis driven by Ironic's own clients against enclume-aio: openstacksdk
(with a VIF on a port group, as Nova's driver attaches them) and the ``baremetal`` CLI."""

from __future__ import annotations

import random
import uuid

from openstack import exceptions as sdk_exceptions

from tests.integration.test_baremetal_cli import Cli
from tests.integration.test_openstacksdk import connect
from tests.support.aio import Server


def mac() -> str:
    return "52:54:04:" + ":".join(f"{random.randrange(256):02x}" for _ in range(3))


def test_openstacksdk_port_groups_chassis_and_a_vif_on_a_group(aio: Server) -> None:
    conn = connect(aio)
    chassis = conn.baremetal.create_chassis(description="rack 7", extra={"row": "b"})
    assert conn.baremetal.get_chassis(chassis.id).description == "rack 7"
    node = conn.baremetal.create_node(driver="fake-hardware", chassis_id=chassis.id,
                                      network_interface="flat",
                                      name=f"pg-{uuid.uuid4().hex[:8]}")
    assert node.chassis_id == chassis.id
    assert [n.id for n in conn.baremetal.nodes(chassis_uuid=chassis.id)] == [node.id]
    chassis = conn.baremetal.update_chassis(chassis, description="rack 8")
    assert chassis.description == "rack 8"

    group = conn.baremetal.create_port_group(node_id=node.id, name=f"bond-{node.name}",
                                             address=mac(), mode="802.3ad",
                                             properties={"miimon": "100"})
    assert group.mode == "802.3ad" and group.is_standalone_ports_supported
    members = [conn.baremetal.create_port(node_id=node.id, address=mac(),
                                          port_group_id=group.id) for _ in range(2)]
    assert {p.port_group_id for p in members} == {group.id}
    listed = list(conn.baremetal.port_groups(details=True, node=node.id))
    assert [(g.id, g.mode) for g in listed] == [(group.id, "802.3ad")]
    assert sorted(p.id for p in conn.baremetal.ports(port_group=group.id)) == sorted(
        p.id for p in members)
    group = conn.baremetal.update_port_group(group, extra={"switch": "tor-1"})
    assert group.extra == {"switch": "tor-1"}

    # Nova's driver: attach a VIF (the group takes it), list, detach.
    conn.baremetal.attach_vif_to_node(node, "vif-bond", port_group=group.id)
    assert conn.baremetal.list_node_vifs(node) == ["vif-bond"]
    assert conn.baremetal.get_port_group(group.id).internal_info == {
        "tenant_vif_port_id": "vif-bond"}
    conn.baremetal.detach_vif_from_node(node, "vif-bond")
    assert conn.baremetal.list_node_vifs(node) == []

    for port in members:
        conn.baremetal.delete_port(port)
    conn.baremetal.delete_port_group(group)
    try:
        conn.baremetal.delete_chassis(chassis)
    except sdk_exceptions.BadRequestException as full:
        assert "contains nodes" in str(full)
    else:
        raise AssertionError("a chassis with a node was deleted")
    conn.baremetal.delete_node(node)
    conn.baremetal.delete_chassis(chassis)
    assert conn.baremetal.find_chassis(chassis.id) is None


def test_baremetal_cli_port_groups_and_chassis(aio: Server) -> None:
    cli = Cli(aio)
    chassis = cli.json("chassis", "create", "--description", "cli rack")
    node = cli.json("node", "create", "--driver", "fake-hardware", "--chassis-uuid",
                    chassis["uuid"])
    assert {"uuid": chassis["uuid"], "description": "cli rack"} in cli.json("chassis", "list")
    assert cli.json("chassis", "show", chassis["uuid"])["description"] == "cli rack"
    group = cli.json("port", "group", "create", "--node", node["uuid"], "--name",
                     f"cli-{node['uuid'][:8]}", "--address", mac(), "--mode", "balance-rr",
                     "--property", "miimon=100", "--support-standalone-ports")
    assert group["mode"] == "balance-rr" and group["properties"] == {"miimon": 100}
    port = cli.json("port", "create", mac(), "--node", node["uuid"], "--port-group",
                    group["uuid"])
    assert port["portgroup_uuid"] == group["uuid"]
    shown = cli.json("port", "group", "show", group["name"])
    assert shown["uuid"] == group["uuid"]
    cli.run("port", "group", "set", group["uuid"], "--extra", "rack=r2")
    assert cli.json("port", "group", "show", group["uuid"])["extra"] == {"rack": "r2"}
    listed = cli.json("port", "group", "list", "--node", node["uuid"])
    assert listed == [{"uuid": group["uuid"], "address": group["address"],
                       "name": group["name"]}]
    refused = cli.run("port", "group", "delete", group["uuid"], check=False)
    assert refused.returncode != 0 and "contains ports" in refused.stderr
    cli.run("port", "delete", port["uuid"])
    cli.run("port", "group", "delete", group["uuid"])
    cli.run("node", "delete", node["uuid"])
    cli.run("chassis", "delete", chassis["uuid"])
    gone = cli.run("chassis", "show", chassis["uuid"], check=False)
    assert gone.returncode != 0 and "could not be found" in gone.stderr
