"""The ``redfish`` bios interface against sushy-emulator (its fake driver given BIOS settings,
tests/support/sushy_emulator_bios.py), through a served API with an in-process conductor:
settings and their attribute registry cached at verification, changed and reset by clean
steps as the emulator then reports them, a setting the BMC refuses failing the cleaning with
the BMC's reason, and a BMC without BIOS settings leaving a warning rather than a failure."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.api_stack import served_redfish_api
from tests.support.peers_fixtures import REDFISH_USERNAME, RedfishPeers
from tests.support.polling import eventually
from tests.support.redfish_emulator import RedfishEmulator, fake_systems

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with served_redfish_api(tmp_path_factory.mktemp("redfish-bios")) as client:
        yield client


@pytest.fixture(scope="module")
def bios_peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedfishPeers]:
    """One sushy-emulator with BIOS settings for the module: a system per test."""
    password = "bios-51c9"
    with RedfishEmulator(tmp_path_factory.mktemp("bios-bmc"), fake_systems(2),
                         {REDFISH_USERNAME: password}, bios=True) as emulator:
        yield RedfishPeers(emulator=emulator, username=REDFISH_USERNAME, password=password)


def node(api: httpx.Client, uuid: str) -> dict[str, Any]:
    document: dict[str, Any] = api.get(f"/v1/nodes/{uuid}").json()
    return document


def settled(api: httpx.Client, uuid: str) -> dict[str, Any]:
    return eventually(lambda: (n := node(api, uuid))["provision_state"] in (
        "manageable", "clean failed", "enroll") and n, 20, "the operation's end")


def manageable(api: httpx.Client, peers: RedfishPeers, index: int = 0) -> str:
    system = peers.emulator.system_ids[index]
    response = api.post("/v1/nodes", json={"driver": "redfish",
                                           "driver_info": peers.driver_info(system)})
    assert response.status_code == 201, response.text
    uuid: str = response.json()["uuid"]
    assert response.json()["bios_interface"] == "redfish"  # the hardware type's default
    assert api.put(f"/v1/nodes/{uuid}/states/provision",
                   json={"target": "manage"}).status_code == 202
    assert settled(api, uuid)["provision_state"] == "manageable"
    return uuid


def clean(api: httpx.Client, uuid: str, step: dict[str, Any]) -> dict[str, Any]:
    response = api.put(f"/v1/nodes/{uuid}/states/provision",
                       json={"target": "clean", "clean_steps": [step]})
    assert response.status_code == 202, response.text
    return settled(api, uuid)


def cached(api: httpx.Client, uuid: str) -> dict[str, str]:
    return {s["name"]: s["value"] for s in api.get(f"/v1/nodes/{uuid}/bios").json()["bios"]}


def bmc_attributes(peers: RedfishPeers, index: int = 0) -> dict[str, Any]:
    emulator = peers.emulator
    with httpx.Client(auth=(peers.username, peers.password)) as bmc:
        path = emulator.system_path(emulator.system_ids[index])
        attributes: dict[str, Any] = bmc.get(f"{emulator.address}{path}/BIOS").json()[
            "Attributes"]
        return attributes


def apply(*settings: tuple[str, str]) -> dict[str, Any]:
    return {"interface": "bios", "step": "apply_configuration",
            "args": {"settings": [{"name": name, "value": value} for name, value in settings]}}


def test_settings_cached_applied_refused_and_reset(
        api: httpx.Client, bios_peers: RedfishPeers) -> None:
    peers = bios_peers
    uuid = manageable(api, peers)
    defaults = {name: str(value) for name, value in bmc_attributes(peers).items()}
    assert cached(api, uuid) == defaults

    num_cores = api.get(f"/v1/nodes/{uuid}/bios/NumCores").json()["NumCores"]
    assert num_cores["value"] == "10" and num_cores["read_only"] is True
    assert num_cores["attribute_type"] == "Integer"
    turbo = api.get(f"/v1/nodes/{uuid}/bios/ProcTurboMode").json()["ProcTurboMode"]
    assert turbo["allowable_values"] == ["Enabled", "Disabled"]

    done = clean(api, uuid, apply(("ProcTurboMode", "Disabled"), ("EmbeddedSata", "Ahci")))
    assert done["provision_state"] == "manageable", done["last_error"]
    assert bmc_attributes(peers)["ProcTurboMode"] == "Disabled"
    assert cached(api, uuid) == {**defaults, "ProcTurboMode": "Disabled", "EmbeddedSata": "Ahci"}

    failed = clean(api, uuid, apply(("QuietBoot", "false"), ("NumCores", "4")))
    assert failed["provision_state"] == "clean failed"
    assert failed["last_error"].startswith(
        f"Cleaning failed for node {uuid}: clean step bios.apply_configuration failed: ")
    assert ("The property NumCores is a read only property and cannot be assigned a value."
            in failed["last_error"])
    assert peers.password not in json.dumps(failed)
    assert bmc_attributes(peers)["QuietBoot"] == "true"  # the BMC applied nothing

    assert api.put(f"/v1/nodes/{uuid}/states/provision",
                   json={"target": "manage"}).status_code == 202
    assert settled(api, uuid)["provision_state"] == "manageable"
    assert clean(api, uuid, {"interface": "bios", "step": "factory_reset"})[
        "provision_state"] == "manageable"
    assert cached(api, uuid) == defaults


def test_a_bmc_without_bios_settings_is_verified_with_a_warning(
        api: httpx.Client, make_redfish_emulator: Callable[..., RedfishPeers]) -> None:
    peers = make_redfish_emulator(fake_systems(1))
    uuid = manageable(api, peers)
    assert api.get(f"/v1/nodes/{uuid}/bios").json() == {"bios": []}
    events = api.get(f"/v1/nodes/{uuid}/history", params={"detail": "true"}).json()["history"]
    warning = [e for e in events if e["severity"] == "WARNING"]
    assert len(warning) == 1 and "Reading the BIOS settings failed" in warning[0]["event"]


def firmware(api: httpx.Client, uuid: str) -> dict[str, dict[str, Any]]:
    listed = api.get(f"/v1/nodes/{uuid}/firmware").json()["firmware"]
    return {c["component"]: c for c in listed}


def update(*components: str) -> dict[str, Any]:
    return {"interface": "firmware", "step": "update", "args": {"settings": [
        {"component": c, "url": f"http://images.invalid/{c}.bin"} for c in components]}}


def test_firmware_versions_cached_updated_and_refused(
        api: httpx.Client, bios_peers: RedfishPeers) -> None:
    peers = bios_peers
    uuid = manageable(api, peers, 1)
    cached_versions = firmware(api, uuid)
    assert {c: (v["initial_version"], v["current_version"], v["last_version_flashed"])
            for c, v in cached_versions.items()} == {"bios": ("1.0.0", "1.0.0", None),
                                                     "bmc": ("1.00", "1.00", None)}

    done = clean(api, uuid, update("bios"))
    assert done["provision_state"] == "manageable", done["last_error"]
    bios = firmware(api, uuid)["bios"]
    assert (bios["initial_version"], bios["current_version"], bios["last_version_flashed"]) \
        == ("1.0.0", "1.1.0", "1.1.0")
    system = peers.emulator.system_path(peers.emulator.system_ids[1])
    with httpx.Client(auth=(peers.username, peers.password)) as bmc:
        assert bmc.get(f"{peers.emulator.address}{system}").json()["BiosVersion"] == "1.1.0"

    refused = clean(api, uuid, update("bmc"))
    assert refused["provision_state"] == "clean failed"
    assert refused["last_error"].startswith(
        f"Cleaning failed for node {uuid}: clean step firmware.update failed: ")
    assert "Manager is not currently a supported Target." in refused["last_error"]
    assert firmware(api, uuid)["bmc"]["current_version"] == "1.00"
