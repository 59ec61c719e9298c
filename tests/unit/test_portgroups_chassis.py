"""Port groups (API 1.23+) and chassis through a served API with an in-process conductor:
Ironic's fields per microversion, links that answer, its rules and error texts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from tests.support.api_stack import at, served_api
from tests.support.api_stack import faultstring as fault


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    directory: Path = tmp_path_factory.mktemp("portgroups")
    url = f"sqlite:///{directory / 'api.sqlite'}"
    upgrade_schema(url)
    settings = Settings(process={"data_dir": directory}, conductor={"hostname": "conductor-1"})
    with served_api(settings, Database(url)) as served:
        yield served.client


def mac() -> str:
    return "52:54:02:" + ":".join(uuid.uuid4().hex[i:i + 2] for i in (0, 2, 4))


def new_node(api: httpx.Client, **values: Any) -> dict[str, Any]:
    response = api.post("/v1/nodes", json={"driver": "fake-hardware", **values})
    assert response.status_code == 201, response.text
    node: dict[str, Any] = response.json()
    return node


def follow(api: httpx.Client, links: list[dict[str, str]]) -> httpx.Response:
    return api.get(next(link["href"] for link in links if link["rel"] == "self"))


# -- port groups ----------------------------------------------------------------------------


def test_portgroup_life_with_ports_and_links(api: httpx.Client) -> None:
    node = new_node(api)
    created = api.post("/v1/portgroups", json={"node_uuid": node["uuid"], "name": "bond0",
                                               "address": mac().upper(),
                                               "standalone_ports_supported": "False"})
    assert created.status_code == 201, created.text
    group = created.json()
    assert group["mode"] == "active-backup" and group["properties"] == {}
    assert group["standalone_ports_supported"] is False
    assert group["address"] == group["address"].lower()
    assert created.headers["Location"].endswith(f"/v1/portgroups/{group['uuid']}")
    assert api.get("/v1/portgroups/bond0").json()["uuid"] == group["uuid"]
    # A member port: not PXE-enabled in a group without standalone ports (Ironic's 409).
    refused = api.post("/v1/ports", json={"node_uuid": node["uuid"], "address": mac(),
                                          "portgroup_uuid": group["uuid"],
                                          "pxe_enabled": True})
    assert refused.status_code == 409
    assert fault(refused) == (f"Port group {group['uuid']} doesn't support standalone ports. "
                              "This port cannot be created as a member of that portgroup as "
                              "the port's 'pxe_enabled' field was set to True.")
    port = api.post("/v1/ports", json={"node_uuid": node["uuid"], "address": mac(),
                                       "portgroup_uuid": group["uuid"], "pxe_enabled": "false"})
    assert port.status_code == 201, port.text
    assert port.json()["portgroup_uuid"] == group["uuid"]
    listed = follow(api, group["ports"])
    assert [p["uuid"] for p in listed.json()["ports"]] == [port.json()["uuid"]]
    node_groups = follow(api, new_node_links(api, node["uuid"]))
    assert [g["uuid"] for g in node_groups.json()["portgroups"]] == [group["uuid"]]
    assert api.get("/v1/ports", params={"portgroup": "bond0"}).json()["ports"][0]["uuid"] == (
        port.json()["uuid"])
    # A member that turns PXE on: refused by the conductor, nothing written.
    patch = [{"op": "replace", "path": "/pxe_enabled", "value": True}]
    turned = api.patch(f"/v1/ports/{port.json()['uuid']}", json=patch)
    assert turned.status_code == 409 and "doesn't support standalone ports" in fault(turned)
    assert api.get(f"/v1/ports/{port.json()['uuid']}").json()["pxe_enabled"] is False
    # A group with ports is not deleted; without them it is.
    kept = api.delete(f"/v1/portgroups/{group['uuid']}")
    assert kept.status_code == 400
    assert fault(kept) == ("Cannot complete the requested action because portgroup "
                           f"{group['uuid']} contains ports.")
    removed = api.patch(f"/v1/ports/{port.json()['uuid']}",
                        json=[{"op": "remove", "path": "/portgroup_uuid"}])
    assert removed.status_code == 200 and removed.json()["portgroup_uuid"] is None
    assert api.delete("/v1/portgroups/bond0").status_code == 204
    gone = api.get(f"/v1/portgroups/{group['uuid']}")
    assert gone.status_code == 404
    assert fault(gone) == f"Portgroup {group['uuid']} could not be found."


def new_node_links(api: httpx.Client, node_uuid: str) -> list[dict[str, str]]:
    links: list[dict[str, str]] = api.get(f"/v1/nodes/{node_uuid}").json()["portgroups"]
    return links


def test_portgroup_patch_rules_and_texts(api: httpx.Client) -> None:
    node = new_node(api)
    group = api.post("/v1/portgroups", json={"node_uuid": node["uuid"]}).json()
    path = f"/v1/portgroups/{group['uuid']}"
    renamed = api.patch(path, json=[{"op": "add", "path": "/name", "value": "bad name"}])
    assert renamed.status_code == 400
    assert fault(renamed) == (f"Portgroup {group['uuid']}: Cannot change name to invalid name "
                              "'bad name'")
    mode = api.patch(path, json=[{"op": "remove", "path": "/mode"}])
    assert fault(mode) == "'mode' is a mandatory attribute and can not be removed"
    changed = api.patch(path, json=[{"op": "replace", "path": "/mode", "value": "802.3ad"},
                                    {"op": "add", "path": "/properties/miimon", "value": "100"}])
    assert changed.status_code == 200, changed.text
    assert changed.json()["mode"] == "802.3ad"
    assert changed.json()["properties"] == {"miimon": "100"}
    old = api.patch(path, json=[{"op": "replace", "path": "/mode", "value": "x"}],
                    headers=at("1.25"))
    assert old.status_code == 406
    bad = api.post("/v1/portgroups", json={"node_uuid": node["uuid"], "name": "not ok"})
    assert fault(bad) == "Cannot create portgroup with invalid name 'not ok'"
    ident = api.get("/v1/portgroups/not a name")
    assert ident.status_code == 400
    assert fault(ident) == "Expected a logical name or UUID but received not a name."
    duplicate = api.post("/v1/portgroups", json={"node_uuid": node["uuid"],
                                                 "uuid": group["uuid"]})
    assert duplicate.status_code == 409
    assert fault(duplicate) == f"A portgroup with UUID {group['uuid']} already exists."


def test_portgroup_fields_per_microversion(api: httpx.Client) -> None:
    node = new_node(api)
    group = api.post("/v1/portgroups", json={"node_uuid": node["uuid"]}).json()
    assert api.get("/v1/portgroups", headers=at("1.22")).status_code == 404
    at_23 = api.get(f"/v1/portgroups/{group['uuid']}", headers=at("1.23")).json()
    assert "ports" not in at_23 and "mode" not in at_23 and "node_uuid" in at_23
    assert api.get(f"/v1/nodes/{node['uuid']}/portgroups", headers=at("1.23")).status_code == 404
    assert "mode" not in api.get(f"/v1/portgroups/{group['uuid']}",
                                 headers=at("1.25")).json()
    only = api.get(f"/v1/portgroups/{group['uuid']}", params={"fields": "uuid,mode"})
    assert only.json() == {"uuid": group["uuid"], "mode": "active-backup"}
    summary = api.get("/v1/portgroups", params={"node": node["uuid"]}).json()["portgroups"]
    assert [sorted(g) for g in summary] == [["address", "links", "name", "uuid"]]
    port = api.get(f"/v1/ports?node={node['uuid']}&fields=uuid")
    assert port.status_code == 200


def test_vifs_attach_to_a_portgroup_through_the_api(api: httpx.Client) -> None:
    node = new_node(api, network_interface="flat")
    group = api.post("/v1/portgroups", json={"node_uuid": node["uuid"]}).json()
    for _ in range(2):
        member = api.post("/v1/ports", json={"node_uuid": node["uuid"], "address": mac(),
                                             "portgroup_uuid": group["uuid"]})
        assert member.status_code == 201, member.text
    vifs = f"/v1/nodes/{node['uuid']}/vifs"
    assert api.post(vifs, json={"id": "vif-pg"}).status_code == 204
    shown = api.get(f"/v1/portgroups/{group['uuid']}").json()
    assert shown["internal_info"] == {"tenant_vif_port_id": "vif-pg"}
    again = api.post(vifs, json={"id": "vif-pg"})
    assert again.status_code == 409
    assert fault(again) == ("Unable to attach VIF because VIF vif-pg is already attached to "
                            f"Ironic Portgroup {group['uuid']}")
    both = api.post(vifs, json={"id": "x", "port_uuid": str(uuid.uuid4()),
                                "portgroup_uuid": group["uuid"]})
    assert fault(both) == "Cannot specify both port_uuid and portgroup_uuid"
    assert api.get(vifs).json() == {"vifs": [{"id": "vif-pg"}]}
    assert api.delete(f"{vifs}/vif-pg").status_code == 204


# -- chassis --------------------------------------------------------------------------------


def test_chassis_life_and_its_nodes(api: httpx.Client) -> None:
    created = api.post("/v1/chassis", json={"description": "rack 4", "extra": {"row": 2}})
    assert created.status_code == 201, created.text
    chassis = created.json()
    assert sorted(chassis) == ["created_at", "description", "extra", "links", "nodes",
                               "updated_at", "uuid"]
    node = new_node(api, chassis_uuid=chassis["uuid"])
    assert node["chassis_uuid"] == chassis["uuid"]
    nodes = follow(api, chassis["nodes"]).json()["nodes"]
    assert [n["uuid"] for n in nodes] == [node["uuid"]]
    assert [n["uuid"] for n in api.get("/v1/nodes", params={
        "chassis_uuid": chassis["uuid"]}).json()["nodes"]] == [node["uuid"]]
    listed = api.get("/v1/chassis").json()["chassis"]
    assert {"uuid": chassis["uuid"], "description": "rack 4",
            "links": chassis["links"]} in listed
    patched = api.patch(f"/v1/chassis/{chassis['uuid']}",
                        json=[{"op": "replace", "path": "/description", "value": "rack 5"}])
    assert patched.json()["description"] == "rack 5"
    full = api.delete(f"/v1/chassis/{chassis['uuid']}")
    assert full.status_code == 400
    assert fault(full) == ("Cannot complete the requested action because chassis "
                           f"{chassis['uuid']} contains nodes.")
    moved = api.patch(f"/v1/nodes/{node['uuid']}",
                      json=[{"op": "remove", "path": "/chassis_uuid"}])
    assert moved.status_code == 200 and moved.json()["chassis_uuid"] is None
    assert api.delete(f"/v1/chassis/{chassis['uuid']}").status_code == 204
    missing = api.get(f"/v1/chassis/{chassis['uuid']}")
    assert missing.status_code == 404
    assert fault(missing) == f"Chassis {chassis['uuid']} could not be found."
    unknown = api.post("/v1/nodes", json={"driver": "fake-hardware",
                                          "chassis_uuid": chassis["uuid"]})
    assert unknown.status_code == 400
    assert fault(unknown) == f"Chassis {chassis['uuid']} could not be found."
    assert fault(api.get("/v1/chassis/nope")) == "Expected a UUID but received nope."
    long = api.post("/v1/chassis", json={"description": "x" * 256})
    assert long.status_code == 400


def test_standalone_ports_cannot_be_turned_off_under_a_pxe_member(api: httpx.Client) -> None:
    node = new_node(api)
    group = api.post("/v1/portgroups", json={"node_uuid": node["uuid"]}).json()
    assert api.post("/v1/ports", json={"node_uuid": node["uuid"], "address": mac(),
                                       "portgroup_uuid": group["uuid"]}).status_code == 201
    off = [{"op": "replace", "path": "/standalone_ports_supported", "value": False}]
    refused = api.patch(f"/v1/portgroups/{group['uuid']}", json=off)
    assert refused.status_code == 409
    assert fault(refused) == ("standalone_ports_supported can not be set to False, because "
                              f"the port group {group['uuid']} contains port with "
                              "'pxe_enabled' is set to True")
    assert api.get(f"/v1/portgroups/{group['uuid']}").json()["standalone_ports_supported"]
    other = new_node(api)
    foreign = api.post("/v1/ports", json={"node_uuid": other["uuid"], "address": mac(),
                                          "portgroup_uuid": group["uuid"]})
    assert foreign.status_code == 400
    assert fault(foreign) == ("Port can not be added to a portgroup belonging to a different "
                              "node.")
    moved = api.patch(f"/v1/portgroups/{group['uuid']}",
                      json=[{"op": "replace", "path": "/node_uuid", "value": other["uuid"]}])
    assert moved.status_code == 400
    assert fault(moved) == (f"Portgroup {group['uuid']} can not be associated with node "
                            f"{other['uuid']} because there are ports associated with this "
                            "portgroup.")


def test_an_older_client_patches_a_grouped_port_without_losing_its_group(
        api: httpx.Client) -> None:
    node = new_node(api)
    group = api.post("/v1/portgroups", json={"node_uuid": node["uuid"]}).json()
    port = api.post("/v1/ports", json={"node_uuid": node["uuid"], "address": mac(),
                                       "portgroup_uuid": group["uuid"]}).json()
    path = f"/v1/ports/{port['uuid']}"
    patched = api.patch(path, json=[{"op": "add", "path": "/extra/a", "value": 1}],
                        headers=at("1.10"))
    assert patched.status_code == 200, patched.text
    assert patched.json()["extra"] == {"a": 1} and "portgroup_uuid" not in patched.json()
    assert api.get(path).json()["portgroup_uuid"] == group["uuid"]
    newer = api.patch(path, json=[{"op": "add", "path": "/pxe_enabled", "value": False}],
                      headers=at("1.10"))
    assert "'/pxe_enabled' can not be updated on a port." in newer.text
