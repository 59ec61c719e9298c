"""Deploy steps that run (API 1.69's ``deploy_steps``, deploy templates' steps) on fake
hardware through a served API with an in-process conductor: planned by priority, refused with
Ironic's texts before any state change, run by the conductor, a failing one named."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.conductor.step_plan import sorted_steps
from services.drivers.bios import FAKE_DEFAULTS
from tests.support.api_stack import faultstring as fault
from tests.support.api_stack import served_api
from tests.support.polling import eventually

APPLY = {"interface": "bios", "step": "apply_configuration", "priority": 150,
         "args": {"settings": [{"name": "ProcVirtualization", "value": "Disabled"}]}}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    directory: Path = tmp_path_factory.mktemp("deploy-steps")
    url = f"sqlite:///{directory / 'api.sqlite'}"
    upgrade_schema(url)
    settings = Settings(process={"data_dir": directory}, conductor={"hostname": "conductor-1"})
    with served_api(settings, Database(url)) as served:
        yield served.client


def node_of(api: httpx.Client, uuid: str) -> dict[str, Any]:
    found: dict[str, Any] = api.get(f"/v1/nodes/{uuid}").json()
    return found


def settled(api: httpx.Client, uuid: str, state: str) -> dict[str, Any]:
    return eventually(lambda: (n := node_of(api, uuid))["provision_state"] == state
                      and (n["target_provision_state"] is None or state.endswith("failed"))
                      and n,
                      what=f"{uuid} in {state}")


def provision(api: httpx.Client, uuid: str, target: str, **body: Any) -> httpx.Response:
    return api.put(f"/v1/nodes/{uuid}/states/provision", json={"target": target, **body})


def available_node(api: httpx.Client, **fields: Any) -> str:
    created = api.post("/v1/nodes", json={"driver": "fake-hardware", "bios_interface": "fake",
                                          **fields})
    assert created.status_code == 201, created.text
    uuid = str(created.json()["uuid"])
    for target, state in (("manage", "manageable"), ("provide", "available")):
        assert provision(api, uuid, target).status_code == 202
        settled(api, uuid, state)
    return uuid


def history(api: httpx.Client, uuid: str) -> list[str]:
    return [str(e["event"]) for e in
            api.get(f"/v1/nodes/{uuid}/history?detail=true").json()["history"]]


def test_user_steps_run_by_priority_around_the_core_step(api: httpx.Client) -> None:
    uuid = available_node(api)
    reset = {"interface": "bios", "step": "factory_reset", "priority": 160, "args": {}}
    late = {**APPLY, "priority": 10,
            "args": {"settings": [{"name": "ProcVirtualization", "value": "Enabled"}]}}
    assert provision(api, uuid, "active", deploy_steps=[APPLY, late]).status_code == 400
    accepted = provision(api, uuid, "active", deploy_steps=[
        {**APPLY, "args": {"settings": [{"name": "BootMode", "value": "Bios"}]}}, reset])
    assert accepted.status_code == 202, accepted.text
    active = settled(api, uuid, "active")
    assert active["deploy_step"] == {} and active["last_error"] is None
    # factory_reset (160) ran first, then apply_configuration (150), then deploy.deploy (100)
    assert active["driver_internal_info"]["fake_bios"] == {
        name: value for name, (value, _registry) in FAKE_DEFAULTS.items()} | {"BootMode": "Bios"}
    bios = api.get(f"/v1/nodes/{uuid}/bios").json()["bios"]  # the cache, read after the deploy
    assert {s["name"]: s["value"] for s in bios}["BootMode"] == "Bios"
    assert active["driver_internal_info"]["fake_deploys"] == 1
    done = [e for e in history(api, uuid) if e.startswith("Deploy step")]
    assert done[-3:] == ["Deploy step bios.factory_reset done.",
                         "Deploy step bios.apply_configuration done.",
                         "Deploy step deploy.deploy done."]
    assert "deploy_steps" not in active["driver_internal_info"]


def test_unknown_or_wrong_steps_are_refused_before_any_state_change(api: httpx.Client) -> None:
    uuid = available_node(api)
    unknown = {"interface": "raid", "step": "create_configuration", "priority": 10, "args": {}}
    refused = provision(api, uuid, "active", deploy_steps=[unknown])
    assert refused.status_code == 400
    assert fault(refused) == ('Validation of deploy steps from "deploy steps" argument failed.'
                              f"node does not support this deploy step: {unknown}")
    missing = {**APPLY, "args": {}}
    assert "is missing these required arguments: settings (A list of BIOS settings to be " \
           "applied)" in fault(provision(api, uuid, "active", deploy_steps=[missing]))
    core = {"interface": "deploy", "step": "deploy", "priority": 90, "args": {}}
    assert "is a core step and cannot be overridden" in fault(
        provision(api, uuid, "active", deploy_steps=[core]))
    shape = provision(api, uuid, "active", deploy_steps=[{"interface": "bios", "step": "x"}])
    assert fault(shape) == "Invalid deploy_steps: 'args' is a required property"
    wrong_interface = provision(api, uuid, "active", deploy_steps=[{**APPLY, "interface": "boot"}])
    assert fault(wrong_interface).startswith("Invalid deploy_steps: 'boot' is not one of")
    assert fault(provision(api, uuid, "manage", deploy_steps=[APPLY])) == (
        '"deploy_steps" is only valid when setting target provision state to active or rebuild')
    node = node_of(api, uuid)
    assert node["provision_state"] == "available" and node["last_error"] is None
    assert "fake_deploys" not in node["driver_internal_info"]


def test_a_failing_step_fails_the_deploy_naming_it(api: httpx.Client) -> None:
    uuid = available_node(api)
    broken = {**APPLY, "args": {"settings": "ProcVirtualization=Disabled"}}
    assert provision(api, uuid, "active", deploy_steps=[broken]).status_code == 202
    failed = settled(api, uuid, "deploy failed")
    assert failed["last_error"] == (
        f"Deploy failed for node {uuid}: deploy step bios.apply_configuration failed: "
        'bios.apply_configuration needs "settings": a non-empty list of {"name": ..., '
        '"value": ...}.')
    assert "fake_deploys" not in failed["driver_internal_info"]  # deploy.deploy never ran


def test_a_failing_core_step_keeps_the_deploy_interface_s_message(api: httpx.Client) -> None:
    """The core step's failure is the reason teachers read on the room page: not renamed."""
    uuid = available_node(api, driver_info={"fake_deploy_error": "the disk does not answer"})
    assert provision(api, uuid, "active", deploy_steps=[APPLY]).status_code == 202
    failed = settled(api, uuid, "deploy failed")
    assert failed["last_error"] == (
        f"Deploy failed for node {uuid}: the disk does not answer")


