"""Ironic's answers where clients match on them (issue #21, fidelity): its error texts, string
booleans, ``retired`` semantics, ``fields`` on single-resource GETs, the same length limits
on every path. Through a served API with an in-process conductor."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from tests.support.api_stack import fault
from tests.unit import test_portgroups_chassis as portgroup_tests

# The port group tests' served API (a module of its own here).
api = portgroup_tests.api


def new_node(api: httpx.Client, version: str = "latest", **values: Any) -> dict[str, Any]:
    response = api.post("/v1/nodes", json={"driver": "fake-hardware", **values},
                        headers={"X-OpenStack-Ironic-API-Version": version})
    assert response.status_code == 201, response.text
    node: dict[str, Any] = response.json()
    return node


def test_ironics_error_texts(api: httpx.Client) -> None:
    node = new_node(api)
    path = f"/v1/nodes/{node['uuid']}"
    assert fault(api.post("/v1/nodes", json={"driver": "fake-hardware", "uuid": "x-1"}),
                 400) == "Expected UUID for uuid: x-1"
    assert fault(api.post("/v1/nodes", json={"driver": "wrongdriver"}), 400).startswith(
        "No valid host was found. Reason: No conductor service registered which supports "
        'driver wrongdriver for conductor group "".')
    assert fault(api.post("/v1/nodes", json={"driver": "fake-hardware", "name": "a b"}),
                 400).startswith("Cannot create node with invalid name 'a b'")
    assert fault(api.patch(path, json=[{"op": "add", "path": "/name", "value": "a b"}]),
                 400).startswith(f"Node {node['uuid']}: Cannot change name to invalid name "
                                 "'a b'")
    assert fault(api.get("/v1/nodes/a b"), 400) == (
        "Expected a logical name or UUID but received a b.")
    assert fault(api.get("/v1/nodes/no-such-node"), 404) == (
        "Node no-such-node could not be found.")
    remove = {"op": "remove", "path": "/extra/missing"}
    assert fault(api.patch(path, json=[remove]), 400) == (
        f"Couldn't apply patch '{remove!r}'. Reason: can't remove a non-existent object "
        "'missing'")
    assert fault(api.put(f"{path}/traits/lower_case"), 400).startswith(
        "Schema error for trait: 'lower_case' is not valid under any of the given schemas")
    assert api.get(path).json()["extra"] == {} and api.get(path).json()["traits"] == []


def test_string_booleans_where_ironic_takes_them(api: httpx.Client) -> None:
    node = new_node(api, automated_clean="false", retired="True", retired_reason="old")
    assert node["automated_clean"] is False and node["retired"] is True
    path = f"/v1/nodes/{node['uuid']}"
    patched = api.patch(path, json=[{"op": "replace", "path": "/retired", "value": "no"}])
    assert patched.status_code == 200, patched.text
    port = api.post("/v1/ports", json={"node_uuid": node["uuid"], "address": "52:54:03:00:00:01",
                                       "pxe_enabled": "False"})
    assert port.status_code == 201 and port.json()["pxe_enabled"] is False
    boot = api.put(f"{path}/management/boot_device", json={"boot_device": "pxe",
                                                           "persistent": "True"})
    assert boot.status_code == 204, boot.text
    refused = api.put(f"{path}/management/boot_device", json={"boot_device": "pxe",
                                                              "persistent": "maybe"})
    assert "persistent" in fault(refused, 400)


def test_retired_semantics(api: httpx.Client) -> None:
    available = new_node(api, version="1.10")  # before 1.11 new nodes are available
    path = f"/v1/nodes/{available['uuid']}"
    assert fault(api.patch(path, json=[{"op": "replace", "path": "/retired", "value": True}]),
                 409) == (f"Node {available['uuid']} can not have 'retired' set in provision "
                          "state 'available', the current state is 'available'")
    assert api.get(path).json()["retired"] is False
    node = new_node(api)
    path = f"/v1/nodes/{node['uuid']}"
    assert fault(api.patch(path, json=[{"op": "add", "path": "/retired_reason",
                                        "value": "why"}]), 400) == (
        "The retired_reason field can only be set when retired is True")
    retired = api.patch(path, json=[{"op": "replace", "path": "/retired", "value": True},
                                    {"op": "add", "path": "/retired_reason", "value": "EOL"}])
    assert retired.json()["retired_reason"] == "EOL"
    back = api.patch(path, json=[{"op": "replace", "path": "/retired", "value": False}])
    assert back.json()["retired"] is False and back.json()["retired_reason"] is None


def test_fields_on_every_single_resource_get(api: httpx.Client) -> None:
    node = new_node(api, version="1.10")  # available: the allocation gets it
    assert api.patch(f"/v1/nodes/{node['uuid']}", json=[
        {"op": "add", "path": "/resource_class", "value": "fidelity"}]).status_code == 200
    port = api.post("/v1/ports", json={"node_uuid": node["uuid"],
                                       "address": "52:54:03:00:00:02"}).json()
    allocation = api.post("/v1/allocations", json={"resource_class": "fidelity"}).json()
    deadline = time.monotonic() + 10  # a conductor decides it (Ironic: "allocating" first)
    while allocation["state"] == "allocating" and time.monotonic() < deadline:
        time.sleep(0.02)
        allocation = api.get(f"/v1/allocations/{allocation['uuid']}").json()
    assert allocation["node_uuid"] == node["uuid"], allocation
    group = api.post("/v1/portgroups", json={"node_uuid": node["uuid"]}).json()
    chassis = api.post("/v1/chassis", json={}).json()
    conductor = api.get("/v1/conductors").json()["conductors"][0]["hostname"]
    for path, ident_field, ident in [
        (f"/v1/nodes/{node['uuid']}", "uuid", node["uuid"]),
        (f"/v1/ports/{port['uuid']}", "uuid", port["uuid"]),
        (f"/v1/allocations/{allocation['uuid']}", "uuid", allocation["uuid"]),
        (f"/v1/nodes/{node['uuid']}/allocation", "uuid", allocation["uuid"]),
        (f"/v1/portgroups/{group['uuid']}", "uuid", group["uuid"]),
        (f"/v1/chassis/{chassis['uuid']}", "uuid", chassis["uuid"]),
        (f"/v1/conductors/{conductor}", "hostname", conductor),
    ]:
        shown = api.get(path, params={"fields": ident_field})
        assert shown.status_code == 200, (path, shown.text)
        assert shown.json() == {ident_field: ident}, path
        assert "are not valid" in fault(api.get(path, params={"fields": "bogus"}), 400), path


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/portgroups", {"mode": "m" * 256}),
    ("/v1/portgroups", {"name": "n" * 256}),
    ("/v1/chassis", {"description": "d" * 256}),
    ("/v1/ports", {"physical_network": "p" * 65, "address": "52:54:03:00:00:03"}),
])
def test_the_same_length_limits_on_the_new_paths(api: httpx.Client, path: str,
                                                  body: dict[str, Any]) -> None:
    node = new_node(api)
    if path != "/v1/chassis":
        body = {**body, "node_uuid": node["uuid"]}
    before = api.get(path + "?limit=0").json()
    fault(api.post(path, json=body), 400)
    assert api.get(path + "?limit=0").json() == before


def test_an_unknown_portgroup_or_chassis_in_a_body_is_400(api: httpx.Client) -> None:
    node = new_node(api)
    missing = str(uuid.uuid4())
    assert fault(api.post("/v1/ports", json={"node_uuid": node["uuid"],
                                             "address": "52:54:03:00:00:04",
                                             "portgroup_uuid": missing}), 400) == (
        f"Portgroup {missing} could not be found.")
    assert fault(api.patch(f"/v1/nodes/{node['uuid']}", json=[
        {"op": "add", "path": "/chassis_uuid", "value": missing}]), 400) == (
        f"Chassis {missing} could not be found.")


def test_a_vif_body_has_the_ports_limits(api: httpx.Client) -> None:
    node = new_node(api, network_interface="flat")
    vifs = f"/v1/nodes/{node['uuid']}/vifs"
    assert "physical_network" in fault(api.post(vifs, json={
        "id": "v1", "physical_networks": ["p" * 65]}), 400)
    assert fault(api.post(vifs, json={"id": "v1", "port_uuid": "nope"}), 400) == (
        "Expected UUID for port_uuid: nope")
    assert api.get(vifs).json() == {"vifs": []}


def test_ironics_error_texts_for_allocations(api: httpx.Client) -> None:
    create = "/v1/allocations"
    before = api.get(create).json()["allocations"]
    assert fault(api.post(create, json={"resource_class": "rc", "name": "not/a/name"}),
                 400).startswith("Cannot create allocation with invalid name 'not/a/name'")
    assert fault(api.post(create, json={"resource_class": "x" * 81}), 400).startswith(
        "Schema error for allocation: 'xxx")
    assert "is too long" in fault(api.post(create, json={"resource_class": "x" * 81}), 400)
    assert fault(api.post(create, json={"resource_class": "rc", "traits": ["foo"]}),
                 400).startswith("Schema error for allocation: 'foo' does not match "
                                 "'^CUSTOM_[A-Z0-9_]+$'")
    node = new_node(api, name="candidate-one")
    missing = str(uuid.uuid4())
    assert fault(api.post(create, json={"resource_class": "rc",
                                        "candidate_nodes": ["banana?"]}), 400) == (
        "Nodes cannot be found: banana?")
    assert fault(api.post(create, json={"resource_class": "rc",
                                        "candidate_nodes": [node["name"], missing]}), 400) == (
        f"Nodes cannot be found: {missing}")
    assert api.get(create).json()["allocations"] == before
    allocation = api.post(create, json={"resource_class": "rc",
                                        "candidate_nodes": [node["name"]]}).json()
    assert allocation["candidate_nodes"] == [node["uuid"]]
    renamed = api.patch(f"{create}/{allocation['uuid']}", json=[
        {"op": "add", "path": "/name", "value": "a b"}])
    assert fault(renamed, 400).startswith("Cannot update allocation with invalid name 'a b'")


def test_a_portgroup_patch_before_1_26_leaves_its_stored_mode_alone(api: httpx.Client) -> None:
    """`openstack baremetal port group set --extra` speaks 1.25: a group's stored mode and
    properties (1.26 fields) must not make its PATCH 406; sending them at 1.25 still is."""
    node = new_node(api)
    group = api.post("/v1/portgroups", json={"node_uuid": node["uuid"], "mode": "802.3ad"}).json()
    old = {"X-OpenStack-Ironic-API-Version": "1.25"}
    path = f"/v1/portgroups/{group['uuid']}"
    patched = api.patch(path, json=[{"op": "add", "path": "/extra/ext", "value": "testdata"}],
                        headers=old)
    assert patched.status_code == 200, patched.text
    assert patched.json()["extra"] == {"ext": "testdata"}
    assert api.get(path).json()["mode"] == "802.3ad"
    refused = api.post("/v1/portgroups", json={"node_uuid": node["uuid"], "mode": "802.3ad"},
                       headers=old)
    assert refused.status_code == 406, refused.text
