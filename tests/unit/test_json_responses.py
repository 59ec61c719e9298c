"""The API's JSON encoder (services/api/responses.py) writes what ``json.dumps`` wrote before
it, compact and in UTF-8, and still renders what ``json`` alone would refuse."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.api.responses import SafeJSONResponse

DOCUMENTS: list[Any] = [
    {"nodes": [{"uuid": "1be26c0b-03f2-4d2d-ae87-c02d7f33c123", "name": None, "maintenance": False,
                "properties": {"cpus": 4, "memory_mb": 4096, "ratio": 0.1, "big": 1e20,
                               "tiny": -0.0, "huge": 2**70},
                "extra": {"é": "ü\n\t\x00\x7f\u2028\"\\ /", "nested": [[], {}, [1, [2]]]}}]},
    [],
    "text",
    12,
]


@pytest.mark.parametrize("document", DOCUMENTS, ids=["node", "empty", "string", "number"])
def test_the_bytes_are_those_json_dumps_wrote(document: Any) -> None:
    expected = json.dumps(document, ensure_ascii=False, allow_nan=False,
                          separators=(",", ":")).encode()
    assert SafeJSONResponse(document).body == expected


def test_what_json_refuses_is_still_rendered() -> None:
    document = {"extra": {"k": "bad \ud800 value"}, "cpus": float("nan"),
                "list": [float("inf"), float("-inf")]}
    assert json.loads(SafeJSONResponse(document).body) == {
        "extra": {"k": "bad ? value"}, "cpus": None, "list": [None, None]}
    assert json.loads(SafeJSONResponse({"cpus": float("nan")}).body) == {"cpus": None}
