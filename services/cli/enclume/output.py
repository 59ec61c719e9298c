"""Showing API data: a table (rich), JSON, YAML, plain values or CSV.

JSON and YAML print the data exactly as the API returned it (so they parse back to it); the
table shows the chosen columns, one row per item, or one row per field for a single item.
``value`` and ``csv`` are for scripts, as in the `openstack` client: ``value`` prints the
columns of each item on one line separated by spaces (a single item: one value per line),
``csv`` a header and one quoted row per item (a single item: ``"Field","Value"`` rows).
"""

from __future__ import annotations

import json
import sys
import typing
from collections.abc import Sequence
from typing import IO, Any

import yaml

from services.cli.enclume.config import OutputFormat

FORMATS: tuple[str, ...] = typing.get_args(OutputFormat)
# Formats that show the command's columns, not the API's document.
COLUMN_FORMATS = frozenset({"table", "value", "csv"})
DOCUMENT_FORMATS = frozenset({"json", "yaml"})
# Hyperlinks to sub-resources: noise in a table, kept in JSON and YAML.
LINK_FIELDS = frozenset({"links", "ports", "states", "portgroups", "volume"})
_ACRONYMS = {"uuid": "UUID", "id": "ID", "mac": "MAC", "pxe": "PXE", "url": "URL", "os": "OS",
             "pc": "PC", "pcs": "PCs", "eta": "ETA"}
# Wide enough that a table is never wrapped when the output goes to a file or a pipe.
_PIPE_WIDTH = 10_000


def heading(field: str) -> str:
    """``provision_state`` -> ``Provision State``, ``instance_uuid`` -> ``Instance UUID``."""
    return " ".join(_ACRONYMS.get(word, word.capitalize()) for word in field.split("_"))


def cell(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2)


def to_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False,
                          allow_unicode=True).rstrip("\n")


def table_columns(data: Any, columns: Sequence[str] | None) -> list[str]:
    if columns:
        return list(columns)
    sample = data if isinstance(data, dict) else (data[0] if data else {})
    return [name for name in sample if name not in LINK_FIELDS]


def build_table(data: dict[str, Any] | list[dict[str, Any]],
                columns: Sequence[str] | None = None) -> Any:
    from rich.table import Table
    from rich.text import Text  # Text, not str: values must not be read as rich markup

    names = table_columns(data, columns)
    if isinstance(data, dict):
        table = Table("Field", "Value")
        for name in names:
            table.add_row(Text(name), Text(cell(data.get(name))))
        return table
    table = Table(*(heading(name) for name in names))
    for item in data:
        table.add_row(*(Text(cell(item.get(name))) for name in names))
    return table


def to_values(data: dict[str, Any] | list[dict[str, Any]],
              columns: Sequence[str] | None) -> str:
    names = table_columns(data, columns)
    if isinstance(data, dict):
        return "\n".join(cell(data.get(name)) for name in names)
    return "\n".join(" ".join(cell(item.get(name)) for name in names) for item in data)


def to_csv(data: dict[str, Any] | list[dict[str, Any]], columns: Sequence[str] | None) -> str:
    import csv
    import io

    names = table_columns(data, columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    if isinstance(data, dict):
        writer.writerow(["Field", "Value"])
        writer.writerows([name, cell(data.get(name))] for name in names)
    else:
        writer.writerow([heading(name) for name in names])
        writer.writerows([cell(item.get(name)) for name in names] for item in data)
    return buffer.getvalue().rstrip("\n")


def format_output(data: Any, columns: Sequence[str] | None, fmt: str) -> str:
    """The text ``render`` prints, without colours."""
    if fmt == "json":
        return to_json(data)
    if fmt == "yaml":
        return to_yaml(data)
    if fmt == "value":
        return to_values(data, columns)
    if fmt == "csv":
        return to_csv(data, columns)
    import io

    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=_PIPE_WIDTH, color_system=None).print(build_table(data, columns))
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def render(data: Any, columns: Sequence[str] | None = None, fmt: str = "table",
           out: IO[str] | None = None) -> None:
    """Print ``data`` (a dict or a list of dicts) on stdout in ``fmt``."""
    stream = out or sys.stdout
    if fmt != "table" or not stream.isatty():
        text = format_output(data, columns, fmt)
        if text or fmt != "value":  # no lines at all for no items: a `while read` gets none
            print(text, file=stream, flush=True)
        return
    from rich.console import Console

    Console(file=stream).print(build_table(data, columns))
