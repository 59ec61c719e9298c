"""The ``redfish`` raid interface against sushy-emulator (its fake driver given volumes,
tests/support/sushy_emulator_raid.py), through a served API with an in-process conductor: a
target RAID configuration made into volumes by a clean step and recorded as the BMC lists them,
a RAID type or a size the BMC refuses failing the cleaning with the BMC's reason, and the
volumes deleted again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.test_redfish_bios import clean, manageable, settled
from tests.support.api_stack import served_redfish_api
from tests.support.peers_fixtures import REDFISH_USERNAME, RedfishPeers
from tests.support.redfish_emulator import RedfishEmulator, fake_systems

pytestmark = [pytest.mark.integration]

CREATE = {"interface": "raid", "step": "create_configuration"}
ROOT_MIRROR = {"size_gb": 50, "raid_level": "1", "is_root_volume": True,
               "volume_name": "root"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with served_redfish_api(tmp_path_factory.mktemp("redfish-raid")) as client:
        yield client


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedfishPeers]:
    password = "raid-7d2e"
    with RedfishEmulator(tmp_path_factory.mktemp("raid-bmc"), fake_systems(1),
                         {REDFISH_USERNAME: password}, raid=True) as emulator:
        yield RedfishPeers(emulator=emulator, username=REDFISH_USERNAME, password=password)


def bmc_volumes(peers: RedfishPeers) -> list[dict[str, Any]]:
    emulator = peers.emulator
    path = f"{emulator.system_path(emulator.system_ids[0])}/Storage/1/Volumes"
    with httpx.Client(base_url=emulator.address, auth=(peers.username, peers.password)) as bmc:
        return [bmc.get(member["@odata.id"]).json()
                for member in bmc.get(path).json()["Members"]]


def set_target(api: httpx.Client, uuid: str, *disks: dict[str, Any]) -> httpx.Response:
    return api.put(f"/v1/nodes/{uuid}/states/raid", json={"logical_disks": list(disks)})


def again_manageable(api: httpx.Client, uuid: str) -> None:
    assert api.put(f"/v1/nodes/{uuid}/states/provision",
                   json={"target": "manage"}).status_code == 202
    assert settled(api, uuid)["provision_state"] == "manageable"


def test_volumes_created_refused_and_deleted(api: httpx.Client, peers: RedfishPeers) -> None:
    uuid = manageable(api, peers)
    assert api.get(f"/v1/nodes/{uuid}").json()["raid_interface"] == "redfish"
    scsi = set_target(api, uuid, {**ROOT_MIRROR, "interface_type": "scsi"})
    assert scsi.status_code == 400 and "interface type `scsi` not supported by Redfish RAID" \
        in scsi.text
    assert set_target(api, uuid, ROOT_MIRROR, {"size_gb": "MAX", "raid_level": "0"}
                      ).status_code == 204

    done = clean(api, uuid, CREATE)
    assert done["provision_state"] == "manageable", done["last_error"]
    volumes = bmc_volumes(peers)
    assert sorted((v["RAIDType"], v["CapacityBytes"], len(v["Links"]["Drives"]))
                  for v in volumes) == [("RAID0", 100 * 1024 ** 3, 1),
                                        ("RAID1", 50 * 1024 ** 3, 2)]
    recorded = done["raid_config"]["logical_disks"]
    assert sorted((d["raid_level"], d["size_gb"], d["controller"]) for d in recorded) == [
        ("0", 100, "1"), ("1", 50, "1")]
    assert "root" in {d["name"] for d in recorded}

    # RAID 5 and a mirror larger than its drives: the BMC refuses, the cleaning fails with
    # its reason, and nothing more is made.
    for disk, reason in (({"size_gb": 10, "raid_level": "5"},
                          "The value RAID5 for the property RAIDType is not in the list of "
                          "acceptable values"),
                         ({"size_gb": 500, "raid_level": "1"},
                          "The value 536870912000 for the property CapacityBytes is not in the "
                          "range of acceptable values")):
        assert set_target(api, uuid, disk).status_code == 204
        failed = clean(api, uuid, CREATE)
        assert failed["provision_state"] == "clean failed"
        assert failed["last_error"].startswith(
            f"Cleaning failed for node {uuid}: clean step raid.create_configuration failed: ")
        assert reason in failed["last_error"]
        assert peers.password not in json.dumps(failed)
        assert len(bmc_volumes(peers)) == 2
        again_manageable(api, uuid)

    deleted = clean(api, uuid, {"interface": "raid", "step": "delete_configuration"})
    assert deleted["provision_state"] == "manageable", deleted["last_error"]
    assert deleted["raid_config"]["logical_disks"] == [] and bmc_volumes(peers) == []
