"""Microversions 1.74 to 1.84 through a served API with an in-process conductor (fake hardware,
SQLite): each field, filter and endpoint from its version on, and Ironic's answer below it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.api.versions import MAX_VERSION
from tests.support.api_stack import ServedApi, at, served_sqlite_api
from tests.support.api_stack import faultstring as fault
from tests.support.polling import eventually


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApi]:
    with served_sqlite_api(tmp_path_factory.mktemp("newer")) as stack:
        yield stack


@pytest.fixture(scope="module")
def api(served: ServedApi) -> httpx.Client:
    return served.client


def new_node(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = api.post("/v1/nodes", json={"driver": "fake-hardware"} | fields)
    assert response.status_code == 201, response.text
    document: dict[str, Any] = response.json()
    return document


def test_the_served_maximum_is_1_115(api: httpx.Client) -> None:
    assert MAX_VERSION == (1, 115)
    assert api.get("/v1/", headers=at("1.115")).status_code == 200
    assert api.get("/v1/", headers=at("1.116")).status_code == 406


def test_boot_mode_fields_appear_at_1_75_and_change_at_1_76(api: httpx.Client) -> None:
    uuid = new_node(api)["uuid"]
    assert "boot_mode" not in api.get(f"/v1/nodes/{uuid}", headers=at("1.74")).json()
    shown = api.get(f"/v1/nodes/{uuid}", headers=at("1.75")).json()
    assert shown["boot_mode"] is None and shown["secure_boot"] is None
    states = api.get(f"/v1/nodes/{uuid}/states", headers=at("1.75")).json()
    assert {"boot_mode", "secure_boot"} <= set(states)
    below = api.put(f"/v1/nodes/{uuid}/states/boot_mode", json={"target": "uefi"},
                    headers=at("1.75"))
    assert below.status_code == 404
    assert "starting with the API version 1.76" in fault(below)
    bad = api.put(f"/v1/nodes/{uuid}/states/boot_mode", json={"target": "efi"})
    assert bad.status_code == 400 and "Allowed boot modes are: bios, uefi" in fault(bad)
    assert api.put(f"/v1/nodes/{uuid}/states/boot_mode",
                   json={"target": "uefi"}).status_code == 202
    assert eventually(lambda: api.get(f"/v1/nodes/{uuid}").json()["boot_mode"] == "uefi",
                      10, "the boot mode set")
    assert api.put(f"/v1/nodes/{uuid}/states/secure_boot",
                   json={"target": "True"}).status_code == 202
    assert eventually(lambda: api.get(f"/v1/nodes/{uuid}").json()["secure_boot"] is True,
                      10, "secure boot on")
    wrong = api.put(f"/v1/nodes/{uuid}/states/secure_boot", json={"target": "maybe"})
    assert wrong.status_code == 400 and "Invalid secure_boot maybe" in fault(wrong)


def test_a_management_interface_without_boot_modes_leaves_ironics_error(
        api: httpx.Client) -> None:
    uuid = new_node(api, driver="ipmi", driver_info={"ipmi_address": "127.0.0.1"})["uuid"]
    assert api.put(f"/v1/nodes/{uuid}/states/boot_mode",
                   json={"target": "bios"}).status_code == 202
    error = eventually(lambda: api.get(f"/v1/nodes/{uuid}").json()["last_error"], 10,
                       "the failure recorded")
    assert error.startswith("Failed to change boot mode to 'bios: Driver ipmi does not "
                            "support set_boot_mode")
    assert api.get(f"/v1/nodes/{uuid}").json()["boot_mode"] is None


def test_driver_fields_from_1_77(api: httpx.Client) -> None:
    assert api.get("/v1/drivers?fields=name", headers=at("1.76")).status_code == 406
    listed = api.get("/v1/drivers?fields=name").json()["drivers"]
    assert listed and all(set(d) == {"name", "links"} for d in listed)
    one = api.get("/v1/drivers/fake-hardware?fields=default_boot_interface").json()
    assert set(one) == {"default_boot_interface", "links"}
    unknown = api.get("/v1/drivers/fake-hardware?fields=colour")
    assert unknown.status_code == 400 and 'Field(s) "colour" are not valid' in fault(unknown)
    both = api.get("/v1/drivers?fields=name&detail=true")
    assert both.status_code == 400


def test_history_from_1_78_and_inventory_from_1_81(api: httpx.Client) -> None:
    uuid = new_node(api)["uuid"]
    assert api.get(f"/v1/nodes/{uuid}/history", headers=at("1.77")).status_code == 404
    assert api.get(f"/v1/nodes/{uuid}/history", headers=at("1.78")).status_code == 200
    assert api.get(f"/v1/nodes/{uuid}/inventory", headers=at("1.80")).status_code == 404
    never = api.get(f"/v1/nodes/{uuid}/inventory", headers=at("1.81"))
    assert never.status_code == 404 and "inventory could not be found" in fault(never)


def test_shards_from_1_82(api: httpx.Client) -> None:
    assert api.post("/v1/nodes", json={"driver": "fake-hardware", "shard": "a"},
                    headers=at("1.81")).status_code == 400
    first = new_node(api, shard="rack-a")
    new_node(api, shard="rack-a")
    other = new_node(api, shard="rack-b")
    unsharded_node = new_node(api)  # this test's own: no other test's node is counted on
    port = api.post("/v1/ports", json={"node_uuid": first["uuid"],
                                       "address": "52:54:00:82:00:01"})
    assert port.status_code == 201, port.text
    assert first["shard"] == "rack-a"
    assert "shard" not in api.get(f"/v1/nodes/{first['uuid']}", headers=at("1.81")).json()
    counts = {s["name"]: s["count"] for s in api.get("/v1/shards").json()["shards"]}
    assert counts["rack-a"] == 2 and counts["rack-b"] == 1 and counts["None"] >= 1
    assert api.get("/v1/shards", headers=at("1.81")).status_code == 404
    listed = {n["uuid"] for n in api.get("/v1/nodes?shard=rack-b,nowhere").json()["nodes"]}
    assert listed == {other["uuid"]}
    unsharded = api.get("/v1/nodes?sharded=false&fields=uuid,shard").json()["nodes"]
    assert unsharded_node["uuid"] in {n["uuid"] for n in unsharded}
    assert all(n["shard"] is None for n in unsharded)
    below = api.get("/v1/nodes?shard=rack-a", headers=at("1.81"))
    assert below.status_code == 406 and "should be 1.82" in fault(below)
    ports = api.get("/v1/ports?shard=rack-a").json()["ports"]
    assert [p["uuid"] for p in ports] == [port.json()["uuid"]]
    assert api.get("/v1/ports?shard=rack-a", headers=at("1.81")).status_code == 406
    patched = api.patch(f"/v1/nodes/{other['uuid']}",
                        json=[{"op": "remove", "path": "/shard"}]).json()
    assert patched["shard"] is None


def test_child_nodes_from_1_83(api: httpx.Client) -> None:
    parent = new_node(api, name="chassis-83")
    child = new_node(api, parent_node="chassis-83")  # a name is stored as the UUID
    assert child["parent_node"] == parent["uuid"]
    listed = {n["uuid"] for n in api.get("/v1/nodes").json()["nodes"]}
    assert parent["uuid"] in listed and child["uuid"] not in listed
    everyone = {n["uuid"] for n in api.get("/v1/nodes?include_children=true").json()["nodes"]}
    assert child["uuid"] in everyone
    of_parent = api.get(f"/v1/nodes?parent_node={parent['uuid']}").json()["nodes"]
    assert [n["uuid"] for n in of_parent] == [child["uuid"]]
    children = api.get(f"/v1/nodes/{parent['uuid']}/children").json()
    assert children["children"] == [child["uuid"]]
    assert children["links"]["href"].endswith(f"/v1/nodes?parent_node={parent['uuid']}")
    assert api.get(f"/v1/nodes/{parent['uuid']}/children",
                   headers=at("1.82")).status_code == 404
    assert api.get("/v1/nodes?include_children=true", headers=at("1.82")).status_code == 406
    missing = api.post("/v1/nodes", json={"driver": "fake-hardware", "parent_node": "nobody"})
    assert missing.status_code == 400
    assert fault(missing) == ("Unable to apply the requested parent_node 'nobody'. Requested "
                              "value was invalid.")
    owned = new_node(api, owner="project-x")
    foreign = api.patch(f"/v1/nodes/{owned['uuid']}",
                        json=[{"op": "add", "path": "/parent_node", "value": parent["uuid"]}])
    assert foreign.status_code == 400  # another owner's node: the same text, as Ironic
    orphan = api.patch(f"/v1/nodes/{child['uuid']}",
                       json=[{"op": "remove", "path": "/parent_node"}]).json()
    assert orphan["parent_node"] is None


def test_continue_inspection_at_1_1_and_from_1_84(api: httpx.Client) -> None:
    between = api.post("/v1/continue_inspection", json={"inventory": {}}, headers=at("1.83"))
    assert between.status_code == 404 and "1.84 or newer is required" in fault(between)
    # Past the version check: discovery is off in this stack (403), at 1.84 and at 1.1.
    for version in ("1.84", "1.1"):
        answer = api.post("/v1/continue_inspection", json={"inventory": {}},
                          headers=at(version))
        assert answer.status_code == 403
