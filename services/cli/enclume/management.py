"""``enclume node boot device set|show``, ``node maintenance set|unset``, ``node validate``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from services.cli.enclume import selection
from services.cli.enclume.context import cli
from services.cli.enclume.options import Format, Node, Nodes, SelectLabel, SelectState
from services.cli.enclume.output import COLUMN_FORMATS, render
from services.cli.enclume.requests import each_node

app = typer.Typer()
boot_app = typer.Typer(no_args_is_help=True, help="The boot device of a node.")
device_app = typer.Typer(no_args_is_help=True, help="Set or show the boot device.")
boot_app.add_typer(device_app, name="device")
maintenance_app = typer.Typer(no_args_is_help=True,
                              help="Maintenance: the conductor leaves the node alone.")

VALIDATE_COLUMNS = ("interface", "result", "reason")


@device_app.command("set")
def set_boot_device(
    ctx: typer.Context,
    node: Node,
    device: Annotated[str, typer.Argument(help="pxe, disk, cdrom, bios, safe ...")],
    persistent: Annotated[bool, typer.Option(
        "--persistent", help="For every boot, not only the next one.")] = False,
) -> None:
    """Set the device the node boots from."""
    cli(ctx).client.put(f"/v1/nodes/{node}/management/boot_device",
                        {"boot_device": device, "persistent": persistent})
    typer.echo(f"{node}: boot device {device}{' (persistent)' if persistent else ''}")


@device_app.command("show")
def show_boot_device(
    ctx: typer.Context,
    node: Node,
    supported: Annotated[bool, typer.Option(
        "--supported", help="The devices the node can boot from instead.")] = False,
    fmt: Format = None,
) -> None:
    """Show the boot device (as the BMC reports it)."""
    state = cli(ctx)
    path = f"/v1/nodes/{node}/management/boot_device"
    data = state.client.get(path + "/supported" if supported else path)
    render(data, None, state.output_format(fmt))


def _each(ctx: typer.Context, nodes: list[str], method: str, body: Any, done: str) -> None:
    client = cli(ctx).client
    path = "/v1/nodes/{}/maintenance".format

    def call(node: str) -> None:
        if method == "PUT":
            client.put(path(node), body)
        else:
            client.delete(path(node))

    each_node(nodes, call, lambda node: f"{selection.shown(node)}: {done}")


@maintenance_app.command("set")
def set_maintenance(
    ctx: typer.Context,
    nodes: Nodes = None,
    label: SelectLabel = None,
    provision_state: SelectState = None,
    reason: Annotated[str | None, typer.Option(help="Why (shown as maintenance_reason).")]
    = None,
) -> None:
    """Put nodes in maintenance."""
    chosen = selection.resolve(cli(ctx), nodes, label, provision_state)
    _each(ctx, chosen, "PUT", {"reason": reason} if reason else {}, "maintenance on")


@maintenance_app.command("unset")
def unset_maintenance(ctx: typer.Context, nodes: Nodes = None, label: SelectLabel = None,
                      provision_state: SelectState = None) -> None:
    """Take nodes out of maintenance (also clears their fault)."""
    chosen = selection.resolve(cli(ctx), nodes, label, provision_state)
    _each(ctx, chosen, "DELETE", None, "maintenance off")


def validation_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The API's ``{interface: {result, reason}}`` as table rows, sorted by interface."""
    return [{"interface": name, "result": value.get("result"), "reason": value.get("reason")}
            for name, value in sorted(result.items()) if isinstance(value, dict)]


@app.command("validate")
def validate(ctx: typer.Context, node: Node, fmt: Format = None) -> None:
    """Check each interface of a node: is everything it needs there?"""
    state = cli(ctx)
    result = state.client.get(f"/v1/nodes/{node}/validate")
    chosen = state.output_format(fmt)
    render(validation_rows(result) if chosen in COLUMN_FORMATS else result, VALIDATE_COLUMNS,
           chosen)
