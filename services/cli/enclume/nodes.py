"""``enclume node create|list|show|set|unset|delete``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from services.cli.enclume import args, selection
from services.cli.enclume.client import ApiClient, ApiError
from services.cli.enclume.context import cli, print_error
from services.cli.enclume.node_options import INTERFACES, TEXT_FIELDS, NodeFields, node_fields
from services.cli.enclume.options import Fields, Format, Node, Nodes, SelectLabel, SelectState
from services.cli.enclume.output import COLUMN_FORMATS, render
from services.cli.enclume.patches import labels_operation, set_operations, unset_operations
from services.cli.enclume.requests import each_node

app = typer.Typer()

LIST_COLUMNS = ("uuid", "name", "instance_uuid", "power_state", "provision_state",
                "maintenance")
LONG_COLUMNS = ("uuid", "name", "driver", "resource_class", "power_state", "provision_state",
                "target_provision_state", "maintenance", "maintenance_reason", "conductor",
                "last_error")
DICT_OPTIONS = {"driver_info": "--driver-info", "properties": "--property", "extra": "--extra",
                "instance_info": "--instance-info"}

Keys = Annotated[list[str] | None, typer.Option(metavar="KEY")]
IfaceFlag = Annotated[bool, typer.Option(help="Back to the hardware type's default.")]


def node_path(ident: str) -> str:
    return f"/v1/nodes/{ident}"


def show_node(ctx: typer.Context, node: dict[str, Any], fmt: str | None,
              columns: list[str] | None = None) -> None:
    render(node, columns, cli(ctx).output_format(fmt))


def _interfaces(values: dict[str, Any]) -> dict[str, Any]:
    return {f"{name}_interface": values[name] for name in INTERFACES}


@app.command("create")
@node_fields
def create(
    ctx: typer.Context,
    driver: Annotated[str, typer.Option(help="Hardware type: ipmi, redfish, wol, "
                                             "fake-hardware ...")],
    uuid: Annotated[str | None, typer.Option()] = None,
    fmt: Format = None,
    *,
    fields: NodeFields,
) -> None:
    """Enroll a node (it starts in enroll); shows it.

    --driver-info values stay strings; other KEY=VALUE values are JSON when they parse as JSON
    (4, true, {...}), else strings. Labels go to extra["labels"].
    """
    extra_values = args.pairs(fields["extra"], "--extra")
    labels = args.label_filter(fields["label"])
    if labels:
        extra_values["labels"] = {**args.labels_of({"extra": extra_values}), **labels}
    body: dict[str, Any] = {
        "driver": driver, "uuid": uuid, **{name: fields[name] for name in TEXT_FIELDS},
        "automated_clean": fields["automated_clean"],
        **fields.maps(extra=extra_values),
        "network_data": fields.network_data(),
        **fields.interfaces(),
    }
    body = {key: value for key, value in body.items() if value not in (None, {})}
    show_node(ctx, cli(ctx).client.post("/v1/nodes", body), fmt)


@app.command("list")
def list_nodes(
    ctx: typer.Context,
    provision_state: Annotated[str | None, typer.Option(help="Only nodes in this state.")]
    = None,
    maintenance: Annotated[bool | None, typer.Option(
        "--maintenance/--no-maintenance", show_default=False,
        help="Only nodes in (or not in) maintenance.")] = None,
    driver: Annotated[str | None, typer.Option(help="Only nodes of this hardware type.")]
    = None,
    label: Annotated[list[str] | None, typer.Option(
        metavar="KEY=VALUE", help="Only nodes with this label (repeat: all of them).")] = None,
    long: Annotated[bool, typer.Option("--long", help="All fields (more columns).")] = False,
    fields: Fields = None,
    fmt: Format = None,
) -> None:
    """List nodes (every page)."""
    columns = args.list_columns(fields, long, LIST_COLUMNS, LONG_COLUMNS)
    labels = args.label_filter(label)
    params: dict[str, Any] = {}
    path = "/v1/nodes/detail" if long else "/v1/nodes"
    if not long:
        fetched = columns + (["extra"] if labels and "extra" not in columns else [])
        params["fields"] = ",".join(fetched)
    for key, value in (("provision_state", provision_state), ("driver", driver)):
        if value is not None:
            params[key] = value
    if maintenance is not None:
        params["maintenance"] = str(maintenance).lower()
    state = cli(ctx)
    nodes = selection.find_nodes(state.client, path, params, labels)
    if labels and not long and "extra" not in columns:
        nodes = [{k: v for k, v in node.items() if k != "extra"} for node in nodes]
    render(nodes, columns, state.output_format(fmt))


@app.command("show")
def show(ctx: typer.Context, node: Node, fields: Fields = None, fmt: Format = None) -> None:
    """Show one node."""
    wanted = args.field_list(fields)
    params = {"fields": ",".join(wanted)} if wanted else None
    show_node(ctx, cli(ctx).client.get(node_path(node), params=params), fmt, wanted)


@app.command("set")
@node_fields
def set_node(
    ctx: typer.Context,
    node: Annotated[str | None, typer.Argument(
        metavar="NODE", show_default=False,
        help="Node name or UUID; or none, and --match-label to select nodes.")] = None,
    match_label: Annotated[list[str] | None, typer.Option(
        metavar="KEY=VALUE", show_default=False,
        help="Instead of NODE: the nodes with this label (repeat: all of them); --label sets "
             "labels.")] = None,
    provision_state: Annotated[str | None, typer.Option(
        metavar="STATE", show_default=False,
        help="With --match-label: only the nodes in this provision state.")] = None,
    driver: Annotated[str | None, typer.Option()] = None,
    instance_uuid: Annotated[str | None, typer.Option()] = None,
    fmt: Format = None,
    *,
    fields: NodeFields,
) -> None:
    """Change fields of a node (a JSON patch); shows the node as it is afterwards.

    With --match-label: of every node selected; shows the fields changed of each."""
    name = fields["name"]
    scalars: dict[str, Any] = {
        "name": name, "description": fields["description"], "driver": driver,
        **{key: fields[key] for key in ("resource_class", "conductor_group", "owner", "lessee")},
        "instance_uuid": instance_uuid, "automated_clean": fields["automated_clean"],
        "network_data": fields.network_data(),
        **fields.interfaces(),
    }
    operations = set_operations(scalars, fields.maps())
    labels = args.label_filter(fields["label"])
    if not operations and not labels:
        raise typer.BadParameter("nothing to set: give at least one option",
                                 param_hint="options")
    chosen = selection.selector(match_label, provision_state, "--match-label")
    unique = [option for option, value in (("--name", name), ("--instance-uuid", instance_uuid))
              if value is not None]
    if chosen and unique:
        raise typer.BadParameter("is one node's own: it cannot be set on selected nodes",
                                 param_hint=unique[0])
    state = cli(ctx)
    idents = selection.resolve(state, [node] if node else None, match_label, provision_state,
                               "--match-label")
    if not chosen:
        show_node(ctx, _patch(state.client, idents[0], operations, labels), fmt)
        return
    changed, failed = [], False
    for ident in idents:
        try:
            changed.append(_patch(state.client, ident, operations, labels))
        except ApiError as exc:
            if exc.status == 0:
                raise
            print_error(exc)
            failed = True
    fields = list(dict.fromkeys(changed_fields(operations) + (["extra"] if labels else [])))
    chosen_format = state.output_format(fmt)
    if changed:
        render(changed_rows(changed, fields) if chosen_format in COLUMN_FORMATS
               else changed,
               ["node", *fields], chosen_format)
    if failed:
        raise typer.Exit(1)


def _patch(client: ApiClient, ident: str, operations: list[dict[str, Any]],
           labels: dict[str, str]) -> dict[str, Any]:
    """Apply ``operations`` and set ``labels`` (merged into the node's own) on one node."""
    if labels:
        current = client.get(node_path(ident), params={"fields": "extra"})
        operations = operations + labels_operation(args.labels_of(current), labels)
    node: dict[str, Any] = client.patch(node_path(ident), operations)
    return node


def changed_fields(operations: list[dict[str, Any]]) -> list[str]:
    """The top-level fields a JSON patch touches, in order: ``/instance_info/a`` ->
    ``instance_info``."""
    return list(dict.fromkeys(op["path"].split("/")[1] for op in operations))


def changed_rows(nodes: list[dict[str, Any]], fields: list[str]) -> list[dict[str, Any]]:
    """Table rows of nodes changed together: the node (name, else UUID) and those fields."""
    return [{"node": node.get("name") or node.get("uuid"),
             **{name: node.get(name) for name in fields}} for node in nodes]


@app.command("unset")
def unset_node(
    ctx: typer.Context,
    node: Node,
    name: Annotated[bool, typer.Option("--name")] = False,
    description: Annotated[bool, typer.Option("--description")] = False,
    resource_class: Annotated[bool, typer.Option("--resource-class")] = False,
    conductor_group: Annotated[bool, typer.Option("--conductor-group")] = False,
    owner: Annotated[bool, typer.Option("--owner")] = False,
    lessee: Annotated[bool, typer.Option("--lessee")] = False,
    instance_uuid: Annotated[bool, typer.Option("--instance-uuid")] = False,
    network_data: Annotated[bool, typer.Option("--network-data")] = False,
    driver_info: Keys = None,
    property: Keys = None,
    extra: Keys = None,
    instance_info: Keys = None,
    label: Keys = None,
    boot_interface: IfaceFlag = False, deploy_interface: IfaceFlag = False,
    inspect_interface: IfaceFlag = False, management_interface: IfaceFlag = False,
    network_interface: IfaceFlag = False, power_interface: IfaceFlag = False,
    console_interface: IfaceFlag = False, raid_interface: IfaceFlag = False,
    rescue_interface: IfaceFlag = False, storage_interface: IfaceFlag = False,
    vendor_interface: IfaceFlag = False, bios_interface: IfaceFlag = False,
    fmt: Format = None,
) -> None:
    """Remove fields of a node, or keys of its maps (--driver-info KEY, --label KEY ...)."""
    flags = {
        "name": name, "description": description, "resource_class": resource_class,
        "conductor_group": conductor_group, "owner": owner, "lessee": lessee,
        "instance_uuid": instance_uuid, "network_data": network_data,
        **_interfaces({
            "boot": boot_interface, "deploy": deploy_interface,
            "inspect": inspect_interface, "management": management_interface,
            "network": network_interface, "power": power_interface,
            "console": console_interface, "raid": raid_interface,
            "rescue": rescue_interface, "storage": storage_interface,
            "vendor": vendor_interface, "bios": bios_interface}),
    }
    keys = {"driver_info": driver_info or [], "properties": property or [],
            "extra": extra or [], "instance_info": instance_info or [],
            "extra/labels": label or []}
    operations = unset_operations([field for field, chosen in flags.items() if chosen], keys)
    if not operations:
        raise typer.BadParameter("nothing to unset: give at least one option",
                                 param_hint="options")
    show_node(ctx, cli(ctx).client.patch(node_path(node), operations), fmt)


@app.command("delete")
def delete(ctx: typer.Context, nodes: Nodes = None, label: SelectLabel = None,
           provision_state: SelectState = None,
           yes: Annotated[bool, typer.Option(
               "--yes", help="Needed with --label: delete every node it selects.")] = False,
           ) -> None:
    """Delete nodes (and their ports). Exit 1 if any could not be deleted."""
    if label and not yes:
        raise typer.BadParameter("deleting the nodes a label selects needs --yes (see them "
                                 "first with `enclume node list --label ...`)",
                                 param_hint="--label without --yes")
    nodes = selection.resolve(cli(ctx), nodes, label, provision_state)
    client = cli(ctx).client
    each_node(nodes, lambda node: client.delete(node_path(node)),
              lambda node: f"Deleted node {selection.shown(node)}")
