"""RAID as Ironic serves it, on fake hardware through a served API with an in-process
conductor: the target configuration (1.12) checked against Ironic's schema, the drivers'
logical disk properties, and the raid clean and deploy steps of the ``fake`` raid interface,
which record the node's ``raid_config``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.models import Node
from services.common.raid_config import SCHEMA, configuration_error, logical_disk_properties
from services.drivers.raid import record
from tests.support.api_stack import faultstring as fault
from tests.support.api_stack import served_api
from tests.unit.test_deploy_steps import history, node_of, provision, settled

V12 = {"X-OpenStack-Ironic-API-Version": "1.12"}
V11 = {"X-OpenStack-Ironic-API-Version": "1.11"}
MIRROR = {"logical_disks": [{"size_gb": 100, "raid_level": "1", "is_root_volume": True},
                            {"size_gb": "MAX", "raid_level": "0"}]}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    directory: Path = tmp_path_factory.mktemp("raid")
    url = f"sqlite:///{directory / 'api.sqlite'}"
    upgrade_schema(url)
    settings = Settings(process={"data_dir": directory}, conductor={"hostname": "conductor-1"})
    with served_api(settings, Database(url)) as served:
        yield served.client


def node(api: httpx.Client, **fields: Any) -> str:
    created = api.post("/v1/nodes", json={"driver": "fake-hardware", **fields})
    assert created.status_code == 201, created.text
    return str(created.json()["uuid"])


def set_target(api: httpx.Client, uuid: str, body: Any,
               headers: dict[str, str] = V12) -> httpx.Response:
    return api.put(f"/v1/nodes/{uuid}/states/raid", json=body, headers=headers)


def manageable(api: httpx.Client, **fields: Any) -> str:
    uuid = node(api, **fields)
    provision(api, uuid, "manage")
    settled(api, uuid, "manageable")
    return uuid


def test_the_schema_is_ironics_and_its_texts_are_ironics() -> None:
    assert logical_disk_properties()["raid_level"].startswith("RAID level for the logical disk")
    assert configuration_error(MIRROR) is None
    assert configuration_error({"logical_disks": [{"size_gb": 1, "raid_level": "7"}]}) == (
        "RAID config validation error: '7' is not one of ['JBOD', '0', '1', '2', '5', '6', "
        "'1+0', '5+0', '6+0']")
    assert configuration_error({"logical_disks": [
        {"size_gb": 1, "raid_level": "1", "is_root_volume": True}] * 2}) == (
        "Raid config cannot have more than one root volume. 2 root volumes were specified")
    assert configuration_error({"logical_disks": [{"size_gb": 1, "raid_level": "0",
                                                   "physical_disks": ["a"]}]}) == (
        "RAID config validation error: 'controller' is a dependency of 'physical_disks'")
    assert SCHEMA["properties"]["logical_disks"]["minItems"] == 1


def test_logical_disk_properties_from_1_12(api: httpx.Client) -> None:
    path = "/v1/drivers/fake-hardware/raid/logical_disk_properties"
    found = api.get(path, headers=V12)
    assert found.status_code == 200 and found.json() == logical_disk_properties()
    assert sorted(found.json()) == ["controller", "disk_type", "interface_type",
                                    "is_root_volume", "number_of_physical_disks",
                                    "physical_disks", "raid_level", "share_physical_disks",
                                    "size_gb", "volume_name"]
    assert api.get(path, headers=V11).status_code == 406
    missing = api.get("/v1/drivers/nope/raid/logical_disk_properties", headers=V12)
    assert missing.status_code == 404 and "nope" in fault(missing)


def test_target_raid_config_set_shown_and_unset(api: httpx.Client) -> None:
    uuid = node(api)
    assert node_of(api, uuid)["raid_interface"] == "fake"  # fake-hardware's default, as Ironic
    assert set_target(api, uuid, MIRROR).status_code == 204
    shown = api.get(f"/v1/nodes/{uuid}", headers=V12).json()
    assert shown["target_raid_config"] == MIRROR and shown["raid_config"] == {}
    assert "target_raid_config" not in api.get(f"/v1/nodes/{uuid}", headers=V11).json()
    states = api.get(f"/v1/nodes/{uuid}/states", headers=V12).json()
    assert states["target_raid_config"] == MIRROR
    assert set_target(api, uuid, MIRROR, V11).status_code == 406
    assert set_target(api, uuid, {}).status_code == 204
    assert node_of(api, uuid)["target_raid_config"] == {}


def test_bad_configurations_are_refused_with_ironics_texts(api: httpx.Client) -> None:
    uuid = node(api)
    refused = set_target(api, uuid, {"logical_disks": [{"size_gb": -1, "raid_level": "1"}]})
    assert refused.status_code == 400
    assert fault(refused) == "RAID config validation error: -1 is less than the minimum of 0"
    unknown = set_target(api, uuid, {"logical_disks": [{"size_gb": 1, "raid_level": "1",
                                                        "colour": "red"}]})
    assert fault(unknown) == ("RAID config validation error: Additional properties are not "
                              "allowed ('colour' was unexpected)")
    assert fault(set_target(api, uuid, ["x"])) == (
        "Expected types <class 'dict'> for target_raid_config: ['x']")
    assert node_of(api, uuid)["target_raid_config"] == {}
    without = node(api, raid_interface="no-raid")
    missing = set_target(api, without, MIRROR)
    assert missing.status_code == 404
    assert fault(missing) == ("Driver fake-hardware does not support raid (disabled or not "
                              "implemented).")


def test_fake_clean_steps_record_the_raid_config(api: httpx.Client) -> None:
    uuid = manageable(api)
    create = {"interface": "raid", "step": "create_configuration"}
    provision(api, uuid, "clean", clean_steps=[create])
    failed = settled(api, uuid, "clean failed")
    assert f"Node {uuid} has no target RAID configuration." in failed["last_error"]
    provision(api, uuid, "manage")
    settled(api, uuid, "manageable")
    assert set_target(api, uuid, MIRROR).status_code == 204
    provision(api, uuid, "clean", clean_steps=[
        {**create, "args": {"create_nonroot_volumes": False}}])
    cleaned = settled(api, uuid, "manageable")
    assert cleaned["last_error"] is None
    assert cleaned["raid_config"]["logical_disks"] == MIRROR["logical_disks"][:1]
    assert cleaned["raid_config"]["last_updated"]
    assert cleaned["properties"]["local_gb"] == 100
    assert "raid_level:1" in cleaned["properties"]["capabilities"]
    assert "Clean step raid.create_configuration done." in history(api, uuid)
    provision(api, uuid, "clean", clean_steps=[{"interface": "raid",
                                               "step": "delete_configuration"}])
    assert settled(api, uuid, "manageable")["raid_config"]["logical_disks"] == []


def test_apply_configuration_is_a_deploy_step(api: httpx.Client) -> None:
    uuid = manageable(api)
    provision(api, uuid, "provide")
    settled(api, uuid, "available")
    apply = {"interface": "raid", "step": "apply_configuration", "priority": 150,
             "args": {"raid_config": MIRROR, "create_nonroot_volumes": True}}
    assert provision(api, uuid, "active", deploy_steps=[apply]).status_code == 202
    active = settled(api, uuid, "active")
    assert active["target_raid_config"] == MIRROR
    assert active["raid_config"]["logical_disks"] == MIRROR["logical_disks"]
    assert "Deploy step raid.apply_configuration done." in history(api, uuid)



def test_record_keeps_the_other_capabilities_and_a_max_root_leaves_local_gb() -> None:
    node = Node(properties={"capabilities": "boot_mode:uefi,raid_level:0", "local_gb": 40})
    root = {"size_gb": "MAX", "raid_level": "1+0", "is_root_volume": True,
            "root_device_hint": {"name": "/dev/sda"}}
    record(SimpleNamespace(node=node), [root])  # type: ignore[arg-type]
    assert node.raid_config["logical_disks"] == [root]
    assert node.properties == {"capabilities": "boot_mode:uefi,raid_level:1+0", "local_gb": 40,
                               "root_device": {"name": "/dev/sda"}}
