"""JSON patches (RFC 6902) built from ``set`` and ``unset`` options."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def pointer(*parts: str) -> str:
    """A JSON pointer: ``pointer("driver_info", "a/b")`` -> ``/driver_info/a~1b``."""
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def set_operations(scalars: Mapping[str, Any],
                   entries: Mapping[str, Mapping[str, Any]] | None = None
                   ) -> list[dict[str, Any]]:
    """``add`` operations: each scalar field given (not None), each key of each map."""
    operations = [{"op": "add", "path": pointer(field), "value": value}
                  for field, value in scalars.items() if value is not None]
    for field, values in (entries or {}).items():
        operations += [{"op": "add", "path": pointer(field, key), "value": value}
                       for key, value in values.items()]
    return operations


def unset_operations(fields: Iterable[str],
                     keys: Mapping[str, Iterable[str]] | None = None) -> list[dict[str, Any]]:
    """``remove`` operations: whole fields, and keys of map fields (``extra/labels`` too)."""
    operations = [{"op": "remove", "path": pointer(field)} for field in fields]
    for field, names in (keys or {}).items():
        operations += [{"op": "remove", "path": pointer(*field.split("/"), name)}
                       for name in names]
    return operations


def labels_operation(current: Mapping[str, str], new: Mapping[str, str]
                     ) -> list[dict[str, Any]]:
    """Set labels in ``extra/labels``, creating the map when the node has none yet."""
    if not new:
        return []
    return [{"op": "add", "path": pointer("extra", "labels"), "value": {**current, **new}}]
