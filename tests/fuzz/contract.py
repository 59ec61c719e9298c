"""What every stored node, port and allocation must look like when listed: the grammars of
the OpenAPI document (services/api/openapi_schemas.py, built from services/common/validation.py),
matched whole, the stored forms (lower-case UUIDs and MACs), the validation layer's length
limits, and strict JSON.

A value that breaks them was stored although the API's contract forbids it (a name with a
trailing newline, an upper-case UUID that can never be fetched, NaN, a 900,000-character
maintenance reason): the request that stored it should have been refused.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from services.api import node_rules
from services.api.openapi_schemas import CONDUCTOR_GROUP, MAC, NAME, TRAIT, UUID
from services.common.validation import FIELD_LIMITS, looks_like_uuid


def _whole(schema: dict[str, Any]) -> re.Pattern[str]:
    return re.compile(schema["pattern"])


UUID_GRAMMAR = _whole(UUID)
NAME_GRAMMAR = _whole(NAME)
TRAIT_GRAMMAR = _whole(TRAIT)
MAC_GRAMMAR = _whole(MAC)
GROUP = _whole(CONDUCTOR_GROUP)
# Limited node text fields, as rendered (the validation layer's FIELD_LIMITS).
NODE_TEXT_LIMITS = {field: FIELD_LIMITS[field] for field in ("name", "conductor_group",
                                                             *node_rules.TEXT_FIELDS)}


class _StoredForm:
    """A grammar matched whole, of a value stored lower-case (UUIDs, MACs)."""

    def __init__(self, grammar: re.Pattern[str]) -> None:
        self.grammar = grammar

    def fullmatch(self, value: str) -> bool:
        return value == value.lower() and self.grammar.fullmatch(value) is not None


UUID_STORED = _StoredForm(UUID_GRAMMAR)
MAC_STORED = _StoredForm(MAC_GRAMMAR)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} in the JSON")


def has_non_finite(value: Any) -> bool:
    """NaN or Infinity anywhere in ``value``: not JSON (RFC 8259), never to be accepted."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(has_non_finite(v) for v in value)
    return False


def listing_problems(text: str) -> list[str]:
    try:
        document = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        return [f"invalid JSON: {exc}"]
    problems: list[str] = []
    for node in document.get("nodes", []):
        problems += _node(node)
    for port in document.get("ports", []):
        problems += _check(port, "port", "address", MAC_STORED)
    for allocation in document.get("allocations", []):
        problems += _named(allocation, "allocation")
    return problems


def _check(document: dict[str, Any], kind: str, field: str, grammar: Any) -> list[str]:
    value = document.get(field)
    if value is None or (isinstance(value, str) and grammar.fullmatch(value)):
        return []
    return [f"{kind} {document.get('uuid')!r} with {field} {value!r}"[:300]]


def _named(document: dict[str, Any], kind: str) -> list[str]:
    problems = _check(document, kind, "uuid", UUID_STORED) + _check(document, kind, "name",
                                                                    NAME_GRAMMAR)
    if isinstance(document.get("name"), str) and looks_like_uuid(document["name"]):
        problems.append(f"{kind} {document.get('uuid')!r} named like a UUID")
    return problems


def _node(node: dict[str, Any]) -> list[str]:
    problems = _named(node, "node") + _check(node, "node", "conductor_group", GROUP)
    for trait in node.get("traits") or []:
        problems += _check({"uuid": node.get("uuid"), "trait": trait}, "node", "trait",
                           TRAIT_GRAMMAR)
    for field, limit in NODE_TEXT_LIMITS.items():
        value = node.get(field)
        if isinstance(value, str) and len(value) > limit:
            problems.append(f"node {node.get('uuid')!r} with a {field} of {len(value)} "
                            f"characters (at most {limit})")
    return problems
