"""Hostile Ironic bodies, patches and parameters (tests/fuzz/strategies.py) against every write
of nodes, ports and allocations, the PUT sub-resources and the agent's calls.

Each example starts from the known database (``Stack.reset``) and sends one request; ``Stack.send``
asserts no 5xx, nothing stored by a refusal, every listing still answering and no known secret
shown. Failures name the request; the run is reproducible (derandomized, no example database).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import strategies as hostile
from tests.fuzz.stack import FUZZ_SETTINGS, LATEST, Request, Stack, encoded

HEADERS = {"X-OpenStack-Ironic-API-Version": LATEST}
Build = Callable[[st.DataObject, dict[str, list[str]]], Request]


def _ident(data: st.DataObject, known: list[str]) -> str:
    """Mostly a resource that exists (sometimes its UUID in upper case), else anything."""
    existing = st.sampled_from(known) if known else st.just("missing")
    value = data.draw(hostile.mostly(existing, existing.map(str.upper) | hostile.nasty_text()),
                      label="ident")
    return encoded(value) or "empty"


def _json(method: str, path: str, body: Any) -> Request:
    return Request(method, path, headers=dict(HEADERS), body=body, has_body=True)


def _node_write(suffix: str, bodies: st.SearchStrategy[Any], method: str = "PUT") -> Build:
    def build(data: st.DataObject, idents: dict[str, list[str]]) -> Request:
        ident = _ident(data, idents["node"])
        return _json(method, f"/v1/nodes/{ident}{suffix}", data.draw(bodies, label="body"))
    return build


def _create(path: str, bodies: Callable[[dict[str, list[str]]], st.SearchStrategy[Any]]
            ) -> Build:
    def build(data: st.DataObject, idents: dict[str, list[str]]) -> Request:
        return _json("POST", path, data.draw(bodies(idents), label="body"))
    return build


def _patch(kind: str, path: str, fields: frozenset[str]) -> Build:
    def build(data: st.DataObject, idents: dict[str, list[str]]) -> Request:
        ident = _ident(data, idents[kind])
        return _json("PATCH", f"{path}/{ident}",
                     data.draw(hostile.patches(fields), label="patch"))
    return build


def _add_trait(data: st.DataObject, idents: dict[str, list[str]]) -> Request:
    trait = data.draw(hostile.traits().filter(lambda t: isinstance(t, str)), label="trait")
    quoted = encoded(trait) or "empty"
    return Request("PUT", f"/v1/nodes/{_ident(data, idents['node'])}/traits/{quoted}",
                   headers=dict(HEADERS))


def _lookup(data: st.DataObject, idents: dict[str, list[str]]) -> Request:
    uuids = [i for i in idents["node"] if len(i) == 36]
    params = data.draw(st.fixed_dictionaries({}, optional={
        "addresses": st.lists(hostile.macs().map(str), max_size=3).map(",".join),
        "node_uuid": st.one_of(st.sampled_from(uuids or ["x"]), hostile.uuids().map(str)),
    }), label="query")
    return Request("GET", "/v1/lookup", params=params)


def _heartbeat(data: st.DataObject, idents: dict[str, list[str]]) -> Request:
    node = _ident(data, [i for i in idents["node"] if len(i) == 36])
    return _json("POST", f"/v1/heartbeat/{node}", data.draw(hostile.heartbeat_bodies(),
                                                              label="body"))


def _version_header(data: st.DataObject, idents: dict[str, list[str]]) -> Request:
    latin1 = st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=12)
    value = data.draw(st.one_of(
        latin1, st.sampled_from(["1." + "9" * 5000, "9" * 5000 + ".1", "1.73 ", "1.073",
                                 "baremetal 1.73", "1.-1", "LATEST"])), label="version")
    header = data.draw(st.sampled_from(["X-OpenStack-Ironic-API-Version",
                                        "OpenStack-API-Version"]), label="header")
    if header == "OpenStack-API-Version":
        value = "baremetal " + value
    return Request("GET", "/v1/nodes/detail", headers={header: value})


TARGETS: dict[str, Build] = {
    "create node": _create("/v1/nodes", lambda _: hostile.node_bodies()),
    "patch node": _patch("node", "/v1/nodes", hostile.NODE_PATCH_FIELDS),
    "create port": _create("/v1/ports", lambda idents: hostile.port_bodies(
        [i for i in idents["node"] if len(i) == 36])),
    "patch port": _patch("port", "/v1/ports", hostile.PORT_PATCH_FIELDS),
    "create allocation": _create("/v1/allocations",
                                 lambda idents: hostile.allocation_bodies(idents["node"])),
    "patch allocation": _patch("allocation", "/v1/allocations",
                               hostile.ALLOCATION_PATCH_FIELDS),
    "provision state": _node_write("/states/provision", hostile.provision_bodies()),
    "power state": _node_write("/states/power", hostile.power_bodies()),
    "boot device": _node_write("/management/boot_device", hostile.boot_device_bodies()),
    "maintenance": _node_write("/maintenance", hostile.maintenance_bodies()),
    "traits": _node_write("/traits", hostile.traits_bodies()),
    "add trait": _add_trait,
    "agent lookup": _lookup,
    "agent heartbeat": _heartbeat,
    "version header": _version_header,
}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_hostile_input_keeps_the_api_whole(stack: Stack, target: str) -> None:
    build = TARGETS[target]

    @FUZZ_SETTINGS
    @given(data=st.data())
    def one_request(data: st.DataObject) -> None:
        stack.reset()
        stack.send(build(data, stack.idents()))

    one_request()
