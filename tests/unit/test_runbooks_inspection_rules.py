"""Runbooks (API 1.92) and inspection rules (1.96), both served now that Enclume speaks 1.115:
served here by an app made while ``MAX_VERSION`` is set to 1.96, on SQLite with fake hardware
and an in-process conductor. Below 1.96 the inspection rules' paths are not routes at all
(checked too)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.api import app as app_module
from services.api import inspection_rules, openapi, runbooks, versions
from tests.support.api_stack import ServedApi, at, served_sqlite_api
from tests.support.api_stack import faultstring as fault
from tests.support.polling import eventually

STEP = {"interface": "deploy", "step": "erase_devices_metadata", "args": {}, "order": 1}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApi]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(versions, "MAX_VERSION", (1, 96))
        with served_sqlite_api(tmp_path_factory.mktemp("runbooks")) as stack:
            yield stack


@pytest.fixture(scope="module")
def api(served: ServedApi) -> httpx.Client:
    return served.client


def created(api: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(path, json=body)
    assert response.status_code == 201, response.text
    document: dict[str, Any] = response.json()
    return document


def test_without_the_version_the_paths_are_not_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Runs first, before the module's app sets the maximum: Enclume's real one speaks 1.115
    # (runbooks and inspection rules served); below 1.96 inspection rules are no routes.
    assert versions.MAX_VERSION >= (1, 96)
    assert inspection_rules.router in app_module._speakable_routers()
    assert any(path.startswith("/v1/inspection_rules") for _method, path in openapi.OPERATIONS)
    monkeypatch.setattr(versions, "MAX_VERSION", (1, 95))
    assert inspection_rules.router not in app_module._speakable_routers()
    assert runbooks.router in app_module._speakable_routers()
    assert any(path.startswith("/v1/runbooks") for _method, path in openapi.OPERATIONS)


def test_runbook_crud_and_ironics_validation(api: httpx.Client) -> None:
    runbook = created(api, "/v1/runbooks", {"name": "CUSTOM_WIPE", "steps": [STEP]})
    assert runbook["steps"] == [STEP] and runbook["public"] is False
    assert runbook["owner"] is None and runbook["disable_ramdisk"] is False
    listed = api.get("/v1/runbooks").json()["runbooks"]
    assert [set(r) for r in listed] == [{"uuid", "name", "links"}]
    assert api.get("/v1/runbooks/CUSTOM_WIPE").json()["uuid"] == runbook["uuid"]
    assert api.get("/v1/runbooks", headers=at("1.91")).status_code == 404
    assert api.post("/v1/runbooks", json={"name": "CUSTOM_X", "steps": [STEP]},
                    headers=at("1.91")).status_code == 405
    bad_name = api.post("/v1/runbooks", json={"name": "wipe", "steps": [STEP]})
    assert bad_name.status_code == 400 and "does not match" in fault(bad_name)
    no_order = api.post("/v1/runbooks", json={"name": "CUSTOM_Y", "steps": [
        {"interface": "deploy", "step": "x"}]})
    assert no_order.status_code == 400 and "'order' is a required property" in fault(no_order)
    twice = api.post("/v1/runbooks", json={"name": "CUSTOM_Z", "steps": [STEP, STEP]})
    assert twice.status_code == 400 and "Duplicate deploy steps" in fault(twice)
    again = api.post("/v1/runbooks", json={"name": "CUSTOM_WIPE", "steps": [STEP]})
    assert again.status_code == 409
    owned = api.patch("/v1/runbooks/CUSTOM_WIPE",
                      json=[{"op": "add", "path": "/owner", "value": "project-a"}]).json()
    assert owned["owner"] == "project-a"
    public = api.patch("/v1/runbooks/CUSTOM_WIPE",
                       json=[{"op": "replace", "path": "/public", "value": True}]).json()
    assert public["public"] is True and public["owner"] is None  # as Ironic
    refused = api.patch("/v1/runbooks/CUSTOM_WIPE",
                        json=[{"op": "add", "path": "/owner", "value": "project-b"}])
    assert refused.status_code == 400 and "cannot be an owner for a public runbook" in \
        fault(refused)
    assert api.delete("/v1/runbooks/CUSTOM_WIPE").status_code == 204
    assert api.get("/v1/runbooks/CUSTOM_WIPE").status_code == 404


def test_a_runbook_cleans_a_node_whose_traits_name_it(api: httpx.Client) -> None:
    created(api, "/v1/runbooks", {"name": "CUSTOM_BIOS_RESET", "steps": [
        {"interface": "bios", "step": "factory_reset", "order": 0}]})
    node = created(api, "/v1/nodes", {"driver": "fake-hardware", "bios_interface": "fake"})
    uuid = node["uuid"]
    assert api.put(f"/v1/nodes/{uuid}/states/provision",
                   json={"target": "manage"}).status_code == 202
    eventually(lambda: api.get(f"/v1/nodes/{uuid}").json()["provision_state"] == "manageable",
               10, "manageable")
    clean = {"target": "clean", "runbook": "CUSTOM_BIOS_RESET"}
    unapproved = api.put(f"/v1/nodes/{uuid}/states/provision", json=clean)
    assert unapproved.status_code == 400
    assert fault(unapproved) == (f"This runbook has not been approved for use on this node "
                                 f"{uuid}. Please ask an administrator to add it to your "
                                 "node traits.")
    assert api.put(f"/v1/nodes/{uuid}/traits/CUSTOM_BIOS_RESET").status_code == 204
    assert api.put(f"/v1/nodes/{uuid}/states/provision", json=clean,
                   headers=at("1.91")).status_code == 406
    both = api.put(f"/v1/nodes/{uuid}/states/provision", json={
        **clean, "clean_steps": [{"interface": "bios", "step": "factory_reset"}]})
    assert both.status_code == 400 and "either \"clean_steps\" or a runbook" in fault(both)
    assert api.put(f"/v1/nodes/{uuid}/states/provision", json=clean).status_code == 202
    history = eventually(lambda: [e["event"] for e in api.get(
        f"/v1/nodes/{uuid}/history").json()["history"] if "factory_reset" in e["event"]],
        10, "the runbook's step run")
    assert history
    eventually(lambda: api.get(f"/v1/nodes/{uuid}").json()["provision_state"] == "manageable",
               10, "manageable again")


RULE = {"description": "large disks", "priority": 10,
        "conditions": [{"op": "gt", "args": {"values": ["{inventory[memory][physical_mb]}",
                                                        4096]}}],
        "actions": [{"op": "add-trait", "args": {"name": "CUSTOM_BIG"}}]}


def test_inspection_rule_crud_and_ironics_validation(api: httpx.Client) -> None:
    rule = created(api, "/v1/inspection_rules", RULE)
    assert rule["phase"] == "main" and rule["sensitive"] is False
    assert rule["actions"] == RULE["actions"]
    listed = api.get("/v1/inspection_rules").json()["inspection_rules"]
    assert set(listed[0]) == {"uuid", "priority", "phase", "description", "links"}
    assert api.get("/v1/inspection_rules", headers=at("1.95")).status_code == 404
    assert api.post("/v1/inspection_rules", json=RULE, headers=at("1.95")).status_code == 405
    missing = api.post("/v1/inspection_rules", json={
        "actions": [{"op": "set-attribute", "args": {"path": "/extra/a"}}]})
    assert missing.status_code == 400
    assert fault(missing) == ("Invalid parameters for action operator set-attribute: missing "
                              "required argument(s): value")
    two = api.post("/v1/inspection_rules", json={
        "phase": "early", "priority": 10000,
        "actions": [{"op": "log", "args": {"msg": "x"}}]})
    assert fault(two).startswith("Multiple validation errors occurred: Invalid phase: early")
    unknown = api.post("/v1/inspection_rules", json={
        "actions": [{"op": "explode", "args": {}}]})
    assert unknown.status_code == 400
    assert fault(unknown).startswith("Validation failed for inspection rule: ")
    secret = api.patch(f"/v1/inspection_rules/{rule['uuid']}",
                       json=[{"op": "replace", "path": "/sensitive", "value": True}]).json()
    assert secret["actions"] is None and secret["conditions"] is None
    unset = api.patch(f"/v1/inspection_rules/{rule['uuid']}",
                      json=[{"op": "replace", "path": "/sensitive", "value": False}])
    assert unset.status_code == 400 and "sensitive flag unset" in fault(unset)
    assert api.get("/v1/inspection_rules/not-a-uuid").status_code == 400
    assert api.delete(f"/v1/inspection_rules/{rule['uuid']}").status_code == 204
    assert api.get(f"/v1/inspection_rules/{rule['uuid']}").status_code == 404
