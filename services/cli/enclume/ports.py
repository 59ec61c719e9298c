"""``enclume port create|list|show|set|unset|delete``: a node's network interfaces (MACs)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from services.cli.enclume import args
from services.cli.enclume.client import ApiClient, ApiError
from services.cli.enclume.context import CliError, cli, print_error
from services.cli.enclume.options import Fields, Format
from services.cli.enclume.output import render
from services.cli.enclume.patches import set_operations, unset_operations

app = typer.Typer(no_args_is_help=True, help="Ports: the MAC addresses of nodes' NICs.")

LIST_COLUMNS = ("uuid", "address", "node_uuid", "pxe_enabled", "physical_network")
LONG_COLUMNS = ("uuid", "address", "node_uuid", "pxe_enabled", "physical_network",
                "local_link_connection", "is_smartnic", "extra")
_MAC_RE = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$", re.IGNORECASE)

Port = Annotated[str, typer.Argument(metavar="PORT", help="Port UUID or MAC address.")]
Pairs = Annotated[list[str] | None, typer.Option(metavar="KEY=VALUE")]
Keys = Annotated[list[str] | None, typer.Option(metavar="KEY")]
PxeEnabled = Annotated[bool | None, typer.Option(
    "--pxe-enabled/--no-pxe-enabled", show_default=False,
    help="Whether the node network-boots from this port.")]
Smartnic = Annotated[bool | None, typer.Option("--is-smartnic/--no-is-smartnic",
                                               show_default=False)]


def node_uuid(client: ApiClient, node: str) -> str:
    """The UUID of a node given by name or UUID (the port API wants the UUID)."""
    return str(client.get(f"/v1/nodes/{node}", params={"fields": "uuid"})["uuid"])


def port_uuid(client: ApiClient, ident: str) -> str:
    """The UUID of a port given by UUID or MAC address."""
    if not _MAC_RE.match(ident):
        return ident
    found = client.get("/v1/ports", params={"address": ident.lower().replace("-", ":"),
                                            "fields": "uuid"})["ports"]
    if not found:
        raise CliError(f"no port has the MAC address {ident}")
    return str(found[0]["uuid"])


@app.command("create")
def create(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(metavar="MAC", help="The NIC's MAC address.")],
    node: Annotated[str, typer.Option(help="The node (name or UUID) the NIC belongs to.")],
    local_link_connection: Annotated[list[str] | None, typer.Option(
        "--local-link-connection", metavar="KEY=VALUE",
        help="Switch side: switch_id, port_id, switch_info.")] = None,
    physical_network: Annotated[str | None, typer.Option()] = None,
    pxe_enabled: PxeEnabled = None,
    is_smartnic: Smartnic = None,
    extra: Pairs = None,
    uuid: Annotated[str | None, typer.Option()] = None,
    fmt: Format = None,
) -> None:
    """Add a port (NIC) to a node."""
    state = cli(ctx)
    client = state.client
    body: dict[str, Any] = {
        "address": address, "node_uuid": node_uuid(client, node), "uuid": uuid,
        "physical_network": physical_network, "pxe_enabled": pxe_enabled,
        "is_smartnic": is_smartnic,
        "local_link_connection": args.pairs(local_link_connection, "--local-link-connection",
                                            decode=False),
        "extra": args.pairs(extra, "--extra"),
    }
    body = {key: value for key, value in body.items() if value not in (None, {})}
    render(client.post("/v1/ports", body), None, state.output_format(fmt))


@app.command("list")
def list_ports(
    ctx: typer.Context,
    node: Annotated[str | None, typer.Option(help="Only the ports of this node.")] = None,
    address: Annotated[str | None, typer.Option(metavar="MAC")] = None,
    long: Annotated[bool, typer.Option("--long", help="All fields.")] = False,
    fields: Fields = None,
    fmt: Format = None,
) -> None:
    """List ports (every page)."""
    columns = args.list_columns(fields, long, LIST_COLUMNS, LONG_COLUMNS)
    base = f"/v1/nodes/{node}/ports" if node else "/v1/ports"
    params: dict[str, Any] = {}
    if long:
        base += "/detail"
    else:
        params["fields"] = ",".join(columns)
    if address:
        params["address"] = address
    state = cli(ctx)
    render(state.client.list_all(base, "ports", params), columns, state.output_format(fmt))


@app.command("show")
def show(ctx: typer.Context, port: Port, fmt: Format = None) -> None:
    """Show one port."""
    state = cli(ctx)
    client = state.client
    render(client.get(f"/v1/ports/{port_uuid(client, port)}"), None, state.output_format(fmt))


@app.command("set")
def set_port(
    ctx: typer.Context,
    port: Port,
    address: Annotated[str | None, typer.Option(metavar="MAC")] = None,
    node: Annotated[str | None, typer.Option(help="Move the port to this node.")] = None,
    local_link_connection: Annotated[list[str] | None, typer.Option(
        "--local-link-connection", metavar="KEY=VALUE")] = None,
    physical_network: Annotated[str | None, typer.Option()] = None,
    pxe_enabled: PxeEnabled = None,
    is_smartnic: Smartnic = None,
    extra: Pairs = None,
    fmt: Format = None,
) -> None:
    """Change fields of a port; shows the port as it is afterwards."""
    state = cli(ctx)
    client = state.client
    scalars = {"address": address, "physical_network": physical_network,
               "pxe_enabled": pxe_enabled, "is_smartnic": is_smartnic,
               "node_uuid": node_uuid(client, node) if node else None}
    entries = {"local_link_connection": args.pairs(local_link_connection,
                                                   "--local-link-connection", decode=False),
               "extra": args.pairs(extra, "--extra")}
    operations = set_operations(scalars, entries)
    if not operations:
        raise typer.BadParameter("nothing to set: give at least one option",
                                 param_hint="options")
    render(client.patch(f"/v1/ports/{port_uuid(client, port)}", operations), None,
           state.output_format(fmt))


@app.command("unset")
def unset_port(
    ctx: typer.Context,
    port: Port,
    physical_network: Annotated[bool, typer.Option("--physical-network")] = False,
    local_link_connection: Keys = None,
    extra: Keys = None,
    fmt: Format = None,
) -> None:
    """Remove fields of a port, or keys of its maps."""
    state = cli(ctx)
    client = state.client
    operations = unset_operations(
        ["physical_network"] if physical_network else [],
        {"local_link_connection": local_link_connection or [], "extra": extra or []})
    if not operations:
        raise typer.BadParameter("nothing to unset: give at least one option",
                                 param_hint="options")
    render(client.patch(f"/v1/ports/{port_uuid(client, port)}", operations), None,
           state.output_format(fmt))


@app.command("delete")
def delete(ctx: typer.Context,
           ports: Annotated[list[str], typer.Argument(metavar="PORT...")]) -> None:
    """Delete ports. Exit 1 if any could not be deleted."""
    client = cli(ctx).client
    failed = False
    for port in ports:
        try:
            client.delete(f"/v1/ports/{port_uuid(client, port)}")
        except (ApiError, CliError) as exc:
            if isinstance(exc, ApiError) and exc.status == 0:
                raise
            print_error(exc)
            failed = True
            continue
        typer.echo(f"Deleted port {port}")
    if failed:
        raise typer.Exit(1)
