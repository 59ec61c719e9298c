"""Comparing an inventory with the API's nodes and ports: create, minimal patches, ports to
add, update and delete, secrets left to the API, conflicts found before anything is written."""

from __future__ import annotations

from typing import Any

import pytest

from services.cli.enclume.inventory.model import InventoryInvalid, NodeSpec
from services.cli.enclume.inventory.plan import make_plan
from services.cli.enclume.inventory.read import read_yaml
from services.cli.enclume.inventory.validate import validate_entries

NODE_UUID = "6f5a1e83-0b84-4a9a-8f15-0f3f1b1d7b01"
OTHER_UUID = "6f5a1e83-0b84-4a9a-8f15-0f3f1b1d7b02"

INVENTORY = """\
- name: n1
  driver: ipmi
  driver_info: {ipmi_address: 10.0.0.1, ipmi_password: secret}
  properties: {cpus: 8}
  room: B12
  macs: [52:54:00:00:00:01, 52:54:00:00:00:02]
  local_link_connection: {switch_info: tor-1, port_id: Gi1/0/1}
"""


def specs(text: str = INVENTORY) -> list[NodeSpec]:
    return validate_entries(read_yaml(text, "inv.yaml"))


def stored_node(**changes: Any) -> dict[str, Any]:
    """n1 as the API shows it once INVENTORY was enrolled (the password masked)."""
    node = {"uuid": NODE_UUID, "name": "n1", "driver": "ipmi", "updated_at": None,
            "driver_info": {"ipmi_address": "10.0.0.1", "ipmi_password": "******"},
            "properties": {"cpus": 8, "memory_mb": 4096},  # memory_mb: found by inspection
            "extra": {"labels": {"room": "B12"}, "asset": "A-1"}}
    node.update(changes)
    return node


def stored_ports(**first_changes: Any) -> list[dict[str, Any]]:
    return [
        {"uuid": "p1", "address": "52:54:00:00:00:01", "node_uuid": NODE_UUID,
         "pxe_enabled": True, "local_link_connection": {"switch_info": "tor-1",
                                                        "port_id": "Gi1/0/1"},
         "physical_network": None, "extra": {}, **first_changes},
        {"uuid": "p2", "address": "52:54:00:00:00:02", "node_uuid": NODE_UUID,
         "pxe_enabled": False, "local_link_connection": {}, "physical_network": None,
         "extra": {}},
    ]


def test_a_new_node_is_created_with_its_ports() -> None:
    (change,) = make_plan(specs(), [], []).changes
    assert change.kind == "create"
    assert change.changed == ["2 ports"]
    assert change.port_creates == [
        {"address": "52:54:00:00:00:01", "pxe_enabled": True,
         "local_link_connection": {"switch_info": "tor-1", "port_id": "Gi1/0/1"}},
        {"address": "52:54:00:00:00:02", "pxe_enabled": False},
    ]
    assert change.spec.create_body()["driver_info"]["ipmi_password"] == "secret"


def test_the_same_node_is_unchanged_and_only_its_secret_is_left_to_the_api() -> None:
    plan = make_plan(specs(), [stored_node()], stored_ports())
    (change,) = plan.changes
    assert change.kind == "unchanged" and change.changed == []
    assert change.node_ops == [] and not change.port_creates and not change.port_deletes
    # The API shows ******: the password is sent for the API to compare, not as a change.
    assert change.secret_ops == [{"op": "replace", "path": "/driver_info/ipmi_password",
                                  "value": "secret"}]
    assert change.needs_request
    assert plan.counts() == {"create": 0, "update": 0, "unchanged": 1}


def test_without_secrets_an_unchanged_node_sends_nothing() -> None:
    text = INVENTORY.replace(", ipmi_password: secret", "")
    (change,) = make_plan(specs(text), [stored_node()], stored_ports()).changes
    assert change.kind == "unchanged" and not change.needs_request


def test_one_changed_value_gives_one_operation() -> None:
    node = stored_node(driver_info={"ipmi_address": "10.0.0.99", "ipmi_password": "******"})
    (change,) = make_plan(specs(), [node], stored_ports()).changes
    assert change.kind == "update"
    assert change.node_ops == [{"op": "replace", "path": "/driver_info/ipmi_address",
                                "value": "10.0.0.1"}]
    assert change.changed == ["driver_info.ipmi_address"]


