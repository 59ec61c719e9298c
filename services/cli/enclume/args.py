"""Parsing what operators type: ``key=value`` pairs, JSON given inline or ``@file``, labels,
config drives. Pure functions; a bad value raises ``typer.BadParameter`` (exit code 2)."""

from __future__ import annotations

import base64
import gzip
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import typer
import yaml

from services.common.yaml_errors import describe_yaml_error

GZIP_MAGIC = b"\x1f\x8b"


def split_pair(item: str, option: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=option)
    return key, value


def decode_value(raw: str) -> Any:
    """``4`` -> 4, ``true`` -> True, ``{"a": 1}`` -> a dict; anything else stays a string."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def pairs(items: Iterable[str] | None, option: str, *, decode: bool = True) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}`` (values JSON-decoded when ``decode``)."""
    result: dict[str, Any] = {}
    for item in items or ():
        key, value = split_pair(item, option)
        result[key] = decode_value(value) if decode else value
    return result


def label_filter(items: Iterable[str] | None, option: str = "--label") -> dict[str, str]:
    return pairs(items, option, decode=False)


def labels_of(node: dict[str, Any]) -> dict[str, str]:
    extra = node.get("extra") or {}
    labels = extra.get("labels") if isinstance(extra, dict) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def matches_labels(node: dict[str, Any], wanted: dict[str, str]) -> bool:
    labels = labels_of(node)
    return all(labels.get(key) == value for key, value in wanted.items())


def json_or_file(raw: str, option: str) -> Any:
    """A JSON value given inline, or ``@path`` to a JSON or YAML file, or ``-`` for stdin."""
    if raw == "-":
        return _parse_document(sys.stdin.read(), "stdin", option)
    if raw.startswith("@"):
        path = Path(raw[1:]).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {path}: {exc.strerror}",
                                     param_hint=option) from None
        return _parse_document(text, str(path), option)
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise typer.BadParameter(f"invalid JSON ({exc}); give JSON, @FILE or -",
                                 param_hint=option) from None


def _parse_document(text: str, source: str, option: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise typer.BadParameter(f"{source} is neither JSON nor YAML: "
                                 f"{describe_yaml_error(exc)}",
                                 param_hint=option) from None


def steps(raw: str | None, option: str) -> list[dict[str, Any]] | None:
    """Clean or deploy steps: a JSON list of objects (inline, @file or -)."""
    if raw is None:
        return None
    value = json_or_file(raw, option)
    if not isinstance(value, list) or not all(isinstance(step, dict) for step in value):
        raise typer.BadParameter("expected a list of step objects, e.g. "
                                 '[{"interface": "deploy", "step": "erase_devices_metadata"}]',
                                 param_hint=option)
    return value


def config_drive(raw: str | None) -> str | dict[str, Any] | None:
    """A config drive as the API takes it.

    A URL stays a URL; a JSON object (inline or in a file) is sent as JSON; a file holding an
    ISO image is gzipped and base64-encoded; a file already gzipped is base64-encoded; a file
    of base64 text is sent as it is.
    """
    if raw is None:
        return None
    if raw.startswith(("http://", "https://")):
        return raw
    if raw.lstrip().startswith("{"):
        value = json_or_file(raw, "--config-drive")
        if not isinstance(value, dict):
            raise typer.BadParameter("expected a JSON object", param_hint="--config-drive")
        return value
    path = Path(raw).expanduser()
    if not path.is_file():
        raise typer.BadParameter(f"{raw!r} is neither a JSON object, a URL nor a file",
                                 param_hint="--config-drive")
    return encode_config_drive(path.read_bytes())


def encode_config_drive(data: bytes) -> str | dict[str, Any]:
    try:
        value = json.loads(data)
        if isinstance(value, dict):
            return value
    except ValueError:
        pass
    if data[:2] == GZIP_MAGIC:
        return base64.b64encode(data).decode()
    compact = b"".join(data.split())
    try:
        decoded = base64.b64decode(compact, validate=True)
    except ValueError:
        decoded = b""
    if decoded[:2] == GZIP_MAGIC:
        return compact.decode()
    return base64.b64encode(gzip.compress(data)).decode()


def field_list(raw: str | None) -> list[str] | None:
    """``--fields uuid,name`` -> ``["uuid", "name"]``."""
    if raw is None:
        return None
    fields = [f.strip() for f in raw.split(",") if f.strip()]
    if not fields:
        raise typer.BadParameter("expected field names separated by commas",
                                 param_hint="--fields")
    return fields


def list_columns(fields: str | None, long: bool, short: Sequence[str],
                 every: Sequence[str]) -> list[str]:
    """A ``list`` command's columns: ``--fields``', or ``short`` (``every`` with ``--long``);
    ``--fields`` and ``--long`` cannot be combined."""
    wanted = field_list(fields)
    if wanted and long:
        raise typer.BadParameter("--fields and --long cannot be combined", param_hint="--long")
    return wanted or list(every if long else short)
