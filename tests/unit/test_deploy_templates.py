"""Deploy templates (API 1.55) through a served API with an in-process conductor: Ironic's
fields, rules and texts, and their steps run in the deploys of nodes whose instance traits
name them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.drivers.bios import FAKE_DEFAULTS
from tests.support.api_stack import faultstring as fault
from tests.support.api_stack import served_api
from tests.unit.test_deploy_steps import APPLY, available_node, provision, settled

STEP = {"interface": "bios", "step": "apply_configuration", "priority": 150,
        "args": {"settings": [{"name": "HyperThreading", "value": "Disabled"}]}}
DEFAULTS = {name: value for name, (value, _registry) in FAKE_DEFAULTS.items()}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    directory: Path = tmp_path_factory.mktemp("deploy-templates")
    url = f"sqlite:///{directory / 'api.sqlite'}"
    upgrade_schema(url)
    settings = Settings(process={"data_dir": directory}, conductor={"hostname": "conductor-1"})
    with served_api(settings, Database(url)) as served:
        yield served.client


def create(api: httpx.Client, **body: Any) -> httpx.Response:
    return api.post("/v1/deploy_templates", json=body)


def test_life_of_a_template(api: httpx.Client) -> None:
    created = create(api, name="CUSTOM_VIRT", steps=[{**STEP, "priority": "150"}],
                     extra={"team": "a"})
    assert created.status_code == 201, created.text
    template = created.json()
    assert template["steps"] == [STEP] and template["extra"] == {"team": "a"}
    assert created.headers["Location"].endswith(f"/v1/deploy_templates/{template['uuid']}")
    assert set(template) == {"uuid", "name", "steps", "extra", "created_at", "updated_at",
                             "links"}
    assert api.get("/v1/deploy_templates/CUSTOM_VIRT").json()["uuid"] == template["uuid"]
    listed = api.get("/v1/deploy_templates").json()["deploy_templates"]
    assert [set(t) for t in listed] == [{"uuid", "name", "links"}]
    detailed = api.get("/v1/deploy_templates?detail=True").json()["deploy_templates"]
    assert detailed[0]["steps"] == [STEP]
    only = api.get(f"/v1/deploy_templates/{template['uuid']}?fields=name,extra").json()
    assert only == {"name": "CUSTOM_VIRT", "extra": {"team": "a"}}
    patched = api.patch("/v1/deploy_templates/CUSTOM_VIRT", json=[
        {"op": "replace", "path": "/name", "value": "CUSTOM_VIRT2"},
        {"op": "add", "path": "/steps/1", "value": {**STEP, "step": "factory_reset",
                                                    "args": {}}},
        {"op": "remove", "path": "/extra/team"}])
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "CUSTOM_VIRT2" and len(patched.json()["steps"]) == 2
    assert patched.json()["extra"] == {}
    taken = create(api, name="CUSTOM_VIRT2", steps=[STEP])
    assert taken.status_code == 409
    assert fault(taken) == "A deploy template with name CUSTOM_VIRT2 already exists."
    assert api.delete("/v1/deploy_templates/CUSTOM_VIRT2").status_code == 204
    gone = api.get(f"/v1/deploy_templates/{template['uuid']}")
    assert gone.status_code == 404
    assert fault(gone) == f"Deploy template {template['uuid']} could not be found."


def test_ironic_rules_and_texts(api: httpx.Client) -> None:
    assert fault(create(api, name="virt", steps=[STEP])).startswith(
        "Schema error for deploy_template: 'virt' does not match '^CUSTOM_[A-Z0-9_]+$'. "
        "Deploy template name must be a valid trait.")
    assert fault(create(api, name="CUSTOM_A", steps=[])) == (
        "Schema error for deploy_template: [] is too short")
    assert fault(create(api, name="CUSTOM_A", steps=[STEP, STEP])) == (
        "Deploy template invalid: Duplicate deploy steps. A deploy template cannot have "
        "multiple deploy steps with the same interface and step. Duplicates: interface: bios, "
        "step: apply_configuration.")
    assert fault(create(api, name="CUSTOM_A", steps=[{**STEP, "priority": -1}])).startswith(
        "Invalid steps: ")
    assert fault(create(api, name="CUSTOM_A", steps=[{**STEP, "foo": 1}])).startswith(
        "Invalid steps: Additional properties are not allowed")
    old = api.get("/v1/deploy_templates", headers={"X-OpenStack-Ironic-API-Version": "1.54"})
    assert old.status_code == 404
    refused = api.post("/v1/deploy_templates", json={"name": "CUSTOM_A", "steps": [STEP]},
                       headers={"X-OpenStack-Ironic-API-Version": "1.54"})
    assert refused.status_code == 405
    assert fault(api.get("/v1/deploy_templates?sort_key=steps")) == (
        "The sort_key value steps is an invalid field for sorting")
    secret = create(api, name="CUSTOM_SECRET", steps=[
        {**STEP, "args": {"settings": [], "password": "hunter2"}}])
    assert secret.status_code == 201
    assert secret.json()["steps"][0]["args"]["password"] == "******"


def test_templates_named_by_instance_traits_run_their_steps(api: httpx.Client) -> None:
    assert create(api, name="CUSTOM_BIOS_TUNED", steps=[STEP]).status_code == 201
    assert create(api, name="CUSTOM_RESET", steps=[
        {"interface": "bios", "step": "factory_reset", "priority": 200, "args": {}}]
    ).status_code == 201
    uuid = available_node(api)
    api.patch(f"/v1/nodes/{uuid}", json=[{"op": "add", "path": "/instance_info/traits",
                                           "value": ["CUSTOM_BIOS_TUNED", "CUSTOM_RESET"]}])
    # The request's step overrides the template's for the same interface and step.
    assert provision(api, uuid, "active", deploy_steps=[APPLY]).status_code == 202
    active = settled(api, uuid, "active")
    assert active["driver_internal_info"]["fake_bios"] == DEFAULTS | {
        "ProcVirtualization": "Disabled"}
    provision(api, uuid, "deleted")
    settled(api, uuid, "available")
    api.patch(f"/v1/nodes/{uuid}", json=[{"op": "add", "path": "/instance_info/traits",
                                           "value": ["CUSTOM_BIOS_TUNED"]}])
    assert provision(api, uuid, "active").status_code == 202
    active = settled(api, uuid, "active")
    assert active["driver_internal_info"]["fake_bios"] == DEFAULTS | {
        "ProcVirtualization": "Disabled", "HyperThreading": "Disabled"}
    # A template whose steps the node cannot run refuses the deploy, naming the template.
    assert create(api, name="CUSTOM_RAID", steps=[
        {"interface": "raid", "step": "create_configuration", "priority": 10, "args": {}}]
    ).status_code == 201
    provision(api, uuid, "deleted")
    settled(api, uuid, "available")
    api.patch(f"/v1/nodes/{uuid}", json=[{"op": "add", "path": "/instance_info/traits",
                                           "value": ["CUSTOM_RAID"]}])
    refused = provision(api, uuid, "active")
    assert refused.status_code == 400
    assert fault(refused).startswith(
        "Validation of deploy steps from deploy templates matching this node's instance traits "
        "failed. Matching deploy templates: CUSTOM_RAID. Errors: node does not support this "
        "deploy step: ")
