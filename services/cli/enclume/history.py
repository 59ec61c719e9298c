"""``enclume node history list|show``: what happened to a node (errors, steps, power)."""

from __future__ import annotations

from typing import Annotated

import typer

from services.cli.enclume.context import cli
from services.cli.enclume.options import Format, Node
from services.cli.enclume.output import render

app = typer.Typer(no_args_is_help=True, help="The history of events of a node.")

LIST_COLUMNS = ("uuid", "created_at", "severity", "event")
LONG_COLUMNS = ("uuid", "created_at", "severity", "event_type", "conductor", "user", "event")


@app.command("list")
def list_history(
    ctx: typer.Context,
    node: Node,
    long: Annotated[bool, typer.Option("--long", help="Also event type, conductor, user.")]
    = False,
    fmt: Format = None,
) -> None:
    """List a node's events, oldest first."""
    state = cli(ctx)
    params = {"detail": "true"} if long else None
    events = state.client.list_all(f"/v1/nodes/{node}/history", "history", params)
    render(events, LONG_COLUMNS if long else LIST_COLUMNS, state.output_format(fmt))


@app.command("show")
def show_event(
    ctx: typer.Context,
    node: Node,
    event: Annotated[str, typer.Argument(metavar="EVENT", help="The event's UUID.")],
    fmt: Format = None,
) -> None:
    """Show one event."""
    state = cli(ctx)
    render(state.client.get(f"/v1/nodes/{node}/history/{event}"), None,
           state.output_format(fmt))
