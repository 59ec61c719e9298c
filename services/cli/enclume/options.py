"""Options shared by several commands."""

from __future__ import annotations

from typing import Annotated

import typer

from services.cli.enclume.output import FORMATS

DEFAULT_WAIT_TIMEOUT_S = 3600.0


def _check_format(value: str | None) -> str | None:
    if value is not None and value not in FORMATS:
        raise typer.BadParameter(f"expected one of {', '.join(FORMATS)}")
    return value


Format = Annotated[str | None, typer.Option(
    "-f", "--format", metavar="|".join(FORMATS), callback=_check_format,
    help="Output format (default: the global -f, else the configuration, else table).")]
Fields = Annotated[str | None, typer.Option(
    "--fields", metavar="F1,F2", help="Only these fields, separated by commas.")]
Wait = Annotated[bool, typer.Option(
    "--wait", help="Wait until the node(s) finish, showing progress; exit 1 if any fails.")]
Timeout = Annotated[float, typer.Option(
    "--timeout", metavar="SECONDS", min=0,
    help="With --wait: give up after this long (0: no limit).")]
Nodes = Annotated[list[str] | None, typer.Argument(
    metavar="NODE", show_default=False,
    help="Node names or UUIDs; or none, and --label to select them.")]
SelectLabel = Annotated[list[str] | None, typer.Option(
    "--label", metavar="KEY=VALUE", show_default=False,
    help="Instead of NODE...: the nodes with this label (repeat: all of them), as "
         "`node list --label`.")]
SelectState = Annotated[str | None, typer.Option(
    "--provision-state", metavar="STATE", show_default=False,
    help="With --label: only the nodes in this provision state.")]
Node = Annotated[str, typer.Argument(metavar="NODE", help="Node name or UUID.")]
