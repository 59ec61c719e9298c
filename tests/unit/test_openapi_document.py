"""The OpenAPI document describes the API as served: every route, typed bodies, the query
parameters the routes read, the version header, and the statuses really answered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import schemathesis
from fastapi import FastAPI
from starlette.testclient import TestClient

from services.api import openapi
from services.api.app import create_app
from services.api.errors import error_body
from services.common import validation
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.exceptions import Invalid
from services.common.macs import parse_mac
from services.common.membership import Membership
from services.conductor.manager import ConductorManager
from services.drivers.registry import Drivers


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    url = f"sqlite:///{tmp_path / 'openapi.sqlite'}"
    upgrade_schema(url)
    db = Database(url)
    settings = Settings(process={"data_dir": tmp_path}, conductor={"hostname": "c1"})
    drivers = Drivers(settings)
    membership = Membership(db, settings)
    return create_app(settings, db, ConductorManager(db, settings, drivers, membership),
                      membership)


@pytest.fixture
def document(app: FastAPI) -> dict[str, Any]:
    with TestClient(app) as client:
        answer = client.get("/openapi.json")
    assert answer.status_code == 200, answer.text
    served: dict[str, Any] = answer.json()
    return served


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, operation) for path, methods in document["paths"].items()
            for method, operation in methods.items()]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    name = schema["$ref"].rsplit("/", 1)[1]
    resolved: dict[str, Any] = document["components"]["schemas"][name]
    return resolved


def test_every_route_is_described_and_the_document_loads(document: dict[str, Any]) -> None:
    assert {(m, p) for m, p, _ in operations(document)} == set(openapi.OPERATIONS)
    loaded = schemathesis.openapi.from_dict(document)
    results = list(loaded.get_all_operations())
    assert len(results) == len(openapi.OPERATIONS)
    for result in results:
        result.ok()  # raises for an operation schemathesis cannot use


def test_statuses_are_the_ones_answered(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        codes = set(operation["responses"])
        assert "422" not in codes, (method, path)
        assert {"400", "406"} <= codes, (method, path)
        if "requestBody" in operation:
            assert "413" in codes, (method, path)
        if path.startswith("/v1/nodes/{ident}"):
            assert "404" in codes, (method, path)
        public = path in ("/", "/v1", "/v1/", "/v1/lookup", "/v1/continue_inspection")
        assert ("401" in codes) != public or path.startswith("/v1/heartbeat"), (method, path)
        for code, response in operation["responses"].items():
            if int(code) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}


def test_the_error_schema_is_what_errors_render(document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["Error"]
    jsonschema.validate(json.loads(error_body(400, "bad")), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"detail": [{"msg": "FastAPI's 422"}]}, schema)


def test_bodies_are_typed(document: dict[str, Any]) -> None:
    bodies = {}
    for method, path, operation in operations(document):
        if "requestBody" in operation:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            bodies[(method, path)] = resolve(document, schema)
    assert set(bodies) == {(m, p) for (m, p), o in openapi.OPERATIONS.items() if o.body}
    node = bodies[("post", "/v1/nodes")]
    assert node["required"] == ["driver"] and node["additionalProperties"] is False
    assert node["properties"]["name"]["anyOf"][0]["maxLength"] == 255
    patch = bodies[("patch", "/v1/nodes/{ident}")]
    assert patch["type"] == "array" and patch["items"]["properties"]["op"]["enum"] == [
        "add", "replace", "remove"]
    assert bodies[("put", "/v1/nodes/{ident}/states/power")]["properties"]["target"]["enum"]
    assert bodies[("post", "/v1/ports")]["required"] == ["address"]  # or node_ident (1.94)
    assert "node_ident" in bodies[("post", "/v1/ports")]["properties"]
    assert "reason" in bodies[("put", "/v1/nodes/{ident}/maintenance")]["properties"]
    assert "callback_url" in bodies[("post", "/v1/heartbeat/{node_ident}")]["required"]


def test_parameters_the_routes_read(document: dict[str, Any]) -> None:
    def names(path: str, method: str = "get") -> set[str]:
        return {p["name"] for p in document["paths"][path][method]["parameters"]}

    for method, path, _ in operations(document):
        assert "X-OpenStack-Ironic-API-Version" in names(path, method), (method, path)
    listing = {"fields", "limit", "marker", "sort_key", "sort_dir", "detail"}
    assert listing | {"provision_state", "maintenance", "driver", "owner"} <= names("/v1/nodes")
    assert listing | {"node", "address"} <= names("/v1/ports")
    assert {"node", "resource_class", "state"} <= names("/v1/allocations")
    assert {"addresses", "node_uuid"} <= names("/v1/lookup")
    sort_key = next(p for p in document["paths"]["/v1/nodes"]["get"]["parameters"]
                    if p["name"] == "sort_key")
    assert "provision_state" in sort_key["schema"]["enum"]


def test_a_route_without_a_description_fails_the_build(app: FastAPI) -> None:
    @app.get("/v1/undescribed")
    def undescribed() -> dict[str, str]:
        return {}

    with pytest.raises(ValueError, match="undescribed"):
        openapi.build(app)


GRAMMAR_SAMPLES = (
    "node-1", "a", "A.b~c_d", "name\n", "name\r\n", " name", "n" * 255, "n" * 256, "",
    "11111111-2222-4333-8444-555555555555", "11111111-2222-4333-8444-55555555555G",
    "0123456789ABCDEF0123456789abcdef", "CUSTOM_X", "CUSTOM_", "custom_x", "HW_CPU_X86",
    "T" * 255, "T" * 256, "group.1_x-y", "52:54:00:ab:cd:ef", "52-54-00-AB-CD-EF",
    "52:54:00:ab:cd:ef\n", "52:54:00:ab:cd", "tab\there", "line\nbreak", "nul\x00",
    "esc\x1b[31m", "c1\x85", "e\u0301", "\u00e9" * 255, "\u00e9" * 256, "r" * 80, "r" * 81,
)


def _accepts(check: Any, value: str) -> bool:
    try:
        check(value)
    except Invalid:
        return False
    return True


def test_the_grammars_are_the_validation_layer_s(document: dict[str, Any]) -> None:
    """Each schema accepts exactly what the route's check (its one owner) accepts."""
    schemas = document["components"]["schemas"]
    node = schemas["NodeCreate"]["properties"]
    rules = {
        "name": (node["name"]["anyOf"][0], validation.is_valid_name),
        "conductor_group": (node["conductor_group"]["anyOf"][0],
                            lambda v: _accepts(validation.conductor_group, v)),
        "trait": (schemas["Traits"]["properties"]["traits"]["items"],
                  lambda v: _accepts(lambda t: validation.traits([t]), v)),
        "uuid": (node["uuid"]["anyOf"][0], validation.is_uuid),
        "mac": (schemas["PortCreate"]["properties"]["address"], lambda v: parse_mac(v) is not None),
        "owner": (node["owner"]["anyOf"][0], lambda v: _accepts(
            lambda t: validation.text("owner", t), v)),
        "description": (node["description"]["anyOf"][0], lambda v: _accepts(
            lambda t: validation.text("description", t), v)),
        "resource_class": (node["resource_class"]["anyOf"][0], lambda v: _accepts(
            lambda t: validation.text("resource_class", t), v)),
    }
    for field, (schema, accepts) in rules.items():
        checker = jsonschema.Draft202012Validator(schema)
        for value in GRAMMAR_SAMPLES:
            assert checker.is_valid(value) == accepts(value), (field, value)


def test_a_bmc_failure_is_documented_where_it_happens(document: dict[str, Any]) -> None:
    with_500 = {(m, p) for m, p, o in operations(document) if "500" in o["responses"]}
    assert with_500 == {("get", "/v1/nodes/{ident}/management/boot_device"),
                        ("put", "/v1/nodes/{ident}/management/boot_device"),
                        ("get", "/v1/nodes/{ident}/vmedia")}
