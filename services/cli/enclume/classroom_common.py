"""What the classroom commands (image, room, session, job) share: paths of Enclume's own API
and how a document becomes table rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import typer

from services.cli.enclume.client import ENCLUME_PREFIX
from services.cli.enclume.context import cli
from services.cli.enclume.output import COLUMN_FORMATS, render


def path(*parts: str) -> str:
    return "/".join((ENCLUME_PREFIX, *parts))


def names(items: Any, key: str = "name") -> str:
    """``[{"name": "pc-01"}, ...]`` or ``["a", "b"]`` -> ``pc-01, ...`` for a table cell."""
    if not items:
        return ""
    return ", ".join(str(item.get(key) or item.get("uuid")) if isinstance(item, dict)
                     else str(item) for item in items)


def show(ctx: typer.Context, data: Any, columns: Sequence[str] | None, fmt: str | None,
         rows: Callable[[Any], Any] | None = None) -> None:
    """``data`` as the API gave it in JSON and YAML; ``rows(data)`` in the column formats."""
    chosen = cli(ctx).output_format(fmt)
    if rows is not None and chosen in COLUMN_FORMATS:
        data = [rows(item) for item in data] if isinstance(data, list) else rows(data)
    render(data, columns, chosen)


def listing(ctx: typer.Context, collection: str, params: dict[str, Any] | None = None
            ) -> list[dict[str, Any]]:
    """Every item of ``/enclume/v1/<collection>`` (all pages)."""
    return cli(ctx).client.list_all(path(collection), collection, params)


def plan_cells(document: dict[str, Any]) -> dict[str, Any]:
    """A room's or session's ``restore_lead`` and ``next_action`` as table cells:
    ``1800 s (measured: longest of 3 restores 1200 s)``, ``restore-full at 2027-…Z``."""
    cells: dict[str, Any] = {}
    lead = document.get("restore_lead")
    if isinstance(lead, dict):
        if lead.get("source") == "measured":
            cells["restore_lead"] = (f"{lead.get('seconds')} s (measured: longest of "
                                     f"{lead.get('samples')} restore(s) "
                                     f"{lead.get('longest_restore_s')} s)")
        else:
            cells["restore_lead"] = f"{lead.get('seconds')} s (the setting: no restore yet)"
    action = document.get("next_action")
    if "next_action" in document:
        cells["next_action"] = (f"{action.get('action')} at {action.get('at')}"
                                if isinstance(action, dict) else "nothing planned")
    return cells
