"""API 1.93 to 1.115, built ahead of the versions Enclume speaks: served here by an app made
while ``MAX_VERSION`` is raised to 1.115 (as the lead raises it once 1.85 to 1.92 are built),
on SQLite with fake hardware and an in-process conductor. Each is checked at its version and
at the one below it, where Ironic ignores or refuses it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.api import versions
from tests.support.api_stack import ServedApi, served_sqlite_api, wait_state


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApi]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(versions, "MAX_VERSION", (1, 115))
        with served_sqlite_api(tmp_path_factory.mktemp("micro-93-115")) as stack:
            yield stack


@pytest.fixture(scope="module")
def api(served: ServedApi) -> httpx.Client:
    return served.client


def at(version: str) -> dict[str, str]:
    return {"X-OpenStack-Ironic-API-Version": version}


def fault(response: httpx.Response) -> str:
    return str(json.loads(response.json()["error_message"])["faultstring"])


def new_node(api: httpx.Client, version: str = "latest", **values: Any) -> str:
    created = api.post("/v1/nodes", json={"driver": "fake-hardware", **values},
                       headers=at(version))
    assert created.status_code == 201, created.text
    return str(created.json()["uuid"])


def patch(api: httpx.Client, node: str, *operations: dict[str, Any],
          version: str = "1.104") -> httpx.Response:
    return api.patch(f"/v1/nodes/{node}", json=list(operations), headers=at(version))


# -- 1.104: instance_name ------------------------------------------------------------------


def test_instance_name_is_set_shown_filtered_and_removed(api: httpx.Client) -> None:
    # openstacksdk's TestBareMetalNodeInstanceName, step by step
    node, other = new_node(api), new_node(api)
    assert api.get(f"/v1/nodes/{node}", headers=at("1.104")).json()["instance_name"] is None
    named = patch(api, node, {"op": "add", "path": "/instance_name", "value": "instance-1"})
    assert named.status_code == 200 and named.json()["instance_name"] == "instance-1"
    patch(api, other, {"op": "add", "path": "/instance_name", "value": "instance-2"})
    found = api.get("/v1/nodes/detail?instance_name=instance-1", headers=at("1.104")).json()
    assert [(n["uuid"], n["instance_name"]) for n in found["nodes"]] == [(node, "instance-1")]
    listed = api.get("/v1/nodes?instance_name=instance-2", headers=at("1.104")).json()
    assert [n["uuid"] for n in listed["nodes"]] == [other]
    removed = patch(api, node, {"op": "remove", "path": "/instance_name"})
    assert removed.json()["instance_name"] is None
    assert api.get(f"/v1/nodes/{node}", headers=at("1.104")).json()["instance_name"] is None


def test_instance_name_below_1_104_and_its_limits(api: httpx.Client) -> None:
    node = new_node(api, instance_name="created-named")
    assert api.get(f"/v1/nodes/{node}").json()["instance_name"] == "created-named"
    assert "instance_name" not in api.get(f"/v1/nodes/{node}", headers=at("1.103")).json()
    old = patch(api, node, {"op": "add", "path": "/instance_name", "value": "x"},
                version="1.103")
    assert old.status_code == 400 and fault(old) == "Unknown attribute for node: instance_name"
    refused = api.get("/v1/nodes?instance_name=x", headers=at("1.103"))
    assert refused.status_code == 406
    assert fault(refused) == "instance_name is not acceptable in this API version"
    empty = patch(api, node, {"op": "add", "path": "/instance_name", "value": ""})
    assert empty.status_code == 400 and "too short" in fault(empty)
    long = patch(api, node, {"op": "add", "path": "/instance_name", "value": "x" * 256})
    assert long.status_code == 400


def test_instance_info_display_name_names_the_instance_until_undeploy(api: httpx.Client
                                                                      ) -> None:
    node = new_node(api, "1.10")  # available at once
    shown = patch(api, node, {"op": "add", "path": "/instance_info",
                              "value": {"display_name": "vm-1"}}).json()
    assert shown["instance_name"] == "vm-1"
    # an instance_name already set is kept
    shown = patch(api, node, {"op": "add", "path": "/instance_info",
                              "value": {"display_name": "vm-2"}}).json()
    assert shown["instance_name"] == "vm-1"
    assert api.put(f"/v1/nodes/{node}/states/provision",
                   json={"target": "active"}).status_code == 202
    assert wait_state(api, node, "active")["instance_name"] == "vm-1"
    assert api.put(f"/v1/nodes/{node}/states/provision",
                   json={"target": "deleted"}).status_code == 202
    undeployed = wait_state(api, node, "available")
    assert undeployed["instance_name"] is None and undeployed["instance_info"] == {}
