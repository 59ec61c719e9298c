"""Schemathesis over every operation of the served OpenAPI document (GET /openapi.json).

Cases come from the document in both modes (positive: what it allows; negative: what it
forbids); path parameters mostly name a resource that exists, and the version header is mostly
the newest one, so requests get past the 404 and 406 gates to the code behind them. Each case
runs through ``Stack.send``: no 5xx, nothing stored by a refusal, every listing whole, no
secret shown; and its status must be one the document lists for the operation.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode

from services.api.openapi import OPERATIONS
from tests.fuzz.stack import FUZZ_SETTINGS, LATEST, Request, Stack, encoded

VERSION = "X-OpenStack-Ironic-API-Version"
# Fewer than the hand-written bodies: ~50 operations, most of them read-only.
EXAMPLES = max(FUZZ_SETTINGS.max_examples // 3, 10)


@pytest.fixture(scope="module")
def document(stack: Stack) -> dict[str, Any]:
    answer = stack.client.get("/openapi.json")
    assert answer.status_code == 200, answer.text
    served: dict[str, Any] = answer.json()
    return served


@pytest.fixture(scope="module")
def schema(document: dict[str, Any]) -> Any:
    return schemathesis.openapi.from_dict(document)


def _kind(path: str) -> str | None:
    if path.startswith("/v1/ports/"):
        return "port"
    if path.startswith("/v1/portgroups/"):
        return "portgroup"
    if path.startswith("/v1/chassis/"):
        return "chassis"
    if path.startswith("/v1/allocations/"):
        return "allocation"
    if path.startswith(("/v1/nodes/", "/v1/heartbeat/")):
        return "node"
    return None


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value if isinstance(value, str) else json.dumps(value)


def _request(case: Any, data: st.DataObject, idents: dict[str, list[str]]) -> Request:
    path: str = case.path
    kind = _kind(path)
    for name, value in (case.path_parameters or {}).items():
        if name in ("ident", "node_ident") and kind and idents[kind]:
            value = data.draw(st.one_of(st.sampled_from(idents[kind]), st.just(value)),
                              label=name)
        path = path.replace("{" + name + "}", encoded(_text(value)) or "empty")
    headers = {k: _text(v) for k, v in (case.headers or {}).items()}
    headers = {k: v for k, v in headers.items() if _latin1(k) and _latin1(v)}
    version = data.draw(st.sampled_from([LATEST, LATEST, LATEST, "1.58", "1.1", None]),
                        label="version")
    if version is not None:
        headers[VERSION] = version
    query = {k: _text(v) for k, v in (case.query or {}).items()}
    has_body = case.body is not None and type(case.body).__name__ != "NotSet"
    raw = case.body if isinstance(case.body, bytes) else None
    return Request(case.method.upper(), path, params=query, headers=headers,
                   body=case.body if has_body else None, raw=raw, has_body=has_body)


def _latin1(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return "\r" not in value and "\n" not in value


@pytest.mark.parametrize(("method", "path"), sorted(OPERATIONS),
                         ids=[f"{m.upper()} {p}" for m, p in sorted(OPERATIONS)])
def test_every_operation_keeps_the_api_whole(stack: Stack, schema: Any,
                                             document: dict[str, Any], method: str,
                                             path: str) -> None:
    operation = schema[path][method.upper()]
    documented = {int(code) for code in document["paths"][path][method]["responses"]}
    cases = st.one_of(operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                      operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))

    @FUZZ_SETTINGS.__class__(FUZZ_SETTINGS, max_examples=EXAMPLES)
    @given(case=cases, data=st.data())
    def one_case(case: Any, data: st.DataObject) -> None:
        stack.reset()
        request = _request(case, data, stack.idents())
        status = stack.send(request)
        assert status in documented, (
            f"{status} is not among the documented statuses {sorted(documented)} of "
            f"{method.upper()} {path}:\n{request.describe()}")

    one_case()
