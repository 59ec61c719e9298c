"""Hold steps and ``unhold`` (API 1.85), servicing (1.87), ``firmware_interface`` (1.86): the
state machine's transitions, then on fake hardware through a served API with an in-process
conductor: a deploy, a cleaning and a servicing parked by a hold step and carried on by
unhold, a servicing aborted in its hold, and each version's gate."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.common import states
from services.common.states import ProvisionState as S
from tests.support.api_stack import ServedApi, fault, served_sqlite_api
from tests.support.polling import eventually

HOLD = {"interface": "deploy", "step": "hold"}
APPLY = {"interface": "bios", "step": "apply_configuration"}


@pytest.mark.parametrize(("state", "event", "expected"), [
    (S.DEPLOYING, "hold", S.DEPLOYHOLD), (S.DEPLOYWAIT, "hold", S.DEPLOYHOLD),
    (S.DEPLOYHOLD, "unhold", S.DEPLOYWAIT), (S.DEPLOYHOLD, "abort", S.DEPLOYFAIL),
    (S.CLEANING, "hold", S.CLEANHOLD), (S.CLEANHOLD, "unhold", S.CLEANWAIT),
    (S.CLEANHOLD, "abort", S.CLEANFAIL), (S.ACTIVE, "service", S.SERVICING),
    (S.SERVICING, "hold", S.SERVICEHOLD), (S.SERVICEHOLD, "unhold", S.SERVICEWAIT),
    (S.SERVICEWAIT, "resume", S.SERVICING), (S.SERVICING, "done", S.ACTIVE),
    (S.SERVICING, "fail", S.SERVICEFAIL), (S.SERVICEHOLD, "abort", S.SERVICEFAIL),
    (S.SERVICEFAIL, "abort", S.ACTIVE), (S.SERVICEFAIL, "service", S.SERVICING),
])
def test_hold_and_service_transitions_are_ironics(state: S, event: str, expected: S) -> None:
    assert states.next_state(state, None, event)[0] == expected


def test_targets_of_holds_and_servicing() -> None:
    assert states.next_state(S.CLEANING, S.MANAGEABLE, "hold") == (S.CLEANHOLD, S.MANAGEABLE)
    assert states.next_state(S.ACTIVE, None, "service") == (S.SERVICING, S.ACTIVE)
    assert states.next_state(S.SERVICEFAIL, S.ACTIVE, "abort") == (S.ACTIVE, None)
    for refused in ((S.AVAILABLE, "unhold"), (S.MANAGEABLE, "service"),
                    (S.DEPLOYWAIT, "unhold"), (S.AVAILABLE, "service")):
        assert not states.allows(*refused)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApi]:
    with served_sqlite_api(tmp_path_factory.mktemp("hold")) as stack:
        yield stack


@pytest.fixture(scope="module")
def api(served: ServedApi) -> httpx.Client:
    return served.client


def node(api: httpx.Client, uuid: str) -> dict[str, Any]:
    document: dict[str, Any] = api.get(f"/v1/nodes/{uuid}").json()
    return document


def reaches(api: httpx.Client, uuid: str, state: str) -> dict[str, Any]:
    return eventually(lambda: (n := node(api, uuid))["provision_state"] == state and n, 15,
                      f"provision state {state!r} ({node(api, uuid)['provision_state']!r})")


def provision(api: httpx.Client, uuid: str, body: dict[str, Any],
              version: str = "latest") -> httpx.Response:
    return api.put(f"/v1/nodes/{uuid}/states/provision", json=body,
                   headers={"X-OpenStack-Ironic-API-Version": version})


def new_node(api: httpx.Client, state: str) -> str:
    response = api.post("/v1/nodes", json={"driver": "fake-hardware", "bios_interface": "fake",
                                           "deploy_interface": "fake"})
    assert response.status_code == 201, response.text
    uuid: str = response.json()["uuid"]
    for target, reached in (("manage", "manageable"), ("provide", "available"),
                            ("active", "active")):
        assert provision(api, uuid, {"target": target}).status_code == 202
        reaches(api, uuid, reached)
        if reached == state:
            break
    return uuid


def bios_value(api: httpx.Client, uuid: str, name: str) -> str:
    listed = api.get(f"/v1/nodes/{uuid}/bios").json()["bios"]
    return str({s["name"]: s["value"] for s in listed}[name])


def test_a_deploy_holds_at_its_hold_step_until_unhold(api: httpx.Client) -> None:
    uuid = new_node(api, "available")
    assert provision(api, uuid, {"target": "active", "deploy_steps": [
        {**HOLD, "priority": 50, "args": {}}]}).status_code == 202
    held = reaches(api, uuid, "deploy hold")
    assert held["target_provision_state"] == "active"
    assert held["deploy_step"]["step"] == "hold"
    assert provision(api, uuid, {"target": "unhold"}).status_code == 202
    done = reaches(api, uuid, "active")
    assert done["deploy_step"] == {} and done["last_error"] is None


def test_a_manual_cleaning_holds_between_its_steps(api: httpx.Client) -> None:
    uuid = new_node(api, "manageable")
    steps = [HOLD, {**APPLY, "args": {"settings": [{"name": "HyperThreading",
                                                   "value": "Disabled"}]}}]
    assert provision(api, uuid, {"target": "clean", "clean_steps": steps}).status_code == 202
    held = reaches(api, uuid, "clean hold")
    assert held["target_provision_state"] == "manageable"
    assert bios_value(api, uuid, "HyperThreading") == "Enabled"  # the step after the hold
    assert provision(api, uuid, {"target": "unhold"}).status_code == 202
    reaches(api, uuid, "manageable")
    assert bios_value(api, uuid, "HyperThreading") == "Disabled"


def test_a_servicing_with_a_hold_step_then_unhold(api: httpx.Client) -> None:
    uuid = new_node(api, "active")
    steps = [{**APPLY, "args": {"settings": [{"name": "ProcVirtualization",
                                              "value": "Disabled"}]}},
             HOLD,
             {**APPLY, "args": {"settings": [{"name": "HyperThreading", "value": "Disabled"}]}}]
    assert provision(api, uuid, {"target": "service", "service_steps": steps}).status_code == 202
    held = reaches(api, uuid, "service hold")
    assert held["target_provision_state"] == "active"
    assert held["service_step"]["step"] == "hold"
    assert bios_value(api, uuid, "ProcVirtualization") == "Disabled"
    assert bios_value(api, uuid, "HyperThreading") == "Enabled"
    assert provision(api, uuid, {"target": "unhold"}).status_code == 202
    done = reaches(api, uuid, "active")
    assert done["service_step"] == {} and done["target_provision_state"] is None
    assert bios_value(api, uuid, "HyperThreading") == "Disabled"
    events = [e["event"] for e in api.get(f"/v1/nodes/{uuid}/history").json()["history"]]
    assert any("Held by step deploy.hold" in e for e in events), events


def test_an_abort_in_service_hold_ends_in_active_with_ironics_error(api: httpx.Client) -> None:
    uuid = new_node(api, "active")
    assert provision(api, uuid, {"target": "service",
                                 "service_steps": [HOLD]}).status_code == 202
    reaches(api, uuid, "service hold")
    assert provision(api, uuid, {"target": "abort"}).status_code == 202
    done = reaches(api, uuid, "active")
    assert done["last_error"] == ("By request, the service operation was aborted during or "
                                  'after the completion of step "hold"')


def test_a_failing_service_step_is_service_failed(api: httpx.Client) -> None:
    uuid = new_node(api, "active")
    steps = [{**APPLY, "args": {"settings": [{"name": "NoSuchSetting", "value": "x"}]}}]
    assert provision(api, uuid, {"target": "service", "service_steps": steps}).status_code == 202
    failed = reaches(api, uuid, "service failed")
    assert "NoSuchSetting" in failed["last_error"]
    assert provision(api, uuid, {"target": "abort"}).status_code == 202
    reaches(api, uuid, "active")


def test_service_refuses_what_it_cannot_run(api: httpx.Client) -> None:
    uuid = new_node(api, "active")
    no_steps = provision(api, uuid, {"target": "service"})
    assert '"service_steps" is required' in fault(no_steps)
    unknown = provision(api, uuid, {"target": "service", "service_steps": [
        {"interface": "bios", "step": "no_such_step"}]})
    assert "does not support this service step" in fault(unknown)
    elsewhere = provision(api, uuid, {"target": "rebuild", "service_steps": [HOLD]})
    assert '"service_steps" is only valid' in fault(elsewhere)
    assert node(api, uuid)["provision_state"] == "active"


@pytest.mark.parametrize(("target", "since"), [("unhold", "1.85"), ("service", "1.87")])
def test_verbs_below_their_version_are_not_acceptable(api: httpx.Client, target: str,
                                                      since: str) -> None:
    uuid = new_node(api, "active")
    below = f"1.{int(since.split('.')[1]) - 1}"
    body = {"target": target, "service_steps": [HOLD]} if target == "service" else {
        "target": target}
    assert provision(api, uuid, body, below).status_code == 406
    assert provision(api, uuid, {"target": "unhold"}, since).status_code == 400  # not held


def test_firmware_interface_and_service_step_appear_at_their_versions(api: httpx.Client
                                                                      ) -> None:
    uuid = new_node(api, "manageable")

    def shown(version: str) -> dict[str, Any]:
        document: dict[str, Any] = api.get(f"/v1/nodes/{uuid}", headers={
            "X-OpenStack-Ironic-API-Version": version}).json()
        return document

    assert "firmware_interface" not in shown("1.85")
    assert shown("1.86")["firmware_interface"] == "no-firmware"
    assert "service_step" not in shown("1.86") and shown("1.87")["service_step"] == {}
    patch = [{"op": "replace", "path": "/firmware_interface", "value": "fake"}]
    old = api.patch(f"/v1/nodes/{uuid}", json=patch,
                    headers={"X-OpenStack-Ironic-API-Version": "1.85"})
    assert old.status_code == 406, old.text
    new = api.patch(f"/v1/nodes/{uuid}", json=patch,
                    headers={"X-OpenStack-Ironic-API-Version": "1.86"})
    assert new.status_code == 200 and new.json()["firmware_interface"] == "fake", new.text
    unknown = api.patch(f"/v1/nodes/{uuid}", json=[{**patch[0], "value": "no-such"}],
                        headers={"X-OpenStack-Ironic-API-Version": "1.86"})
    assert unknown.status_code == 400, unknown.text
    driver = api.get("/v1/drivers/fake-hardware", headers={
        "X-OpenStack-Ironic-API-Version": "1.86"}).json()
    assert driver["default_firmware_interface"] == "no-firmware"
    assert "fake" in driver["enabled_firmware_interfaces"]
    assert "default_firmware_interface" not in api.get("/v1/drivers/fake-hardware", headers={
        "X-OpenStack-Ironic-API-Version": "1.85"}).json()
