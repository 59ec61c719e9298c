"""Microversions 1.88 to 1.92 through a served API with an in-process conductor (fake hardware,
SQLite): port ``name`` (1.88), vmedia attach/detach (1.89; Redfish's own in
tests/integration/test_redfish_vmedia.py), OVN VTEP switches in ``local_link_connection``
(1.90), the ``.json`` suffix dropped below 1.91, runbooks served and a servicing by runbook
(1.92); each with Ironic's answer below its version."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.api_stack import ServedApi, at, fault, served_sqlite_api
from tests.support.polling import eventually

VTEP = {"port_id": "p1", "vtep-logical-switch": "ls1", "vtep-physical-switch": "ps1"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApi]:
    with served_sqlite_api(tmp_path_factory.mktemp("newer-92")) as stack:
        yield stack


@pytest.fixture(scope="module")
def api(served: ServedApi) -> httpx.Client:
    return served.client



def new_node(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = api.post("/v1/nodes", json={"driver": "fake-hardware"} | fields)
    assert response.status_code == 201, response.text
    document: dict[str, Any] = response.json()
    return document


def node(api: httpx.Client, uuid: str) -> dict[str, Any]:
    document: dict[str, Any] = api.get(f"/v1/nodes/{uuid}").json()
    return document


def port(api: httpx.Client, node_uuid: str, mac: str, version: str = "latest",
         **fields: Any) -> httpx.Response:
    return api.post("/v1/ports", json={"node_uuid": node_uuid, "address": mac} | fields,
                    headers=at(version))


def test_port_name_from_1_88(api: httpx.Client) -> None:
    uuid = new_node(api)["uuid"]
    assert port(api, uuid, "52:54:00:88:00:01", "1.87", name="eth0-n1").status_code == 406
    created = port(api, uuid, "52:54:00:88:00:01", name="eth0-n1")
    assert created.status_code == 201 and created.json()["name"] == "eth0-n1", created.text
    assert "name" not in api.get(f"/v1/ports/{created.json()['uuid']}",
                                 headers=at("1.87")).json()
    assert api.get("/v1/ports/eth0-n1").json()["uuid"] == created.json()["uuid"]
    taken = port(api, uuid, "52:54:00:88:00:02", name="eth0-n1")
    assert taken.status_code == 409 and "A port with name eth0-n1 already exists" in taken.text
    assert "invalid name" in fault(port(api, uuid, "52:54:00:88:00:03", name="bad name!"))
    renamed = api.patch("/v1/ports/eth0-n1",
                        json=[{"op": "replace", "path": "/name", "value": "eth1-n1"}])
    assert renamed.status_code == 200 and renamed.json()["name"] == "eth1-n1", renamed.text
    old = api.patch("/v1/ports/eth1-n1", headers=at("1.87"),
                    json=[{"op": "replace", "path": "/name", "value": "x"}])
    assert old.status_code == 406


def test_vmedia_from_1_89_fails_in_the_worker_on_fake_hardware(api: httpx.Client) -> None:
    uuid = new_node(api)["uuid"]
    body = {"device_type": "cdrom", "image_url": "http://image.invalid/boot.iso",
            "image_download_source": "http"}
    assert api.post(f"/v1/nodes/{uuid}/vmedia", json=body, headers=at("1.88")
                    ).status_code == 404
    assert "Unsupported or missing URL scheme: ftp" in fault(api.post(
        f"/v1/nodes/{uuid}/vmedia", json=body | {"image_url": "ftp://x/y"}))
    assert "Schema error" in fault(api.post(f"/v1/nodes/{uuid}/vmedia",
                                            json=body | {"device_type": "tape"}))
    assert "Invalid device type(s) tape" in fault(api.delete(
        f"/v1/nodes/{uuid}/vmedia", params={"device_types": "cdrom,tape"}))
    # As Ironic: accepted, and the management interface's refusal lands in last_error.
    assert api.post(f"/v1/nodes/{uuid}/vmedia", json=body).status_code == 204
    failed = eventually(lambda: (n := node(api, uuid))["last_error"] and n, 10, "last_error")
    assert failed["last_error"] == (
        f"Could not attach device cdrom to node {uuid}: Driver fake-hardware does not support "
        "attach_virtual_media (disabled or not implemented).")
    assert api.delete(f"/v1/nodes/{uuid}/vmedia").status_code == 204
    assert api.post("/v1/nodes/no-such-node/vmedia", json=body).status_code == 404


def test_ovn_vtep_switches_from_1_90(api: httpx.Client) -> None:
    uuid = new_node(api)["uuid"]
    vtep = {"local_link_connection": VTEP}
    assert port(api, uuid, "52:54:00:90:00:01", "1.89", **vtep).status_code == 406
    half = {"local_link_connection": {"port_id": "p1", "vtep-logical-switch": "ls1"}}
    assert "'vtep-physical-switch' is a dependency" in fault(
        port(api, uuid, "52:54:00:90:00:01", **half))
    created = port(api, uuid, "52:54:00:90:00:01", "1.104", **vtep)
    assert created.status_code == 201, created.text
    path = f"/v1/ports/{created.json()['uuid']}"
    assert api.get(path, headers=at("1.104")).json()["local_link_connection"] == VTEP
    assert api.get(path, headers=at("1.89")).json()["local_link_connection"] == {}
    # An older client's patch of another field keeps the connection it cannot see.
    patched = api.patch(path, headers=at("1.89"),
                        json=[{"op": "add", "path": "/extra/a", "value": 1}])
    assert patched.status_code == 200, patched.text
    assert api.get(path, headers=at("1.104")).json()["local_link_connection"] == VTEP


def test_the_json_suffix_is_dropped_below_1_91_only(api: httpx.Client) -> None:
    uuid = new_node(api)["uuid"]
    assert api.get(f"/v1/nodes/{uuid}.json", headers=at("1.90")).json()["uuid"] == uuid
    assert api.get(f"/v1/nodes/{uuid}.json", headers=at("1.91")).status_code in (400, 404)
    with httpx.Client(base_url=api.base_url) as unversioned:  # nothing stripped, as Ironic
        assert unversioned.get(f"/v1/nodes/{uuid}").status_code == 200
        assert unversioned.get(f"/v1/nodes/{uuid}.json").status_code != 200


def test_runbooks_from_1_92_and_a_servicing_by_runbook(api: httpx.Client) -> None:
    assert api.get("/v1/runbooks", headers=at("1.91")).status_code == 404
    assert api.post("/v1/runbooks", headers=at("1.91"), json={}).status_code == 405
    step = {"interface": "bios", "step": "apply_configuration", "order": 1,
            "args": {"settings": [{"name": "HyperThreading", "value": "Disabled"}]}}
    created = api.post("/v1/runbooks", json={"name": "CUSTOM_NO_HT", "steps": [step]},
                       headers=at("1.92"))
    assert created.status_code == 201, created.text
    uuid = new_node(api, bios_interface="fake")["uuid"]
    for target, reached in (("manage", "manageable"), ("provide", "available"),
                            ("active", "active")):
        assert api.put(f"/v1/nodes/{uuid}/states/provision",
                       json={"target": target}).status_code == 202
        eventually(lambda r=reached: node(api, uuid)["provision_state"] == r, 15, reached)
    body = {"target": "service", "runbook": "CUSTOM_NO_HT"}
    refused = api.put(f"/v1/nodes/{uuid}/states/provision", json=body, headers=at("1.92"))
    assert "has not been approved for use on this node" in fault(refused)
    assert api.put(f"/v1/nodes/{uuid}/traits/CUSTOM_NO_HT").status_code == 204
    both = body | {"service_steps": [{"interface": "deploy", "step": "hold"}]}
    assert "either \"service_steps\" or a runbook" in fault(
        api.put(f"/v1/nodes/{uuid}/states/provision", json=both, headers=at("1.92")))
    assert api.put(f"/v1/nodes/{uuid}/states/provision", json=body,
                   headers=at("1.92")).status_code == 406  # its disable_ramdisk, below 1.108
    assert api.put(f"/v1/nodes/{uuid}/states/provision", json=body,
                   headers=at("1.111")).status_code == 202
    eventually(lambda: node(api, uuid)["provision_state"] == "active"
               and node(api, uuid)["service_step"] == {}, 15, "serviced")
    listed = api.get(f"/v1/nodes/{uuid}/bios").json()["bios"]
    assert {s["name"]: s["value"] for s in listed}["HyperThreading"] == "Disabled"