def test_maps_are_merged_key_by_key_and_null_removes() -> None:
    text = """\
- name: n1
  driver: redfish
  properties: {cpus: 16, local_gb: null, memory_mb: null}
  extra: {asset: A-1, a/b~c: 1}
  labels: {room: C3, rack: r9}
"""
    (change,) = make_plan(specs(text), [stored_node()], stored_ports()).changes
    assert change.node_ops == [
        {"op": "replace", "path": "/driver", "value": "redfish"},
        {"op": "replace", "path": "/properties/cpus", "value": 16},
        {"op": "remove", "path": "/properties/memory_mb"},  # local_gb was not there
        {"op": "add", "path": "/extra/a~1b~0c", "value": 1},
        {"op": "replace", "path": "/extra/labels/room", "value": "C3"},
        {"op": "add", "path": "/extra/labels/rack", "value": "r9"},
    ]
    assert change.changed == ["driver", "properties.cpus", "properties.memory_mb removed",
                              "extra.a/b~c", "labels.room", "labels.rack"]
    # The file lists no MACs: the node's ports are left alone.
    assert not change.port_deletes and not change.port_creates


def test_labels_are_added_whole_when_the_node_has_none() -> None:
    node = stored_node(extra={})
    text = "- {name: n1, driver: ipmi, room: B12}\n"
    (change,) = make_plan(specs(text), [node], []).changes
    assert change.node_ops == [{"op": "add", "path": "/extra/labels",
                                "value": {"room": "B12"}}]


def test_ports_are_added_updated_and_deleted_to_match() -> None:
    text = INVENTORY.replace("[52:54:00:00:00:01, 52:54:00:00:00:02]",
                             "[52:54:00:00:00:01, 52:54:00:00:00:03]")
    ports = stored_ports(local_link_connection={"switch_info": "tor-1", "port_id": "Gi1/0/9"},
                         pxe_enabled=False)
    (change,) = make_plan(specs(text), [stored_node()], ports).changes
    assert change.kind == "update"
    assert change.port_deletes == [("p2", "52:54:00:00:00:02")]
    assert [(u.uuid, u.ops) for u in change.port_updates] == [("p1", [
        {"op": "replace", "path": "/pxe_enabled", "value": True},
        {"op": "replace", "path": "/local_link_connection",
         "value": {"switch_info": "tor-1", "port_id": "Gi1/0/1"}},
    ])]
    assert change.port_creates == [{"address": "52:54:00:00:00:03", "pxe_enabled": False}]
    assert change.changed == ["port 52:54:00:00:00:02 deleted",
                              "port 52:54:00:00:00:01 pxe_enabled, local_link_connection",
                              "port 52:54:00:00:00:03 added"]


def test_a_mac_of_another_node_is_refused_with_its_line() -> None:
    other = {"uuid": OTHER_UUID, "name": "elsewhere", "driver": "ipmi"}
    ports = [{"uuid": "p9", "address": "52:54:00:00:00:02", "node_uuid": OTHER_UUID}]
    with pytest.raises(InventoryInvalid) as caught:
        make_plan(specs(), [other], ports)
    assert [str(p) for p in caught.value.problems] == [
        "inv.yaml:6: node n1: macs[1]: MAC 52:54:00:00:00:02 is a port of another node, "
        "elsewhere: delete that port first"]


def test_uuid_conflicts() -> None:
    text = f"- {{name: n1, driver: ipmi, uuid: {OTHER_UUID}}}\n"
    with pytest.raises(InventoryInvalid) as caught:
        make_plan(specs(text), [stored_node()], [])
    assert [p.message for p in caught.value.problems] == [
        f"node n1: uuid: node n1 exists with UUID {NODE_UUID}"]
    with pytest.raises(InventoryInvalid) as caught:
        make_plan(specs(text), [{"uuid": OTHER_UUID, "name": "other"}], [])
    assert [p.message for p in caught.value.problems] == [
        "node n1: uuid: the UUID belongs to node other"]


def test_nodes_are_matched_by_name_only() -> None:
    renamed = stored_node(name="n1-old")
    (change,) = make_plan(specs(INVENTORY.replace(", 52:54:00:00:00:02", "")),
                          [renamed], []).changes
    assert change.kind == "create"
