"""Volume connectors and targets (API 1.32) through a served API with an in-process conductor:
Ironic's fields, filters, links, state rules and error texts."""

from __future__ import annotations

import time
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
    directory: Path = tmp_path_factory.mktemp("volumes")
    url = f"sqlite:///{directory / 'api.sqlite'}"
    upgrade_schema(url)
    settings = Settings(process={"data_dir": directory}, conductor={"hostname": "conductor-1"})
    with served_api(settings, Database(url)) as served:
        yield served.client


def iqn() -> str:
    return f"iqn.2017-07.org.openstack:01:{uuid.uuid4().hex[:12]}"


def wait_for(api: httpx.Client, node: str, field: str, value: Any) -> None:
    deadline = time.monotonic() + 10
    while api.get(f"/v1/nodes/{node}").json()[field] != value:
        assert time.monotonic() < deadline, f"{field} never became {value}"
        time.sleep(0.02)


def node_in(api: httpx.Client, power: str | None, **values: Any) -> str:
    created = api.post("/v1/nodes", json={"driver": "fake-hardware", **values})
    assert created.status_code == 201, created.text
    node = str(created.json()["uuid"])
    if power:
        assert api.put(f"/v1/nodes/{node}/states/power",
                       json={"target": power}).status_code == 202
        wait_for(api, node, "power_state", power)
    return node


def connector(api: httpx.Client, node: str, **values: Any) -> dict[str, Any]:
    created = api.post("/v1/volume/connectors",
                       json={"node_uuid": node, "type": "iqn", "connector_id": iqn(), **values})
    assert created.status_code == 201, created.text
    document: dict[str, Any] = created.json()
    return document


def target(api: httpx.Client, node: str, boot_index: int = 0, **values: Any) -> dict[str, Any]:
    created = api.post("/v1/volume/targets",
                       json={"node_uuid": node, "volume_type": "iscsi",
                             "volume_id": str(uuid.uuid4()), "boot_index": boot_index,
                             **values})
    assert created.status_code == 201, created.text
    document: dict[str, Any] = created.json()
    return document


def follow(api: httpx.Client, links: list[dict[str, str]]) -> httpx.Response:
    return api.get(next(link["href"] for link in links if link["rel"] == "self"))


def test_volume_root_and_node_links_answer(api: httpx.Client) -> None:
    node = node_in(api, None, name="vol-links")
    root = api.get("/v1/volume").json()
    assert set(root) == {"links", "connectors", "targets"}
    assert "connectors" in follow(api, root["connectors"]).json()
    assert follow(api, root["links"]).json() == root
    node_volume = follow(api, api.get(f"/v1/nodes/{node}").json()["volume"]).json()
    for sub in ("connectors", "targets"):
        assert follow(api, node_volume[sub]).json() == {sub: []}
    assert follow(api, node_volume["links"]).status_code == 200
    # Older than 1.32 the paths do not exist, and neither does a node's volume field.
    assert api.get("/v1/volume", headers=at("1.31")).status_code == 404
    assert api.get("/v1/volume/connectors", headers=at("1.31")).status_code == 404
    assert "volume" not in api.get(f"/v1/nodes/{node}", headers=at("1.31")).json()


