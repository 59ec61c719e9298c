"""Bad input against a real ``enclume-aio``: a clear 4xx in Ironic's error format, and no change.

Ironic's error body is ``{"error_message": "<JSON string>"}``, the inner JSON holding
``faultstring`` (the message), ``faultcode`` ("Client" for 4xx) and ``debuginfo`` (null).
"Changes nothing" is checked by comparing the whole node document before and after, less
``updated_at``, which a taken and released node lock moves (as in Ironic).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.api.versions import MAX_VERSION, format_version
from tests.support.aio import Server, running_aio

pytestmark = pytest.mark.integration

LATEST = format_version(MAX_VERSION)
VERSION_HEADER = "X-OpenStack-Ironic-API-Version"
HEADERS = {VERSION_HEADER: LATEST}
NEXT = format_version((MAX_VERSION[0], MAX_VERSION[1] + 1))  # the first unserved version
JSON = {"content-type": "application/json"}
MAX_BODY = 1024 * 1024  # the default max_request_body_bytes
NOWHERE = "4f6c1f8e-0000-4000-8000-000000000000"  # a UUID no resource has


@pytest.fixture(scope="module")
def api(aio: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=aio.url, headers=HEADERS, timeout=10) as client:
        yield client


# -- helpers -------------------------------------------------------------------------------


def assert_error(response: httpx.Response, status: int, fragment: str) -> str:
    """``response`` is Ironic's error document with ``status`` and ``fragment`` in faultstring."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    outer = response.json()
    assert isinstance(outer, dict) and set(outer) == {"error_message"}, outer
    assert isinstance(outer["error_message"], str), outer
    fault = json.loads(outer["error_message"])
    assert set(fault) == {"faultstring", "faultcode", "debuginfo"}, fault
    assert fault["faultcode"] == ("Client" if status < 500 else "Server"), fault
    assert fault["debuginfo"] is None, fault
    assert isinstance(fault["faultstring"], str)
    assert fragment in fault["faultstring"], (fragment, fault["faultstring"])
    return str(fault["faultstring"])


def unique_name() -> str:
    return f"bad-input-{uuid.uuid4().hex[:12]}"


def make_node(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"driver": "fake-hardware", "name": unique_name(), **fields}
    response = api.post("/v1/nodes", json=body)
    assert response.status_code == 201, response.text
    node: dict[str, Any] = response.json()
    return node


def snapshot(api: httpx.Client, ident: str) -> dict[str, Any]:
    """The node as the API shows it, less ``updated_at`` (a node lock moves it)."""
    response = api.get(f"/v1/nodes/{ident}")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    document.pop("updated_at")
    return document


def node_count(api: httpx.Client) -> int:
    response = api.get("/v1/nodes", params={"fields": "uuid"})
    assert response.status_code == 200, response.text
    return len(response.json()["nodes"])


def port_addresses(api: httpx.Client, node: str) -> list[str]:
    response = api.get(f"/v1/nodes/{node}/ports")
    assert response.status_code == 200, response.text
    return [port["address"] for port in response.json()["ports"]]


def wait_for_state(api: httpx.Client, ident: str, state: str, timeout: float = 15.0
                   ) -> dict[str, Any]:
    """Poll until the node is in ``state`` with its lock released."""
    deadline = time.monotonic() + timeout
    node: dict[str, Any] = {}
    while time.monotonic() < deadline:
        node = api.get(f"/v1/nodes/{ident}").json()
        if node["provision_state"] == state and node["reservation"] is None:
            return node
        if node.get("last_error"):
            raise AssertionError(f"node {ident} failed: {node['last_error']}")
        time.sleep(0.02)
    raise AssertionError(f"node {ident} did not reach {state!r} in {timeout}s: "
                         f"{node.get('provision_state')!r}")