def test_disabling_the_core_step_skips_it(api: httpx.Client) -> None:
    uuid = available_node(api)
    off = {"interface": "deploy", "step": "deploy", "priority": 0, "args": {}}
    assert provision(api, uuid, "active", deploy_steps=[off, APPLY]).status_code == 202
    active = settled(api, uuid, "active")
    assert "fake_deploys" not in active["driver_internal_info"]
    assert active["driver_internal_info"]["fake_bios"]["ProcVirtualization"] == "Disabled"


def test_manual_cleaning_runs_conductor_steps_without_the_ramdisk(api: httpx.Client) -> None:
    uuid = available_node(api, raid_interface="no-raid")
    provision(api, uuid, "manage")
    settled(api, uuid, "manageable")
    apply = {"interface": "bios", "step": "apply_configuration",
             "args": {"settings": [{"name": "HyperThreading", "value": "Disabled"}]}}
    assert provision(api, uuid, "clean", clean_steps=[apply], disable_ramdisk=True
                     ).status_code == 202
    cleaned = settled(api, uuid, "manageable")
    assert cleaned["last_error"] is None and cleaned["clean_step"] == {}
    assert cleaned["driver_internal_info"]["fake_bios"]["HyperThreading"] == "Disabled"
    assert "Clean step bios.apply_configuration done." in history(api, uuid)
    unknown = {"interface": "raid", "step": "create_configuration"}
    provision(api, uuid, "clean", clean_steps=[unknown])
    failed = settled(api, uuid, "clean failed")
    assert "node does not support this clean step: {'interface': 'raid', 'step': " \
           "'create_configuration', 'priority': 0}" in failed["last_error"]
    assert "bios.apply_configuration" in failed["last_error"]  # what it does offer


def test_equal_priorities_run_in_ironics_interface_order() -> None:
    steps = [{"interface": i, "step": "s", "priority": p, "args": {}}
             for i, p in (("raid", 50), ("bios", 50), ("deploy", 50), ("management", 50),
                          ("bios", 60), ("deploy", 10))]
    assert [(s["interface"], s["priority"]) for s in sorted_steps(steps)] == [
        ("bios", 60), ("management", 50), ("deploy", 50), ("bios", 50), ("raid", 50),
        ("deploy", 10)]