def test_connector_life_fields_filters_and_texts(api: httpx.Client) -> None:
    node = node_in(api, "power off", name="vol-conn")
    other = node_in(api, "power off")
    made = connector(api, node, extra={"foo": "bar"})
    assert set(made) == {"uuid", "node_uuid", "type", "connector_id", "extra", "created_at",
                         "updated_at", "links"}
    assert made["node_uuid"] == node and made["extra"] == {"foo": "bar"}
    assert follow(api, made["links"]).json()["uuid"] == made["uuid"]
    mine = connector(api, other)
    listed = api.get("/v1/volume/connectors", params={"node": "vol-conn"}).json()["connectors"]
    assert [c["uuid"] for c in listed] == [made["uuid"]]
    assert set(listed[0]) == {"uuid", "node_uuid", "type", "connector_id", "links"}
    detailed = api.get("/v1/volume/connectors", params={"node": other, "detail": "True"},
                       headers=at("1.32")).json()["connectors"]
    assert [(c["uuid"], c["extra"]) for c in detailed] == [(mine["uuid"], {})]
    assert [c["uuid"] for c in api.get(f"/v1/nodes/{other}/volume/connectors").json()[
        "connectors"]] == [mine["uuid"]]
    fields = api.get(f"/v1/volume/connectors/{made['uuid']}",
                     params={"fields": "uuid,extra"}).json()
    assert fields == {"uuid": made["uuid"], "extra": {"foo": "bar"}}
    # Ironic's texts: duplicates, unknown nodes, bad bodies and idents.
    duplicate = api.post("/v1/volume/connectors", json={
        "node_uuid": other, "type": "iqn", "connector_id": made["connector_id"]})
    assert duplicate.status_code == 409
    assert fault(duplicate) == (f"A volume connector with type iqn and connector ID "
                                f"{made['connector_id']} already exists.")
    missing = str(uuid.uuid4())
    unknown = api.post("/v1/volume/connectors", json={
        "node_uuid": missing, "type": "iqn", "connector_id": iqn()})
    assert (unknown.status_code, fault(unknown)) == (
        400, f"Invalid input for field/attribute node_uuid. Value: '{missing}'.")
    assert fault(api.post("/v1/volume/connectors", json={"node_uuid": node, "type": "iqn"})) == (
        "Schema error for connector: 'connector_id' is a required property")
    assert fault(api.post("/v1/volume/connectors", json={
        "node_uuid": node, "type": "iqn", "connector_id": iqn(), "bogus": 1})) == (
        "Schema error for connector: Additional properties are not allowed ('bogus' was "
        "unexpected)")
    assert fault(api.post("/v1/volume/connectors", json={
        "node_uuid": "vol-conn", "type": "iqn", "connector_id": iqn()})) == (
        "Expected UUID for node_uuid: vol-conn")
    bad = api.get("/v1/volume/connectors/not-a-uuid")
    assert (bad.status_code, fault(bad)) == (400, "Expected UUID for connector_uuid: not-a-uuid")
    gone = api.get(f"/v1/volume/connectors/{missing}")
    assert (gone.status_code, fault(gone)) == (404, f"Volume connector {missing} could not be "
                                                    "found.")
    nested = api.get(f"/v1/nodes/{node}/volume/connectors/{made['uuid']}")
    assert (nested.status_code, fault(nested)) == (400, "Malformed request URI.")
    # PATCH: extra, then a move to another node; uuid is not patchable.
    patched = api.patch(f"/v1/volume/connectors/{made['uuid']}",
                        json=[{"op": "add", "path": "/extra/answer", "value": 42},
                              {"op": "replace", "path": "/node_uuid", "value": other}])
    assert patched.status_code == 200, patched.text
    assert patched.json()["extra"] == {"foo": "bar", "answer": 42}
    assert patched.json()["node_uuid"] == other
    refused = api.patch(f"/v1/volume/connectors/{made['uuid']}",
                        json=[{"op": "replace", "path": "/uuid", "value": missing}])
    assert fault(refused) == ("Cannot patch /uuid. Only the following can be updated: "
                              "connector_id, extra, node_uuid, type")
    moved = api.patch(f"/v1/volume/connectors/{made['uuid']}",
                      json=[{"op": "replace", "path": "/node_uuid", "value": "vol-conn"}])
    assert fault(moved) == "Expected a UUID for node_uuid, but received vol-conn."
    assert api.delete(f"/v1/volume/connectors/{made['uuid']}").status_code == 204
    assert api.get(f"/v1/volume/connectors/{made['uuid']}").status_code == 404


def test_targets_boot_index_properties_and_power_rules(api: httpx.Client) -> None:
    node = node_in(api, "power on")
    first = target(api, node, properties={"target_iqn": "iqn.x", "auth_password": "s3cret"})
    assert first["properties"] == {"target_iqn": "iqn.x", "auth_password": "******"}
    assert set(api.get("/v1/volume/targets", params={"node": node}).json()["targets"][0]) == {
        "uuid", "node_uuid", "volume_type", "boot_index", "volume_id", "links"}
    duplicate = api.post("/v1/volume/targets", json={
        "node_uuid": node, "volume_type": "iscsi", "volume_id": "v", "boot_index": 0})
    assert (duplicate.status_code, fault(duplicate)) == (
        409, "A volume target with boot index '0' for the same node already exists.")
    assert fault(api.post("/v1/volume/targets", json={
        "node_uuid": node, "volume_type": "iscsi", "volume_id": "v", "boot_index": "1"})) == (
        "Schema error for target: '1' is not of type 'integer'")
    # Powered on and active-less (available would be too): no change, no deletion.
    change = [{"op": "replace", "path": "/boot_index", "value": 3}]
    refused = api.patch(f"/v1/volume/targets/{first['uuid']}", json=change)
    assert (refused.status_code, fault(refused)) == (
        400, f'The requested action "volume target update" can not be performed on node '
             f'"{node}" while it is in state "power on".')
    assert api.put(f"/v1/nodes/{node}/states/provision",
                   json={"target": "manage"}).status_code == 202
    wait_for(api, node, "provision_state", "manageable")
    # Manageable: deletion is allowed whatever the power state, changes still are not.
    second = target(api, node, boot_index=1)
    assert api.patch(f"/v1/volume/targets/{second['uuid']}", json=change).status_code == 400
    assert api.delete(f"/v1/volume/targets/{second['uuid']}").status_code == 204
    assert api.put(f"/v1/nodes/{node}/states/power",
                   json={"target": "power off"}).status_code == 202
    wait_for(api, node, "power_state", "power off")
    changed = api.patch(f"/v1/volume/targets/{first['uuid']}",
                        json=[*change, {"op": "remove", "path": "/properties"}])
    assert changed.status_code == 200, changed.text
    assert (changed.json()["boot_index"], changed.json()["properties"]) == (3, {})
    # Deleting the node deletes its volumes.
    connector(api, node)
    assert api.delete(f"/v1/nodes/{node}").status_code == 204
    assert api.get(f"/v1/volume/targets/{first['uuid']}").status_code == 404
    assert api.get("/v1/volume/connectors", params={"node": node}).status_code == 404


def test_the_external_storage_interface_is_accepted(api: httpx.Client) -> None:
    node = node_in(api, None, storage_interface="external")
    assert api.get(f"/v1/nodes/{node}").json()["storage_interface"] == "external"
    assert api.get(f"/v1/nodes/{node}/validate").json()["storage"]["result"] is True
