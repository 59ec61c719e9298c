"""BIOS settings (API 1.40, registry fields of 1.74): the fake bios interface through a served
API with an in-process conductor — the cache after verification and cleaning, the clean steps,
a refused setting failing the cleaning with the machine's reason, and the API's answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from services.common.models import Node
from services.drivers.bios import FAKE_DEFAULTS, FakeBios, NoBios
from services.drivers.contract_check import ContractError
from services.drivers.node_driver import check_implementation
from tests.support.api_stack import ServedApi, served_sqlite_api
from tests.support.api_stack import faultstring as fault
from tests.support.polling import eventually


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApi]:
    with served_sqlite_api(tmp_path_factory.mktemp("bios")) as stack:
        yield stack


@pytest.fixture(scope="module")
def api(served: ServedApi) -> httpx.Client:
    return served.client


def node(api: httpx.Client, uuid: str) -> dict[str, Any]:
    document: dict[str, Any] = api.get(f"/v1/nodes/{uuid}").json()
    return document


def settled(api: httpx.Client, uuid: str) -> dict[str, Any]:
    return eventually(lambda: (n := node(api, uuid))["provision_state"] in (
        "manageable", "clean failed") and n, 10, "the operation's end")


def manageable(api: httpx.Client, bios: str = "fake") -> str:
    response = api.post("/v1/nodes", json={"driver": "fake-hardware", "bios_interface": bios})
    assert response.status_code == 201, response.text
    uuid: str = response.json()["uuid"]
    assert api.put(f"/v1/nodes/{uuid}/states/provision",
                   json={"target": "manage"}).status_code == 202
    assert settled(api, uuid)["provision_state"] == "manageable"
    return uuid


def clean(api: httpx.Client, uuid: str, *steps: dict[str, Any]) -> httpx.Response:
    return api.put(f"/v1/nodes/{uuid}/states/provision",
                   json={"target": "clean", "clean_steps": list(steps)})


def values(api: httpx.Client, uuid: str) -> dict[str, str]:
    return {s["name"]: s["value"] for s in api.get(f"/v1/nodes/{uuid}/bios").json()["bios"]}


APPLY = {"interface": "bios", "step": "apply_configuration"}


def test_verification_caches_the_settings_with_their_registry(api: httpx.Client) -> None:
    uuid = manageable(api)
    listed = api.get(f"/v1/nodes/{uuid}/bios").json()["bios"]
    assert {s["name"]: s["value"] for s in listed} == {
        name: value for name, (value, _registry) in FAKE_DEFAULTS.items()}
    assert set(listed[0]) == {"name", "value", "created_at", "updated_at", "links"}
    assert listed[0]["links"][0]["href"].endswith(f"/v1/nodes/{uuid}/bios/{listed[0]['name']}")

    detailed = api.get(f"/v1/nodes/{uuid}/bios", params={"detail": "True"}).json()["bios"]
    boot_mode = next(s for s in detailed if s["name"] == "BootMode")
    assert boot_mode["attribute_type"] == "Enumeration"
    assert boot_mode["allowable_values"] == ["Bios", "Uefi"]
    assert boot_mode["read_only"] is False and boot_mode["upper_bound"] is None

    one = api.get(f"/v1/nodes/{uuid}/bios/SerialNumber").json()
    assert list(one) == ["SerialNumber"]
    assert one["SerialNumber"]["read_only"] is True and one["SerialNumber"]["max_length"] == 16

    picked = api.get(f"/v1/nodes/{uuid}/bios", params={"fields": "name,read_only"}).json()
    assert set(picked["bios"][0]) == {"name", "read_only", "created_at", "updated_at", "links"}


def test_bad_requests_answer_as_ironic(api: httpx.Client) -> None:
    uuid = manageable(api)
    missing = api.get(f"/v1/nodes/{uuid}/bios/NoSuchSetting")
    assert missing.status_code == 404
    assert fault(missing) == f"Node {uuid} doesn't have a BIOS setting 'NoSuchSetting'"
    old = api.get(f"/v1/nodes/{uuid}/bios", headers={"X-OpenStack-Ironic-API-Version": "1.39"})
    assert old.status_code == 404
    both = api.get(f"/v1/nodes/{uuid}/bios", params={"detail": "True", "fields": "name"})
    assert both.status_code == 400
    assert api.get(f"/v1/nodes/{uuid}/bios", params={"fields": "colour"}).status_code == 400
    assert api.get("/v1/nodes/no-such-node/bios").status_code == 404


def test_apply_configuration_changes_the_machine_and_the_cache(api: httpx.Client) -> None:
    uuid = manageable(api)
    response = clean(api, uuid, {**APPLY, "args": {"settings": [
        {"name": "ProcVirtualization", "value": "Disabled"},
        {"name": "BootMode", "value": "Bios"}]}})
    assert response.status_code == 202, response.text
    done = settled(api, uuid)
    assert done["provision_state"] == "manageable" and done["last_error"] is None
    assert done["clean_step"] == {}
    assert values(api, uuid)["ProcVirtualization"] == "Disabled"
    assert values(api, uuid)["BootMode"] == "Bios"

    assert clean(api, uuid, {"interface": "bios", "step": "factory_reset"}).status_code == 202
    assert settled(api, uuid)["provision_state"] == "manageable"
    assert values(api, uuid)["ProcVirtualization"] == "Enabled"


def test_a_refused_setting_fails_cleaning_with_the_reason(api: httpx.Client) -> None:
    uuid = manageable(api)
    before = values(api, uuid)
    response = clean(api, uuid, {**APPLY, "args": {"settings": [
        {"name": "HyperThreading", "value": "Disabled"},
        {"name": "SerialNumber", "value": "MINE"}]}})
    assert response.status_code == 202
    failed = settled(api, uuid)
    assert failed["provision_state"] == "clean failed"
    assert failed["last_error"] == (
        f"Cleaning failed for node {uuid}: clean step bios.apply_configuration failed: "
        "fake BIOS refused SerialNumber: the attribute is read-only")
    assert values(api, uuid) == before  # nothing applied


def test_steps_the_node_cannot_run_are_refused_before_cleaning(api: httpx.Client) -> None:
    uuid = manageable(api)
    unknown = clean(api, uuid, {"interface": "bios", "step": "flash"})
    assert unknown.status_code == 400
    assert "bios.apply_configuration, bios.factory_reset" in fault(unknown)
    no_args = clean(api, uuid, APPLY)
    assert no_args.status_code == 400 and "settings" in fault(no_args)
    mixed = clean(api, uuid, {"interface": "deploy", "step": "erase_devices_metadata"},
                  {"interface": "bios", "step": "factory_reset"})
    assert mixed.status_code == 400 and "cannot be mixed" in fault(mixed)
    assert node(api, uuid)["provision_state"] == "manageable"

    without = manageable(api, bios="no-bios")
    assert api.get(f"/v1/nodes/{without}/bios").json() == {"bios": []}
    refused = clean(api, without, {"interface": "bios", "step": "factory_reset"})
    assert refused.status_code == 400 and "no-bios" in fault(refused)


def test_the_bios_implementations_fill_the_bios_contract() -> None:
    assert check_implementation("bios", FakeBios()) and check_implementation("bios", NoBios())
    with pytest.raises(ContractError):
        check_implementation("bios", object())


def test_fake_firmware_is_cached_updated_and_refuses_unknown_components(
        served: ServedApi, api: httpx.Client) -> None:
    uuid = api.post("/v1/nodes", json={"driver": "fake-hardware"}).json()["uuid"]
    # firmware_interface is an API 1.86 field (not served yet): chosen in the database.
    with served.app.state.db.session() as session:
        session.execute(update(Node).where(Node.uuid == uuid).values(firmware_interface="fake"))
        session.commit()
    assert api.put(f"/v1/nodes/{uuid}/states/provision",
                   json={"target": "manage"}).status_code == 202
    settled(api, uuid)
    listed = api.get(f"/v1/nodes/{uuid}/firmware").json()["firmware"]
    assert [(c["component"], c["current_version"]) for c in listed] == [
        ("bios", "1.0.0"), ("bmc", "1.0.0")]
    assert set(listed[0]) == {"component", "initial_version", "current_version",
                              "last_version_flashed", "created_at", "updated_at",
                              "vendor", "model", "serial_number"}  # the last three: 1.114

    step = {"interface": "firmware", "step": "update",
            "args": {"settings": [{"component": "bmc", "url": "http://x.invalid/bmc.bin"}]}}
    assert clean(api, uuid, step).status_code == 202
    assert settled(api, uuid)["provision_state"] == "manageable"
    bmc = api.get(f"/v1/nodes/{uuid}/firmware").json()["firmware"][1]
    assert (bmc["initial_version"], bmc["current_version"], bmc["last_version_flashed"]) == (
        "1.0.0", "1.1.0", "1.1.0")

    unknown = {**step, "args": {"settings": [{"component": "nic", "url": "http://x/y"}]}}
    assert clean(api, uuid, unknown).status_code == 202
    failed = settled(api, uuid)
    assert failed["provision_state"] == "clean failed"
    assert "Unknown firmware component 'nic'" in failed["last_error"]
    old = api.get(f"/v1/nodes/{uuid}/firmware",
                  headers={"X-OpenStack-Ironic-API-Version": "1.72"})
    assert old.status_code == 404
