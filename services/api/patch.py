"""JSON Patch (RFC 6902) as Ironic accepts it: ``add``, ``replace`` and ``remove``.

The patch is applied to a plain copy of the resource; the caller validates the result and
writes it only if every operation succeeded, so a bad patch changes nothing.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from services.common.exceptions import Invalid

SUPPORTED_OPS = ("add", "replace", "remove")
# ASCII digits only (str.isdigit takes any script's), and few enough for any real list.
_INDEX = re.compile(r"[0-9]{1,9}")


def _split(path: Any) -> list[str]:
    if not isinstance(path, str) or not path.startswith("/") or path == "/":
        raise Invalid(f"Invalid patch path {path!r}: a path looks like /field or /field/key.")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, op: str, path: str) -> int:
    if token == "-" and op == "add":
        return len(container)
    if _INDEX.fullmatch(token) is None:
        raise Invalid(f"Invalid list index {token!r} in patch path {path}.")
    index = int(token)
    limit = len(container) if op == "add" else len(container) - 1
    if index > limit:
        raise Invalid(f"List index {index} is out of range in patch path {path}.")
    return index


def validate_patch(patch: Any) -> list[dict[str, Any]]:
    if not isinstance(patch, list) or not patch:
        raise Invalid("Invalid patch: expected a non-empty JSON list of operations.")
    for operation in patch:
        if not isinstance(operation, dict):
            raise Invalid(f"Invalid patch operation {operation!r}: expected an object.")
        op = operation.get("op")
        if op not in SUPPORTED_OPS:
            raise Invalid(f"Invalid patch operation {op!r}: supported are "
                          f"{', '.join(SUPPORTED_OPS)}.")
        _split(operation.get("path"))
        if op in ("add", "replace") and "value" not in operation:
            raise Invalid(f"Invalid patch operation: '{op}' on {operation['path']} needs a "
                          "value.")
        unknown = set(operation) - {"op", "path", "value"}
        if unknown:
            raise Invalid(f"Invalid patch operation: unknown member(s) {sorted(unknown)}.")
    return patch


def apply_patch(document: dict[str, Any], patch: list[dict[str, Any]]) -> dict[str, Any]:
    result = copy.deepcopy(document)
    for operation in validate_patch(patch):
        op, path = operation["op"], operation["path"]
        tokens = _split(path)
        parent: Any = result
        for token in tokens[:-1]:
            if isinstance(parent, dict) and token in parent:
                parent = parent[token]
            elif isinstance(parent, list):
                parent = parent[_index(parent, token, "replace", path)]
            else:
                raise Invalid(f"Can't {op} {path}: {token!r} does not exist.")
            if parent is None:
                raise Invalid(f"Can't {op} {path}: {token!r} is not set.")
        last = tokens[-1]
        if isinstance(parent, dict):
            if op in ("remove", "replace") and last not in parent:
                # Ironic's PatchError around the jsonpatch library's text (clients match on it)
                raise Invalid(f"Couldn't apply patch '{operation!r}'. Reason: can't {op} a "
                              f"non-existent object '{last}'")
            if op == "remove":
                del parent[last]
            else:
                parent[last] = operation["value"]
        elif isinstance(parent, list):
            index = _index(parent, last, op, path)
            if op == "remove":
                del parent[index]
            elif op == "replace":
                parent[index] = operation["value"]
            else:
                parent.insert(index, operation["value"])
        else:
            raise Invalid(f"Can't {op} {path}: its parent is not an object or a list.")
    return result
