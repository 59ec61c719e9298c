"""The one validation layer, seen through the API (issue #15, items 1 and 5 to 8): every string
and JSON value a client sends is checked the same way in POST, PATCH and PUT; a refused request
writes nothing and leaves every listing answering.

A real API served by uvicorn on loopback, in process, with an in-process conductor on a real
SQLite database. Bodies are sent as raw JSON text where they hold what Python's JSON encoder
would refuse to produce (lone surrogates, NaN, Infinity).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, select

from services.api.routing import CheckedJSONRoute
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.models import Allocation, Node, Port
from tests.support.api_stack import faultstring as fault
from tests.support.api_stack import served_api

JSON = {"content-type": "application/json"}
SURROGATE = '"\\ud800"'  # a lone surrogate, as JSON text
BAD = "<bad>"  # where ``spliced`` puts a value Python's JSON encoder would not write
LISTINGS = ("/v1/nodes", "/v1/nodes/detail", "/v1/ports/detail", "/v1/allocations")


class Stack:
    def __init__(self, api: httpx.Client, db: Database, app: Any) -> None:
        self.api, self.db, self.app = api, db, app


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("validation")
    url = f"sqlite:///{directory / 'api.sqlite'}"
    upgrade_schema(url)
    db = Database(url)
    settings = Settings(
        process={"data_dir": directory},
        conductor={"hostname": "conductor-1"},
    )
    with served_api(settings, db) as served:
        yield Stack(served.client, db, served.app)


@pytest.fixture
def api(stack: Stack) -> httpx.Client:
    return stack.api


# -- helpers -------------------------------------------------------------------------------


def refused(response: httpx.Response, fragment: str = "") -> str:
    assert response.status_code == 400, (response.status_code, response.text)
    message = fault(response)
    assert fragment in message, (fragment, message)
    return message


def spliced(document: Any, value: str = SURROGATE) -> str:
    """``document`` as JSON text with ``value`` (JSON text) in place of the string BAD."""
    return json.dumps(document).replace(json.dumps(BAD), value)


def raw(api: httpx.Client, method: str, path: str, body: str) -> httpx.Response:
    """``body`` sent as it is written (JSON text Python's encoder would not produce)."""
    return api.request(method, path, content=body.encode(), headers=JSON)


def counts(db: Database) -> tuple[int, int, int]:
    with db.session() as session:
        return tuple(session.scalar(select(func.count()).select_from(table)) or 0
                     for table in (Node, Port, Allocation))  # type: ignore[return-value]


def assert_listings_answer(api: httpx.Client) -> None:
    for path in LISTINGS:
        response = api.get(path)
        assert response.status_code == 200, (path, response.text)


def name() -> str:
    return f"v-{uuid.uuid4().hex[:12]}"


def make_node(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = api.post("/v1/nodes", json={"driver": "fake-hardware", "name": name(), **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


def snapshot(api: httpx.Client, ident: str) -> dict[str, Any]:
    document = dict(api.get(f"/v1/nodes/{ident}").json())
    document.pop("updated_at")
    return document


def free_mac() -> str:
    tail = uuid.uuid4().hex[:6]
    return "52:54:00:" + ":".join(tail[i:i + 2] for i in range(0, 6, 2))


# -- the mechanism -------------------------------------------------------------------------


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        if included is not None:
            yield from _api_routes(included.routes)


def test_every_route_parses_its_body_with_the_validation_layer(stack: Stack) -> None:
    routes = list(_api_routes(stack.app.routes))
    assert len(routes) > 40
    assert [r.path for r in routes if not isinstance(r, CheckedJSONRoute)] == []


# -- item 1: a lone surrogate is refused everywhere and stored nowhere ---------------------


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/nodes", {"driver": "fake-hardware", "extra": {"k": BAD}}),
    ("/v1/nodes", {"driver": "fake-hardware", "extra": {BAD: 1}}),
    ("/v1/nodes", {"driver": "fake-hardware", "properties": {"a": [[BAD]]}}),
    ("/v1/nodes", {"driver": "fake-hardware", "description": BAD}),
    ("/v1/nodes", {"driver": "fake-hardware", "owner": BAD}),
    ("/v1/allocations", {"resource_class": "rc", "extra": {"k": BAD}}),
])
def test_a_lone_surrogate_is_400_and_stores_nothing(stack: Stack, path: str,
                                                    body: dict[str, Any]) -> None:
    before = counts(stack.db)
    refused(raw(stack.api, "POST", path, spliced(body)), "lone surrogate")
    assert counts(stack.db) == before
    assert_listings_answer(stack.api)


def test_a_lone_surrogate_in_a_port_is_400(api: httpx.Client, stack: Stack) -> None:
    node = make_node(api)
    before = counts(stack.db)
    body = spliced({"node_uuid": node["uuid"], "address": free_mac(), "extra": {"k": BAD}})
    refused(raw(api, "POST", "/v1/ports", body), "lone surrogate")
    assert counts(stack.db) == before
    assert_listings_answer(api)


@pytest.mark.parametrize(("method", "suffix", "body"), [
    ("PATCH", "", [{"op": "add", "path": "/extra/k", "value": BAD}]),
    ("PATCH", "", [{"op": "replace", "path": "/description", "value": BAD}]),
    ("PATCH", "", [{"op": "add", "path": BAD, "value": 1}]),
    ("PUT", "/maintenance", {"reason": BAD}),
    ("PUT", "/traits", {"traits": [BAD]}),
    ("PUT", "/states/provision", {"target": "manage", "clean_steps": [BAD]}),
])
def test_a_lone_surrogate_in_a_change_is_400_and_changes_nothing(
        api: httpx.Client, method: str, suffix: str, body: Any) -> None:
    node = make_node(api)
    before = snapshot(api, node["uuid"])
    response = raw(api, method, f"/v1/nodes/{node['uuid']}{suffix}", spliced(body))
    refused(response, "lone surrogate")
    assert snapshot(api, node["uuid"]) == before


def test_a_bad_value_already_stored_does_not_take_the_listings_down(stack: Stack) -> None:
    """Defence in depth: a value written before the checks existed is rendered, not a 500."""
    node = make_node(stack.api)
    with stack.db.session() as session:
        row = session.scalar(select(Node).where(Node.uuid == node["uuid"]))
        assert row is not None
        row.extra = {"k": "bad \ud800 value"}
        row.properties = {"cpus": float("nan"), "list": [float("inf")]}
    assert_listings_answer(stack.api)
    response = stack.api.get(f"/v1/nodes/{node['uuid']}")
    assert response.status_code == 200, response.text
    assert response.json()["extra"] == {"k": "bad ? value"}
    assert response.json()["properties"] == {"cpus": None, "list": [None]}
    assert stack.api.delete(f"/v1/nodes/{node['uuid']}").status_code == 204


# -- item 8: NaN, Infinity and limits ------------------------------------------------------


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
@pytest.mark.parametrize(("path", "body"), [
    ("/v1/nodes", {"driver": "fake-hardware", "properties": {"cpus": BAD}}),
    ("/v1/nodes", {"driver": "fake-hardware", "instance_info": {"a": [BAD]}}),
    ("/v1/nodes", {"driver": "fake-hardware", "driver_info": {"x": {"y": BAD}}}),
    ("/v1/allocations", {"resource_class": "rc", "extra": {"k": BAD}}),
])
def test_nan_and_infinity_are_400_and_store_nothing(stack: Stack, path: str,
                                                    body: dict[str, Any], number: str) -> None:
    before = counts(stack.db)
    refused(raw(stack.api, "POST", path, spliced(body, number)))
    assert counts(stack.db) == before


def test_nan_in_a_patch_is_400(api: httpx.Client) -> None:
    node = make_node(api)
    before = snapshot(api, node["uuid"])
    refused(raw(api, "PATCH", f"/v1/nodes/{node['uuid']}",
                '[{"op": "add", "path": "/properties/cpus", "value": NaN}]'))
    assert snapshot(api, node["uuid"]) == before


def test_maintenance_reason_by_put_is_limited_like_patch(api: httpx.Client) -> None:
    node = make_node(api)
    path = f"/v1/nodes/{node['uuid']}"
    too_long = "r" * 4097
    refused(api.put(f"{path}/maintenance", json={"reason": too_long}), "at most 4096")
    refused(api.patch(path, json=[{"op": "replace", "path": "/maintenance_reason",
                                   "value": too_long}]), "at most 4096")
    assert api.get(path).json()["maintenance"] is False
    assert api.put(f"{path}/maintenance", json={"reason": "r" * 4096}).status_code == 202
    assert api.get(path).json()["maintenance_reason"] == "r" * 4096


@pytest.mark.parametrize(("field", "limit"), [("resource_class", 80), ("owner", 255),
                                              ("lessee", 255), ("description", 4096)])
def test_text_fields_have_their_limit(stack: Stack, field: str, limit: int) -> None:
    before = counts(stack.db)
    refused(stack.api.post("/v1/nodes", json={"driver": "fake-hardware",
                                              field: "x" * (limit + 1)}), f"at most {limit}")
    assert counts(stack.db) == before
    assert make_node(stack.api, **{field: "x" * limit})[field] == "x" * limit


def test_allocation_resource_class_is_limited(stack: Stack) -> None:
    before = counts(stack.db)
    refused(stack.api.post("/v1/allocations", json={"resource_class": "x" * 100_000}),
            "at most 80")
    assert counts(stack.db) == before


def test_a_long_agent_version_or_callback_url_is_400(api: httpx.Client) -> None:
    node = make_node(api)
    response = api.post(f"/v1/heartbeat/{node['uuid']}", json={
        "callback_url": "http://192.0.2.1:9999", "agent_token": "t", "agent_version": "9" * 5000})
    refused(response, "agent_version")
    response = api.post(f"/v1/heartbeat/{node['uuid']}", json={
        "callback_url": "http://192.0.2.1:9999/" + "p" * 5000, "agent_token": "t"})
    refused(response, "callback_url")


def test_control_characters_are_refused_in_single_line_text(api: httpx.Client) -> None:
    refused(api.post("/v1/nodes", json={"driver": "fake-hardware", "owner": "a\x1bb"}),
            "control character")
    node = make_node(api, description="two\nlines\twith a tab")
    assert node["description"] == "two\nlines\twith a tab"


def test_text_is_nfc_normalised(api: httpx.Client) -> None:
    node = make_node(api, description="cafe\u0301")
    assert node["description"] == "caf\u00e9"


# -- item 5: the authenticated 500s --------------------------------------------------------


@pytest.mark.parametrize("index", ["\u0661", "1" * 5000, "-1", "+1", " 1"])
def test_odd_patch_indexes_are_400(api: httpx.Client, index: str) -> None:
    node = make_node(api, extra={"list": [1, 2, 3]})
    before = snapshot(api, node["uuid"])
    response = api.patch(f"/v1/nodes/{node['uuid']}",
                         json=[{"op": "replace", "path": f"/extra/list/{index}", "value": 0}])
    refused(response, "index")
    assert snapshot(api, node["uuid"]) == before


@pytest.mark.parametrize("limit", ["\u0661", "1_0", " 1", "9" * 30])
@pytest.mark.parametrize("path", ["/v1/nodes", "/v1/ports", "/v1/allocations"])
def test_odd_list_limits_are_400(api: httpx.Client, path: str, limit: str) -> None:
    refused(api.get(path, params={"limit": limit}), "Invalid value for limit")


def test_a_null_uuid_is_generated_as_ironic_does(api: httpx.Client) -> None:
    node = make_node(api, uuid=None)
    assert uuid.UUID(node["uuid"])
    port = api.post("/v1/ports", json={"node_uuid": node["uuid"], "address": free_mac(),
                                       "uuid": None})
    assert port.status_code == 201, port.text
    allocation = api.post("/v1/allocations", json={"resource_class": "rc", "uuid": None})
    assert allocation.status_code == 201, allocation.text


DICT_FOR_STRING: list[tuple[str, str, Any]] = [
    ("POST", "/v1/nodes", {"driver": "fake-hardware", "resource_class": {"a": 1}}),
    ("POST", "/v1/nodes", {"driver": {"a": 1}}),
    ("POST", "/v1/nodes", {"driver": "fake-hardware", "name": {"a": 1}}),
    ("POST", "/v1/nodes", {"driver": "fake-hardware", "uuid": {"a": 1}}),
    ("POST", "/v1/allocations", {"resource_class": {"a": 1}}),
    ("POST", "/v1/allocations", {"resource_class": "rc", "owner": {"a": 1}}),
    ("POST", "/v1/allocations", {"resource_class": "rc", "name": {"a": 1}}),
    ("POST", "/v1/allocations", {"resource_class": "rc", "candidate_nodes": [{"a": 1}]}),
    ("POST", "/v1/allocations", {"node": {"a": 1}}),
    ("POST", "/v1/ports", {"node_uuid": {"a": 1}, "address": "52:54:00:00:00:99"}),
    ("POST", "/v1/ports", {"node_uuid": "n", "address": "52:54:00:00:00:98",
                           "physical_network": {"a": 1}}),
]


@pytest.mark.parametrize(("method", "path", "body"), DICT_FOR_STRING)
def test_a_dict_where_a_string_is_expected_is_400_before_any_sql(
        stack: Stack, caplog: pytest.LogCaptureFixture, method: str, path: str,
        body: dict[str, Any]) -> None:
    before = counts(stack.db)
    with caplog.at_level(logging.WARNING):
        response = stack.api.request(method, path, json=body)
    assert response.status_code == 400, response.text
    assert counts(stack.db) == before
    logged = "\n".join(record.getMessage() + str(record.exc_info) for record in caplog.records)
    assert "sql" not in logged.lower() and "Traceback" not in logged, logged


def test_a_power_change_the_power_interface_cannot_validate_is_400(api: httpx.Client) -> None:
    """Ironic's words (the conductor's validation of every flow), and nothing changes."""
    node = make_node(api, driver="ipmi", driver_info={"ipmi_username": "admin"})
    before = snapshot(api, node["uuid"])
    message = refused(api.put(f"/v1/nodes/{node['uuid']}/states/power",
                              json={"target": "power on"}),
                      f"Failed to validate power interface for node {node['uuid']}: ")
    assert "ipmi_address" in message, message
    assert snapshot(api, node["uuid"]) == before


@pytest.mark.parametrize(("suffix", "body"), [
    ("/maintenance", {"reason": {"a": 1}}),
    ("/states/power", {"target": {"a": 1}}),
    ("/states/provision", {"target": "rescue", "rescue_password": {"a": 1}}),
    ("/states/provision", {"target": "active", "configdrive": 12}),
    ("/traits", {"traits": [{"a": 1}]}),
])
def test_a_dict_where_a_string_is_expected_in_a_put_is_400(api: httpx.Client, suffix: str,
                                                           body: dict[str, Any]) -> None:
    node = make_node(api)
    before = snapshot(api, node["uuid"])
    refused(api.put(f"/v1/nodes/{node['uuid']}{suffix}", json=body))
    assert snapshot(api, node["uuid"]) == before


# -- item 6: strict grammars, no trailing newline ------------------------------------------


@pytest.mark.parametrize("body", [
    {"driver": "fake-hardware", "name": "node-1\n"},
    {"driver": "fake-hardware", "conductor_group": "group\n"},
    {"driver": "fake-hardware", "resource_class": "rc\n"},
    {"driver": "fake-hardware", "uuid": str(uuid.uuid4()) + "\n"},
])
def test_a_trailing_newline_is_refused_in_node_fields(stack: Stack, body: dict[str, Any]) -> None:
    before = counts(stack.db)
    refused(stack.api.post("/v1/nodes", json=body))
    assert counts(stack.db) == before


def test_a_trailing_newline_is_refused_in_traits(api: httpx.Client) -> None:
    node = make_node(api)
    path = f"/v1/nodes/{node['uuid']}/traits"
    refused(api.put(path, json={"traits": ["CUSTOM_A\n"]}), "Invalid trait")
    refused(api.put(f"{path}/CUSTOM_B%0A"), "Invalid trait")
    assert api.get(path).json()["traits"] == []


def test_a_mac_with_a_newline_is_refused_and_cannot_bypass_uniqueness(api: httpx.Client,
                                                                      stack: Stack) -> None:
    node = make_node(api)
    mac = free_mac()
    assert api.post("/v1/ports", json={"node_uuid": node["uuid"],
                                       "address": mac}).status_code == 201
    before = counts(stack.db)
    refused(api.post("/v1/ports", json={"node_uuid": node["uuid"], "address": mac + "\n"}),
            "MAC address")
    assert counts(stack.db) == before


def test_a_trailing_newline_is_refused_in_allocation_names(stack: Stack) -> None:
    before = counts(stack.db)
    refused(stack.api.post("/v1/allocations", json={"resource_class": "rc", "name": "a\n"}))
    assert counts(stack.db) == before


# -- item 7: UUIDs in lower case, no UUID-looking allocation names -------------------------


def test_an_uppercase_port_uuid_is_stored_lowercase_and_can_be_fetched(api: httpx.Client) -> None:
    node = make_node(api)
    wanted = str(uuid.uuid4())
    response = api.post("/v1/ports", json={"node_uuid": node["uuid"], "address": free_mac(),
                                           "uuid": wanted.upper()})
    assert response.status_code == 201, response.text
    assert response.json()["uuid"] == wanted
    for ident in (wanted, wanted.upper()):
        fetched = api.get(f"/v1/ports/{ident}")
        assert fetched.status_code == 200 and fetched.json()["uuid"] == wanted


def test_uppercase_node_and_allocation_uuids_are_stored_lowercase(api: httpx.Client) -> None:
    wanted = str(uuid.uuid4())
    assert make_node(api, uuid=wanted.upper())["uuid"] == wanted
    assert api.get(f"/v1/nodes/{wanted.upper()}").status_code == 200
    other = str(uuid.uuid4())
    response = api.post("/v1/allocations", json={"resource_class": "rc", "uuid": other.upper()})
    assert response.status_code == 201 and response.json()["uuid"] == other
    assert api.get(f"/v1/allocations/{other.upper()}").status_code == 200


@pytest.mark.parametrize("looks_like_a_uuid", [str(uuid.uuid4()), uuid.uuid4().hex],
                         ids=["uuid", "uuid-hex"])  # random values, fixed ids (pytest-xdist)
def test_a_uuid_looking_allocation_name_is_refused(stack: Stack, looks_like_a_uuid: str) -> None:
    before = counts(stack.db)
    refused(stack.api.post("/v1/allocations", json={"resource_class": "rc",
                                                    "name": looks_like_a_uuid}),
            "must not look like a UUID")
    assert counts(stack.db) == before


def test_a_uuid_looking_allocation_name_is_refused_in_a_patch(api: httpx.Client) -> None:
    allocation = api.post("/v1/allocations", json={"resource_class": "rc", "name": name()})
    assert allocation.status_code == 201, allocation.text
    ident = allocation.json()["uuid"]
    refused(api.patch(f"/v1/allocations/{ident}", json=[
        {"op": "replace", "path": "/name", "value": str(uuid.uuid4())}]), "look like a UUID")
    assert api.get(f"/v1/allocations/{ident}").json()["name"] == allocation.json()["name"]

