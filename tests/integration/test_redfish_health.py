"""Against sushy-emulator, served at a raised maximum version: a node's ``health`` (API 1.109)
read from the system's ``Status.Health`` by the power sync's health read, recorded once when it
changes (Ironic's text), left alone by an interface that cannot tell (fake hardware); the
firmware components' identity (1.114): the BMC's model is its manager's."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from services.common.models import Node
from services.conductor.component_caches import refresh_firmware
from services.conductor.periodic import read_health
from tests.support.api_stack import ServedApi, at, served_at_maximum
from tests.support.peers_fixtures import RedfishPeers

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApi]:
    with served_at_maximum(tmp_path_factory.mktemp("health"), (1, 115)) as stack:
        yield stack


def node_id(served: ServedApi, uuid: str) -> int:
    with served.manager.db.session() as session:
        return int(session.scalar(select(Node.id).where(Node.uuid == uuid)) or 0)


def test_health_comes_from_the_bmc(served: ServedApi, redfish_emulator: RedfishPeers) -> None:
    api: httpx.Client = served.client
    peers = redfish_emulator
    system = peers.emulator.system_ids[0]
    redfish = api.post("/v1/nodes", json={"driver": "redfish",
                                          "driver_info": peers.driver_info(system)}).json()
    fake = api.post("/v1/nodes", json={"driver": "fake-hardware"}).json()
    assert redfish["health"] is None
    for _ in range(2):  # a second read of the same health records nothing new
        for uuid in (redfish["uuid"], fake["uuid"]):
            with served.manager.task(node_id(served, uuid)) as task:
                read_health(task)
                task.commit()
    shown = api.get(f"/v1/nodes/{redfish['uuid']}").json()
    assert shown["health"] == "OK"
    assert "health" not in api.get(f"/v1/nodes/{redfish['uuid']}", headers=at("1.108")).json()
    assert api.get(f"/v1/nodes/{fake['uuid']}").json()["health"] is None
    events = [e["event"] for e in api.get(f"/v1/nodes/{redfish['uuid']}/history").json()[
        "history"] if "health" in e["event"]]
    assert events == ["Node health status changed: health='OK' (previously 'None')"]


def test_firmware_components_name_their_model_from_1_114(served: ServedApi,
                                                         redfish_emulator: RedfishPeers) -> None:
    api: httpx.Client = served.client
    peers = redfish_emulator
    system = peers.emulator.system_ids[0]
    node = api.post("/v1/nodes", json={"driver": "redfish",
                                       "driver_info": peers.driver_info(system)})
    assert node.status_code == 201, node.text
    uuid = node.json()["uuid"]
    with served.manager.task(node_id(served, uuid)) as task:
        refresh_firmware(task, "verify", set())
        task.commit()
    with httpx.Client(auth=(peers.username, peers.password)) as bmc:  # plain http here
        system_doc = bmc.get(peers.emulator.address + peers.emulator.system_path(system)).json()
        manager = bmc.get(peers.emulator.address + system_doc["Links"]["ManagedBy"][0][
            "@odata.id"]).json()
    components = {c["component"]: c for c in api.get(f"/v1/nodes/{uuid}/firmware").json()[
        "firmware"]}
    assert manager.get("Model") and components["bmc"]["model"] == manager["Model"]
    assert components["bmc"]["current_version"] == manager.get("FirmwareVersion")
    assert (components["bios"]["vendor"], components["bios"]["serial_number"]) == (None, None)
    old = api.get(f"/v1/nodes/{uuid}/firmware", headers=at("1.113")).json()["firmware"]
    assert all("model" not in component for component in old)