def provision(api: httpx.Client, ident: str, target: str, reach: str | None,
              timeout: float = 15.0, **options: Any) -> None:
    """Ask for ``target`` as a client would (retrying while the node or workers are busy)."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.put(f"/v1/nodes/{ident}/states/provision",
                           json={"target": target, **options})
        if response.status_code not in (409, 503) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert response.status_code == 202, response.text
    if reach is not None:
        wait_for_state(api, ident, reach, timeout)


def make_available(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    """A node taken from enroll to available (without automated cleaning, to stay fast)."""
    node = make_node(api, automated_clean=False, **fields)
    provision(api, node["uuid"], "manage", "manageable")
    provision(api, node["uuid"], "provide", "available")
    return node


def make_active(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    node = make_available(api, **fields)
    provision(api, node["uuid"], "active", "active")
    return node


# -- provision state changes ---------------------------------------------------------------


@pytest.mark.parametrize("target", ["explode", "ACTIVE", "", None, 42, ["manage"], {}])
def test_unknown_provision_verb_is_400(api: httpx.Client, target: Any) -> None:
    node = make_node(api)
    before = snapshot(api, node["uuid"])
    response = api.put(f"/v1/nodes/{node['uuid']}/states/provision", json={"target": target})
    assert_error(response, 400, f"is not valid at API version {LATEST}")
    assert snapshot(api, node["uuid"]) == before


@pytest.mark.parametrize("target", ["active", "provide", "deploy", "rebuild", "deleted",
                                    "undeploy", "clean", "inspect", "rescue", "unrescue"])
def test_verb_not_allowed_in_enroll_is_400_naming_the_state(api: httpx.Client,
                                                            target: str) -> None:
    node = make_node(api)
    before = snapshot(api, node["uuid"])
    response = api.put(f"/v1/nodes/{node['uuid']}/states/provision", json={"target": target})
    message = assert_error(response, 400, 'while it is in state "enroll"')
    assert f'"{target}"' in message
    after = snapshot(api, node["uuid"])
    assert after == before
    assert after["provision_state"] == "enroll"
    assert after["target_provision_state"] is None


def test_verb_not_allowed_in_available_is_400(api: httpx.Client) -> None:
    node = make_available(api)
    before = snapshot(api, node["uuid"])
    for target in ("provide", "inspect", "adopt", "unrescue", "deleted"):
        response = api.put(f"/v1/nodes/{node['uuid']}/states/provision",
                           json={"target": target})
        assert_error(response, 400, 'while it is in state "available"')
    assert snapshot(api, node["uuid"]) == before


@pytest.mark.parametrize(("body", "fragment"), [
    ({}, 'needs a "target"'),
    ({"target": "manage", "bogus": 1}, "Unknown attribute(s) for a provision state change"),
    ({"target": "manage", "configdrive": "abc"}, "config drive"),
    ([{"target": "manage"}], 'needs a "target"'),
    ("manage", 'needs a "target"'),
])
def test_malformed_provision_request_is_400(api: httpx.Client, body: Any,
                                            fragment: str) -> None:
    node = make_node(api)
    before = snapshot(api, node["uuid"])
    response = api.put(f"/v1/nodes/{node['uuid']}/states/provision", json=body)
    assert_error(response, 400, fragment)
    assert snapshot(api, node["uuid"]) == before


def test_manual_clean_without_steps_is_400(api: httpx.Client) -> None:
    node = make_node(api)
    provision(api, node["uuid"], "manage", "manageable")
    before = snapshot(api, node["uuid"])
    response = api.put(f"/v1/nodes/{node['uuid']}/states/provision", json={"target": "clean"})
    assert_error(response, 400, '"clean_steps" is required')
    assert snapshot(api, node["uuid"]) == before


# -- JSON Patch ----------------------------------------------------------------------------

BAD_PATCHES: list[tuple[str, Any, str]] = [
    ("object", {"op": "add", "path": "/extra/a", "value": 1}, "expected a non-empty JSON list"),
    ("string", "add /extra/a 1", "expected a non-empty JSON list"),
    ("empty", [], "expected a non-empty JSON list"),
    ("not-an-op", ["add"], "expected an object"),
    ("move", [{"op": "move", "from": "/extra/a", "path": "/extra/b"}], "'move'"),
    ("test", [{"op": "test", "path": "/extra/a", "value": 1}], "'test'"),
    ("copy", [{"op": "copy", "from": "/extra/a", "path": "/extra/b"}], "'copy'"),
    ("no-op", [{"path": "/extra/a", "value": 1}], "supported are add, replace, remove"),
    ("no-path", [{"op": "add", "value": 1}], "Invalid patch path"),
    ("relative-path", [{"op": "add", "path": "extra/a", "value": 1}], "Invalid patch path"),
    ("root-path", [{"op": "replace", "path": "/", "value": {}}], "Invalid patch path"),
    ("number-path", [{"op": "remove", "path": 7}], "Invalid patch path"),
    ("add-no-value", [{"op": "add", "path": "/extra/a"}], "needs a value"),
    ("replace-no-value", [{"op": "replace", "path": "/description"}], "needs a value"),
    ("extra-member", [{"op": "add", "path": "/extra/a", "value": 1, "from": "/x"}],
     "unknown member(s)"),
    ("provision_state", [{"op": "replace", "path": "/provision_state", "value": "active"}],
     "'/provision_state' is an internal attribute"),
    ("uuid", [{"op": "replace", "path": "/uuid", "value": NOWHERE}],
     "'/uuid' is an internal attribute"),
    ("reservation", [{"op": "add", "path": "/reservation", "value": "me"}],
     "'/reservation' is an internal attribute"),
    ("power_state", [{"op": "replace", "path": "/power_state", "value": "power on"}],
     "'/power_state' is an internal attribute"),
    ("traits", [{"op": "add", "path": "/traits", "value": ["CUSTOM_X"]}],
     "'/traits' is an internal attribute"),
    ("unknown-field", [{"op": "add", "path": "/bogus", "value": 1}],
     "Unknown attribute for node: bogus"),
    ("remove-missing", [{"op": "remove", "path": "/extra/missing"}],
     "Couldn't apply patch '{'op': 'remove', 'path': '/extra/missing'}'. Reason: can't remove "
     "a non-existent object 'missing'"),
    ("replace-missing", [{"op": "replace", "path": "/extra/missing", "value": 1}],
     "Reason: can't replace a non-existent object 'missing'"),
    ("missing-parent", [{"op": "add", "path": "/extra/missing/child", "value": 1}],
     "'missing' does not exist"),
    ("bad-list-index", [{"op": "add", "path": "/extra/list/9", "value": 1}], "out of range"),
    ("wrong-type", [{"op": "replace", "path": "/maintenance", "value": "soon"}],
     "Invalid value for maintenance"),
    ("not-an-object", [{"op": "add", "path": "/driver_info", "value": "ipmi"}],
     "Invalid value for driver_info: expected a JSON object"),
    ("remove-driver", [{"op": "remove", "path": "/driver"}], "A node needs a driver"),
    ("unknown-driver", [{"op": "replace", "path": "/driver", "value": "nope"}],
     "Cannot find the hardware type nope"),
    ("bad-interface", [{"op": "replace", "path": "/deploy_interface", "value": "ansible"}],
     "Could not find a suitable deploy interface 'ansible'"),
    ("bad-name", [{"op": "replace", "path": "/name", "value": "not a name"}],
     "Cannot change name to invalid name 'not a name'"),
    ("bad-instance-uuid", [{"op": "add", "path": "/instance_uuid", "value": "nope"}],
     "Expected UUID for instance_uuid: nope"),
]


@pytest.mark.parametrize(("patch", "fragment"), [case[1:] for case in BAD_PATCHES],
                         ids=[case[0] for case in BAD_PATCHES])
def test_bad_patch_is_400_and_changes_nothing(api: httpx.Client, patch: Any,
                                              fragment: str) -> None:
    node = make_node(api, extra={"a": 1, "list": [1, 2]})
    before = snapshot(api, node["uuid"])
    assert_error(api.patch(f"/v1/nodes/{node['uuid']}", json=patch), 400, fragment)
    assert snapshot(api, node["uuid"]) == before


SECOND_OPS: list[tuple[str, dict[str, Any], str]] = [
    ("remove-missing", {"op": "remove", "path": "/extra/missing"}, "non-existent"),
    ("internal", {"op": "replace", "path": "/provision_state", "value": "active"},
     "internal attribute"),
    ("move", {"op": "move", "from": "/extra/keep", "path": "/extra/moved"}, "'move'"),
    ("no-value", {"op": "add", "path": "/extra/other"}, "needs a value"),
    ("wrong-type", {"op": "replace", "path": "/retired", "value": "soon"},
     "Invalid value for retired"),
    ("unknown-driver", {"op": "replace", "path": "/driver", "value": "nope"},
     "Cannot find the hardware type"),
]


@pytest.mark.parametrize(("second", "fragment"), [case[1:] for case in SECOND_OPS],
                         ids=[case[0] for case in SECOND_OPS])
def test_patch_with_a_bad_second_op_applies_nothing(api: httpx.Client, second: dict[str, Any],
                                                    fragment: str) -> None:
    node = make_node(api, extra={"keep": 1})
    before = snapshot(api, node["uuid"])
    first = [{"op": "add", "path": "/extra/added", "value": "yes"},
             {"op": "replace", "path": "/description", "value": "patched"}]
    response = api.patch(f"/v1/nodes/{node['uuid']}", json=[*first, second])
    assert_error(response, 400, fragment)
    after = snapshot(api, node["uuid"])
    assert after == before
    assert after["extra"] == {"keep": 1} and after["description"] is None
    # The same good operations alone do apply, so the check above can fail.
    response = api.patch(f"/v1/nodes/{node['uuid']}", json=first)
    assert response.status_code == 200, response.text
    assert response.json()["extra"] == {"keep": 1, "added": "yes"}


def test_bad_port_patch_is_400_and_changes_nothing(api: httpx.Client) -> None:
    node = make_node(api)
    port = api.post("/v1/ports", json={"node_uuid": node["uuid"],
                                       "address": "52:54:00:aa:00:01"}).json()
    before = api.get(f"/v1/ports/{port['uuid']}").json()
    cases: list[tuple[Any, str]] = [
        ({"op": "add", "path": "/extra/a", "value": 1}, "expected a non-empty JSON list"),
        ([1], "expected an object"),
        (["remove"], "expected an object"),
        ([{"op": "move", "from": "/extra/a", "path": "/extra/b"}], "'move'"),
        ([{"op": "replace", "path": "/uuid", "value": NOWHERE}], "'/uuid' can not be updated"),
        ([{"op": "replace", "path": "/address", "value": "zz:zz:zz:zz:zz:zz"}],
         "Expected a MAC address"),
        ([{"op": "add", "path": "/extra/a", "value": 1},
          {"op": "remove", "path": "/extra/missing"}], "non-existent"),
    ]
    for patch, fragment in cases:
        assert_error(api.patch(f"/v1/ports/{port['uuid']}", json=patch), 400, fragment)
    assert api.get(f"/v1/ports/{port['uuid']}").json() == before


# -- unknown fields and query parameters ---------------------------------------------------


@pytest.mark.parametrize(("body", "fragment"), [
    ({"bogus": 1}, "Unknown attribute(s) for node: bogus"),
    ({"provision_state": "active"}, "Unknown attribute(s) for node: provision_state"),
    ({"traits": ["CUSTOM_A"]}, "Unknown attribute(s) for node: traits"),
    ({"reservation": "me"}, "Unknown attribute(s) for node: reservation"),
    ({"driver": "nope"}, "Cannot find the hardware type nope"),
    ({"driver": None}, "A node needs a driver"),
    ({"uuid": "not-a-uuid"}, "Expected UUID for uuid: not-a-uuid"),
    ({"name": "bad name"}, "Cannot create node with invalid name 'bad name'"),
    ({"name": NOWHERE}, "must not look like a UUID"),
    ({"extra": [1]}, "Invalid value for extra: expected a JSON object"),
    ({"deploy_interface": "ansible"}, "Could not find a suitable deploy interface"),
    ({"extra": {"deep": json.loads("[" * 300 + "]" * 300)}}, "nested more than 64 levels"),
])
def test_bad_node_create_is_400_and_creates_nothing(api: httpx.Client, body: dict[str, Any],
                                                    fragment: str) -> None:
    count = node_count(api)
    response = api.post("/v1/nodes", json={"driver": "fake-hardware", **body})
    assert_error(response, 400, fragment)
    assert node_count(api) == count


def test_node_create_without_driver_is_400(api: httpx.Client) -> None:
    count = node_count(api)
    assert_error(api.post("/v1/nodes", json={"name": unique_name()}), 400,
                 "Mandatory field missing: driver")
    assert node_count(api) == count


def test_unknown_field_in_older_version_is_400(api: httpx.Client) -> None:
    # ``description`` exists from 1.51 on: a 1.50 client can not set it.
    count = node_count(api)
    response = api.post("/v1/nodes", json={"driver": "fake-hardware", "description": "x"},
                        headers={VERSION_HEADER: "1.50"})
    assert_error(response, 400, "Unknown attribute(s) for node: description")
    assert node_count(api) == count


@pytest.mark.parametrize(("path", "params", "fragment"), [
    ("/v1/nodes", {"fields": "bogus"}, 'Field(s) "bogus" are not valid'),
    ("/v1/nodes", {"fields": "uuid,bogus"}, 'Field(s) "bogus" are not valid'),
    ("/v1/nodes/detail", {"fields": "uuid"}, "Can not specify ?detail=True and fields"),
    ("/v1/nodes", {"sort_key": "bogus"}, "The sort_key value bogus is an invalid field"),
    ("/v1/nodes", {"sort_key": "driver_info"}, "The sort_key value driver_info is an invalid"),
    ("/v1/nodes", {"sort_dir": "up"}, "Invalid sort direction: up"),
    ("/v1/nodes", {"limit": "ten"}, "Invalid value for limit: 'ten'"),
    ("/v1/nodes", {"limit": "1.5"}, "Invalid value for limit: '1.5'"),
    ("/v1/nodes", {"limit": "-1"}, "Limit must be positive"),
    ("/v1/nodes", {"marker": NOWHERE}, f"Marker {NOWHERE} could not be found"),
    ("/v1/nodes", {"marker": "no-such-node"}, "Marker no-such-node could not be found"),
    ("/v1/nodes", {"maintenance": "maybe"}, "Invalid value for maintenance: 'maybe'"),
    ("/v1/nodes", {"detail": "perhaps"}, "Invalid value for detail"),
    ("/v1/nodes/detail", {"detail": "true"}, "not allowed on the /detail endpoint"),
    ("/v1/ports", {"fields": "bogus"}, 'Field(s) "bogus" are not valid'),
    ("/v1/ports", {"sort_key": "bogus"}, "The sort_key value bogus is an invalid field"),
    ("/v1/ports", {"limit": "x"}, "Invalid value for limit"),
    ("/v1/ports", {"marker": NOWHERE}, f"Marker {NOWHERE} could not be found"),
])
def test_bad_list_parameters_are_400(api: httpx.Client, path: str, params: dict[str, str],
                                     fragment: str) -> None:
    assert_error(api.get(path, params=params), 400, fragment)


def test_unknown_fields_on_one_node_is_400(api: httpx.Client) -> None:
    node = make_node(api)
    for fields in ("bogus", "uuid,bogus", ""):
        response = api.get(f"/v1/nodes/{node['uuid']}", params={"fields": fields})
        assert_error(response, 400, "are not valid")
    # ``fields`` itself needs 1.8.
    response = api.get(f"/v1/nodes/{node['uuid']}", params={"fields": "uuid"},
                       headers={VERSION_HEADER: "1.7"})
    assert_error(response, 400, "needs API version 1.8")


# -- bodies that are not JSON objects ------------------------------------------------------

@pytest.mark.parametrize(("body", "fragment"), [
    (b'{"driver": ', "Invalid JSON"),
    (b"{driver: fake-hardware}", "Invalid JSON"),
    (b"{'driver': 'fake-hardware'}", "Invalid JSON"),
    (b'{"driver": "fake-hardware"}}', "Invalid JSON"),
    (b"\xff\xfe\x00", "error parsing the body"),  # not even text
])
def test_invalid_json_is_400_and_creates_nothing(api: httpx.Client, body: bytes,
                                                 fragment: str) -> None:
    count = node_count(api)
    assert_error(api.post("/v1/nodes", content=body, headers=JSON), 400, fragment)
    assert node_count(api) == count


def test_invalid_json_patch_and_state_change_are_400(api: httpx.Client) -> None:
    node = make_node(api)
    before = snapshot(api, node["uuid"])
    response = api.patch(f"/v1/nodes/{node['uuid']}", headers=JSON,
                         content=b'[{"op": "add", "path": "/extra/a", "value": 1}')
    assert_error(response, 400, "Invalid JSON")
    response = api.put(f"/v1/nodes/{node['uuid']}/states/provision", headers=JSON,
                       content=b'{"target": manage}')
    assert_error(response, 400, "Invalid JSON")
    response = api.post("/v1/ports", headers=JSON, content=b'{"node_uuid": ')
    assert_error(response, 400, "Invalid JSON")
    assert snapshot(api, node["uuid"]) == before
    assert port_addresses(api, node["uuid"]) == []


@pytest.mark.parametrize("body", [b"[]", b'[{"driver": "fake-hardware"}]', b'"fake-hardware"',
                                  b"42", b"true"])
def test_non_object_body_is_400(api: httpx.Client, body: bytes) -> None:
    count = node_count(api)
    assert_error(api.post("/v1/nodes", content=body, headers=JSON), 400,
                 "Invalid node: expected a JSON object")
    assert_error(api.post("/v1/ports", content=body, headers=JSON), 400,
                 "Invalid port: expected a JSON object")
    assert node_count(api) == count


def test_missing_body_is_400(api: httpx.Client) -> None:
    count = node_count(api)
    assert_error(api.post("/v1/nodes", content=b"", headers=JSON), 400, "Invalid request")
    assert_error(api.post("/v1/nodes"), 400, "Invalid request")
    assert node_count(api) == count


# -- conflicts and ports -------------------------------------------------------------------


def test_duplicate_mac_is_409_and_only_one_port_exists(api: httpx.Client) -> None:
    node = make_node(api)
    other = make_node(api)
    mac = "52:54:00:12:34:56"
    response = api.post("/v1/ports", json={"node_uuid": node["uuid"], "address": mac})
    assert response.status_code == 201, response.text
    for address in (mac, mac.upper(), mac.replace(":", "-")):
        for owner in (node, other):
            response = api.post("/v1/ports", json={"node_uuid": owner["uuid"],
                                                   "address": address})
            assert_error(response, 409, f"A port with MAC address {mac} already exists")
    assert port_addresses(api, node["uuid"]) == [mac]
    assert port_addresses(api, other["uuid"]) == []
    ports = api.get("/v1/ports", params={"address": mac}).json()["ports"]
    assert len(ports) == 1


def test_changing_a_port_to_a_taken_mac_is_409(api: httpx.Client) -> None:
    node = make_node(api)
    first = api.post("/v1/ports", json={"node_uuid": node["uuid"],
                                        "address": "52:54:00:12:35:01"}).json()
    second = api.post("/v1/ports", json={"node_uuid": node["uuid"],
                                         "address": "52:54:00:12:35:02"}).json()
    response = api.patch(f"/v1/ports/{second['uuid']}", json=[
        {"op": "replace", "path": "/address", "value": first["address"]}])
    assert_error(response, 409, "already exists")
    assert sorted(port_addresses(api, node["uuid"])) == [first["address"], second["address"]]


@pytest.mark.parametrize("address", ["zz:54:00:12:34:56", "52:54:00:12:34", "52:54:00:12:34:56:78",
                                     "525400123456", "", 5254, None, ["52:54:00:12:34:56"]])
def test_invalid_mac_is_400_and_creates_no_port(api: httpx.Client, address: Any) -> None:
    node = make_node(api)
    response = api.post("/v1/ports", json={"node_uuid": node["uuid"], "address": address})
    assert_error(response, 400, "Expected a MAC address")
    assert port_addresses(api, node["uuid"]) == []


@pytest.mark.parametrize(("extra", "fragment"), [
    ({"bogus": 1}, "Unknown attribute(s) for port: bogus"),
    ({"extra": "x"}, "Invalid value for extra"),
    ({"local_link_connection": {"switch": "x"}}, "Invalid local_link_connection"),
    ({"pxe_enabled": "soon"}, "Invalid value for pxe_enabled"),
    ({"uuid": "nope"}, "Expected UUID for uuid: nope"),
    ({"extra": {"deep": json.loads("[" * 300 + "]" * 300)}}, "nested more than 64 levels"),
])
def test_bad_port_create_is_400(api: httpx.Client, extra: dict[str, Any],
                                fragment: str) -> None:
    node = make_node(api)
    body = {"node_uuid": node["uuid"], "address": "52:54:00:77:00:01", **extra}
    assert_error(api.post("/v1/ports", json=body), 400, fragment)
    assert port_addresses(api, node["uuid"]) == []


def test_too_deep_allocation_extra_is_400(api: httpx.Client) -> None:
    deep = {"deep": json.loads("[" * 300 + "]" * 300)}
    resource_class = unique_name()
    response = api.post("/v1/allocations", json={"resource_class": resource_class, "extra": deep})
    assert_error(response, 400, "nested more than 64 levels")
    listed = api.get("/v1/allocations", params={"resource_class": resource_class})
    assert listed.status_code == 200, listed.text
    assert listed.json()["allocations"] == []
    allocation = api.post("/v1/allocations", json={"resource_class": resource_class,
                                                   "extra": {"a": 1}}).json()
    response = api.patch(f"/v1/allocations/{allocation['uuid']}",
                         json=[{"op": "add", "path": "/extra/deep", "value": deep["deep"]}])
    assert_error(response, 400, "nested more than 64 levels")
    assert api.get(f"/v1/allocations/{allocation['uuid']}").json()["extra"] == {"a": 1}


def test_port_on_unknown_node_is_404(api: httpx.Client) -> None:
    response = api.post("/v1/ports", json={"node_uuid": NOWHERE, "address": "52:54:00:77:00:02"})
    assert_error(response, 404, "could not be found")
    assert api.get("/v1/ports", params={"address": "52:54:00:77:00:02"}).json()["ports"] == []


def test_duplicate_node_name_and_uuid_are_409(api: httpx.Client) -> None:
    node = make_node(api)
    count = node_count(api)
    response = api.post("/v1/nodes", json={"driver": "fake-hardware", "name": node["name"]})
    assert_error(response, 409, f"A resource with name {node['name']} already exists")
    response = api.post("/v1/nodes", json={"driver": "fake-hardware", "uuid": node["uuid"]})
    assert_error(response, 409, f"A resource with UUID {node['uuid']} already exists")
    assert node_count(api) == count


def test_renaming_to_a_taken_name_is_409_and_changes_nothing(api: httpx.Client) -> None:
    taken = make_node(api)
    node = make_node(api)
    before = snapshot(api, node["uuid"])
    response = api.patch(f"/v1/nodes/{node['uuid']}", json=[
        {"op": "add", "path": "/extra/a", "value": 1},
        {"op": "replace", "path": "/name", "value": taken["name"]}])
    assert_error(response, 409, "already exists")
    assert snapshot(api, node["uuid"]) == before


# -- request body size ---------------------------------------------------------------------


def oversized_node() -> bytes:
    """A node document just over the body limit (the extra is what makes it big)."""
    padding = "x" * (MAX_BODY + 64 * 1024)
    return json.dumps({"driver": "fake-hardware", "name": unique_name(),
                       "extra": {"padding": padding}}).encode()


def test_oversized_body_is_413_and_creates_nothing(aio: Server, api: httpx.Client) -> None:
    count = node_count(api)
    # A connection of its own: the server need not read the body it refuses.
    with httpx.Client(base_url=aio.url, headers=HEADERS, timeout=10) as client:
        response = client.post("/v1/nodes", content=oversized_node(), headers=JSON)
    assert int(response.request.headers["content-length"]) > MAX_BODY
    assert_error(response, 413, f"larger than the limit of {MAX_BODY} bytes")
    assert node_count(api) == count


def chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start:start + size]


def test_oversized_chunked_body_is_413_and_creates_nothing(aio: Server,
                                                           api: httpx.Client) -> None:
    count = node_count(api)
    with httpx.Client(base_url=aio.url, headers=HEADERS, timeout=10) as client:
        response = client.post("/v1/nodes", content=chunks(oversized_node()), headers=JSON)
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert_error(response, 413, f"larger than the limit of {MAX_BODY} bytes")
    assert node_count(api) == count


def test_oversized_chunked_patch_changes_nothing(aio: Server, api: httpx.Client) -> None:
    node = make_node(api)
    before = snapshot(api, node["uuid"])
    patch = json.dumps([{"op": "add", "path": "/extra/padding", "value": "x" * (MAX_BODY + 1)}])
    with httpx.Client(base_url=aio.url, headers=HEADERS, timeout=10) as client:
        response = client.patch(f"/v1/nodes/{node['uuid']}", content=chunks(patch.encode()),
                                headers=JSON)
        assert_error(response, 413, "larger than the limit")
    assert snapshot(api, node["uuid"]) == before


def test_body_just_under_the_limit_is_accepted(api: httpx.Client) -> None:
    document = {"driver": "fake-hardware", "name": unique_name(), "extra": {"padding": ""}}
    room = MAX_BODY - len(json.dumps(document).encode())
    document["extra"] = {"padding": "x" * room}
    body = json.dumps(document).encode()
    assert len(body) == MAX_BODY
    response = api.post("/v1/nodes", content=body, headers=JSON)
    assert response.status_code == 201, response.text[:300]
    assert api.delete(f"/v1/nodes/{response.json()['uuid']}").status_code == 204


# -- microversions -------------------------------------------------------------------------


def assert_range_headers(response: httpx.Response) -> None:
    assert response.headers["X-OpenStack-Ironic-API-Minimum-Version"] == "1.1"
    assert response.headers["X-OpenStack-Ironic-API-Maximum-Version"] == LATEST


@pytest.mark.parametrize("version", ["1.199", NEXT, "1.0", "2.1", "0.9"])
def test_unsupported_version_is_406_with_the_range(aio: Server, version: str) -> None:
    response = httpx.get(f"{aio.url}/v1/nodes", headers={VERSION_HEADER: version})
    message = assert_error(response, 406, f"Version {version} was requested")
    assert f"[1.1, {LATEST}]" in message
    assert_range_headers(response)
    assert VERSION_HEADER not in response.headers


@pytest.mark.parametrize("version", ["abc", "1", "1.", "v1.50", "1.2.3", "1.x", "-1.5"])
def test_garbage_version_is_400(aio: Server, version: str) -> None:
    response = httpx.get(f"{aio.url}/v1/nodes", headers={VERSION_HEADER: version})
    assert_error(response, 400, f"{version!r}")
    assert_range_headers(response)


def test_unsupported_version_in_the_generic_header_is_406(aio: Server) -> None:
    response = httpx.get(f"{aio.url}/v1/nodes",
                         headers={"OpenStack-API-Version": "baremetal 1.199"})
    assert_error(response, 406, "Version 1.199 was requested")
    assert_range_headers(response)


def test_generic_version_header_is_honoured(aio: Server, api: httpx.Client) -> None:
    node = make_node(api, description="from 1.51")
    response = httpx.get(f"{aio.url}/v1/nodes/{node['uuid']}",
                         headers={"OpenStack-API-Version": "baremetal 1.50"})
    assert response.status_code == 200, response.text
    assert response.headers[VERSION_HEADER] == "1.50"
    assert response.headers["OpenStack-API-Version"] == "baremetal 1.50"
    assert_range_headers(response)
    document = response.json()
    assert "owner" in document  # 1.50
    assert "description" not in document  # 1.51


def test_generic_header_for_another_service_is_ignored(aio: Server) -> None:
    response = httpx.get(f"{aio.url}/v1/nodes", headers={"OpenStack-API-Version": "compute 2.90"})
    assert response.status_code == 200, response.text
    assert response.headers[VERSION_HEADER] == "1.1"


def test_latest_is_the_maximum(aio: Server) -> None:
    for header in ({VERSION_HEADER: "latest"}, {"OpenStack-API-Version": "baremetal latest"}):
        response = httpx.get(f"{aio.url}/v1/nodes", headers=header)
        assert response.status_code == 200, response.text
        assert response.headers[VERSION_HEADER] == LATEST
        assert response.headers["OpenStack-API-Version"] == f"baremetal {LATEST}"


def test_no_version_header_serves_the_minimum(aio: Server, api: httpx.Client) -> None:
    node = make_node(api, resource_class="baremetal")
    response = httpx.get(f"{aio.url}/v1/nodes/{node['uuid']}")
    assert response.status_code == 200, response.text
    assert response.headers[VERSION_HEADER] == "1.1"
    assert_range_headers(response)
    document = response.json()
    assert document["uuid"] == node["uuid"]
    for newer in ("name", "traits", "resource_class", "owner", "description", "conductor",
                  "deploy_interface", "network_data"):
        assert newer not in document, newer
    # Names address nodes only from 1.5 on.
    response = httpx.get(f"{aio.url}/v1/nodes/{node['name']}")
    assert_error(response, 404, "could not be found")
    # Traits are a 1.37 resource.
    response = httpx.get(f"{aio.url}/v1/nodes/{node['uuid']}/traits")
    assert_error(response, 404, "1.37")


def test_verb_newer_than_the_requested_version_is_400(api: httpx.Client) -> None:
    node = make_node(api)
    before = snapshot(api, node["uuid"])
    response = api.put(f"/v1/nodes/{node['uuid']}/states/provision", json={"target": "manage"},
                       headers={VERSION_HEADER: "1.3"})
    assert_error(response, 400, '"manage" is not valid at API version 1.3')
    assert snapshot(api, node["uuid"]) == before


# -- missing resources and states ----------------------------------------------------------


@pytest.mark.parametrize("ident", [NOWHERE, "no-such-node"])
def test_unknown_node_is_404(api: httpx.Client, ident: str) -> None:
    requests = [
        ("GET", f"/v1/nodes/{ident}", None),
        ("GET", f"/v1/nodes/{ident}/states", None),
        ("GET", f"/v1/nodes/{ident}/ports", None),
        ("GET", f"/v1/nodes/{ident}/traits", None),
        ("PATCH", f"/v1/nodes/{ident}", [{"op": "add", "path": "/extra/a", "value": 1}]),
        ("DELETE", f"/v1/nodes/{ident}", None),
        ("PUT", f"/v1/nodes/{ident}/states/provision", {"target": "manage"}),
        ("PUT", f"/v1/nodes/{ident}/states/power", {"target": "power on"}),
        ("PUT", f"/v1/nodes/{ident}/maintenance", {"reason": "x"}),
    ]
    for method, path, body in requests:
        response = api.request(method, path, json=body)
        assert_error(response, 404, f"Node {ident} could not be found")


def test_unknown_port_and_route_are_404(api: httpx.Client) -> None:
    assert_error(api.get(f"/v1/ports/{NOWHERE}"), 404, "could not be found")
    assert_error(api.delete(f"/v1/ports/{NOWHERE}"), 404, "could not be found")
    assert_error(api.get("/v1/chassis-and-more"), 404, "could not be found")


def test_deleting_an_active_node_is_409(api: httpx.Client) -> None:
    node = make_active(api, instance_info={"image_source": "http://example.com/image.qcow2"})
    before = snapshot(api, node["uuid"])
    assert before["provision_state"] == "active"
    response = api.delete(f"/v1/nodes/{node['uuid']}")
    assert_error(response, 409, 'while it is in state "active"')
    assert snapshot(api, node["uuid"]) == before
    # Deploying again from active is not allowed either; rebuilding is.
    response = api.put(f"/v1/nodes/{node['uuid']}/states/provision", json={"target": "active"})
    assert_error(response, 400, 'while it is in state "active"')
    assert snapshot(api, node["uuid"]) == before


def test_deleting_a_protected_node_is_409(api: httpx.Client) -> None:
    node = make_node(api, protected=True, protected_reason="keep")
    assert_error(api.delete(f"/v1/nodes/{node['uuid']}"), 409, "is protected")
    assert api.get(f"/v1/nodes/{node['uuid']}").status_code == 200


# -- busy conductors -----------------------------------------------------------------------

SLOW_DEPLOY = {"ENCLUME_FAKE_DEPLOY_DELAY_S": "[2.0, 2.0]"}


def test_locked_node_is_409(tmp_path: Path) -> None:
    with (running_aio(tmp_path / "slow", env=SLOW_DEPLOY) as server,
          httpx.Client(base_url=server.url, headers=HEADERS, timeout=10) as api):
        node = make_available(api)
        provision(api, node["uuid"], "active", None)
        deploying = api.get(f"/v1/nodes/{node['uuid']}").json()
        assert deploying["provision_state"] == "deploying"
        assert deploying["reservation"]
        host = deploying["reservation"]
        response = api.patch(f"/v1/nodes/{node['uuid']}",
                             json=[{"op": "add", "path": "/extra/during", "value": 1}])
        message = assert_error(response, 409, f"is locked by host {host}")
        assert node["uuid"] in message
        assert_error(api.delete(f"/v1/nodes/{node['uuid']}"), 409, "locked by host")
        assert_error(api.put(f"/v1/nodes/{node['uuid']}/traits", json={"traits": []}), 409,
                     "locked by host")
        assert_error(api.put(f"/v1/nodes/{node['uuid']}/states/provision",
                             json={"target": "deleted"}), 400, '"deploying"')
        done = wait_for_state(api, node["uuid"], "active")
        assert "during" not in done["extra"]


def test_no_free_conductor_worker_is_503(tmp_path: Path) -> None:
    env = {**SLOW_DEPLOY, "ENCLUME_CONDUCTOR_WORKERS": "1"}
    with (running_aio(tmp_path / "one-worker", env=env) as server,
          httpx.Client(base_url=server.url, headers=HEADERS, timeout=10) as api):
        first = make_available(api)
        second = make_available(api)
        provision(api, first["uuid"], "active", None)
        before = snapshot(api, second["uuid"])
        response = api.put(f"/v1/nodes/{second['uuid']}/states/provision",
                           json={"target": "active"})
        assert_error(response, 503, "lack of free conductor workers")
        assert snapshot(api, second["uuid"]) == before
        assert before["provision_state"] == "available"
        wait_for_state(api, first["uuid"], "active")
        provision(api, second["uuid"], "active", "active")


# -- secrets -------------------------------------------------------------------------------


def test_secrets_are_masked_and_never_logged(aio: Server, api: httpx.Client) -> None:
    secret = uuid.uuid4().hex
    ipmi, redfish, drive, late = (f"{kind}-{secret}" for kind in
                                  ("ipmi", "redfish", "configdrive", "deploydrive"))
    node = make_node(api, automated_clean=False,
                     driver_info={"ipmi_username": "admin", "ipmi_password": ipmi,
                                  "redfish_password": redfish,
                                  "redfish_address": "https://bmc.example.com"},
                     instance_info={"configdrive": drive, "image_source": "http://x/img"})
    ident = node["uuid"]
    # A bad request carrying the secrets does not echo them.
    response = api.patch(f"/v1/nodes/{ident}", json=[
        {"op": "replace", "path": "/driver_info/ipmi_password", "value": ipmi + "-new"},
        {"op": "remove", "path": "/driver_info/missing"}])
    assert secret not in assert_error(response, 400, "non-existent")
    response = api.post("/v1/nodes", json={"driver": "fake-hardware", "bogus": True,
                                           "driver_info": {"ipmi_password": ipmi}})
    assert secret not in assert_error(response, 400, "bogus")

    provision(api, ident, "manage", "manageable")
    provision(api, ident, "provide", "available")
    provision(api, ident, "active", "active", configdrive=late)
    patched = api.patch(f"/v1/nodes/{ident}", json=[
        {"op": "add", "path": "/extra/note", "value": "seen"}])
    assert patched.status_code == 200, patched.text
    documents = [node, patched.json(), api.get(f"/v1/nodes/{ident}").json(),
                 *[n for n in api.get("/v1/nodes/detail").json()["nodes"] if n["uuid"] == ident],
                 api.get(f"/v1/nodes/{ident}", params={"fields": "driver_info,instance_info"})
                 .json()]
    assert len(documents) == 5
    for document in documents:
        assert document["driver_info"]["ipmi_password"] == "******"
        assert document["driver_info"]["redfish_password"] == "******"
        assert document["driver_info"]["ipmi_username"] == "admin"
        assert document["driver_info"]["redfish_address"] == "https://bmc.example.com"
        assert document["instance_info"]["configdrive"] == "******"
        assert secret not in json.dumps(document)
    assert documents[-1]["instance_info"]["image_source"] == "http://x/img"
    log = aio.log_text()
    assert ident in log  # the log does cover this node's life
    for value in (secret, ipmi, redfish, drive, late):
        assert value not in log
