"""The inputs issue #15 reported, sent once each through the same properties as the fuzzing
(``Stack.send``): the random search may or may not meet them within its budget; these always
run, so each class the issue names stays covered."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fuzz.stack import LATEST, NODES, Request, Stack

NODE = NODES[0]["uuid"]
HEADERS = {"X-OpenStack-Ironic-API-Version": LATEST}
UPPER_UUID = "6018366C-F658-47A7-9ED3-4FE53A096533"

CASES: dict[str, tuple[str, str, Any]] = {
    "surrogate in node extra": ("POST", "/v1/nodes",
                                {"driver": "fake-hardware", "extra": {"k": "\ud800"}}),
    "surrogate in port extra": ("POST", "/v1/ports", {"address": "52:54:00:0e:0e:01",
                                                      "node_uuid": NODE,
                                                      "extra": {"\udfff": 1}}),
    "surrogate in allocation extra": ("POST", "/v1/allocations",
                                      {"resource_class": "fuzz", "extra": {"k": "\ud800"}}),
    "surrogate in description": ("POST", "/v1/nodes", {"driver": "fake-hardware",
                                                       "description": "a\ud800"}),
    "surrogate in owner": ("POST", "/v1/nodes", {"driver": "fake-hardware", "owner": "\udc00"}),
    "surrogate in maintenance reason": ("PUT", f"/v1/nodes/{NODE}/maintenance",
                                        {"reason": "\ud800"}),
    "uuid null": ("POST", "/v1/nodes", {"driver": "fake-hardware", "uuid": None}),
    "NaN in extra": ("POST", "/v1/nodes", {"driver": "fake-hardware",
                                           "extra": {"n": float("nan")}}),
    "Infinity in properties": ("POST", "/v1/nodes", {"driver": "fake-hardware",
                                                     "properties": {"i": float("inf")}}),
    "non-ASCII digit patch index": ("PATCH", f"/v1/nodes/{NODE}",
                                    [{"op": "replace", "path": "/extra/list/\u00b2",
                                      "value": 1}]),
    "5,000-digit patch index": ("PATCH", f"/v1/nodes/{NODE}",
                                [{"op": "replace", "path": "/extra/list/" + "1" * 5000,
                                  "value": 1}]),
    "dict for a resource class": ("POST", "/v1/allocations", {"resource_class": {"a": 1}}),
    "trailing newline in a name": ("POST", "/v1/nodes", {"driver": "fake-hardware",
                                                         "name": "newline\n"}),
    "trailing newline in a MAC": ("POST", "/v1/ports", {"address": "52:54:00:0e:0e:02\n",
                                                        "node_uuid": NODE}),
    "trailing newline in a trait": ("PUT", f"/v1/nodes/{NODE}/traits",
                                    {"traits": ["CUSTOM_X\n"]}),
    "trailing newline in a conductor group": ("POST", "/v1/nodes",
                                              {"driver": "fake-hardware",
                                               "conductor_group": "g\n"}),
    "upper-case port UUID": ("POST", "/v1/ports", {"address": "52:54:00:0e:0e:03",
                                                   "node_uuid": NODE, "uuid": UPPER_UUID}),
    "UUID-like allocation name": ("POST", "/v1/allocations",
                                  {"name": "11111111-2222-4333-8444-555555555555"}),
    "900,000-character maintenance reason": ("PUT", f"/v1/nodes/{NODE}/maintenance",
                                             {"reason": "R" * 900_000}),
    "100,000-character resource class": ("POST", "/v1/nodes",
                                         {"driver": "fake-hardware",
                                          "resource_class": "r" * 100_000}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_input_of_the_issue_keeps_the_api_whole(stack: Stack, case: str) -> None:
    method, path, body = CASES[case]
    stack.reset()
    stack.send(Request(method, path, headers=dict(HEADERS), body=body, has_body=True))


def test_a_version_header_of_thousands_of_digits_is_refused(stack: Stack) -> None:
    stack.reset()
    status = stack.send(Request("GET", "/v1/nodes",
                                headers={"X-OpenStack-Ironic-API-Version": "1." + "9" * 5000}))
    assert status in (400, 406)
