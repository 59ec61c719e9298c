"""``enclume room create|list|show|set|delete|add|remove``: rooms, their PCs, teachers and
allowed images (admins and operators change them; a teacher sees their own rooms)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from services.cli.enclume.classroom_common import listing, names, path, plan_cells, show
from services.cli.enclume.context import CliError, cli
from services.cli.enclume.options import Format

app = typer.Typer(no_args_is_help=True,
                  help="Rooms of PCs: who teaches there, which images they may run, and "
                       "actions on the whole room (wake, restore, power-off, log-out, status).")

LIST_COLUMNS = ("name", "time_zone", "default_image", "allowed_images", "pcs", "teachers")
SHOW_COLUMNS = ("uuid", "name", "description", "time_zone", "idle_vlan", "class_vlan",
                "pc_logins", "login_language", "allowed_images", "default_image", "pcs",
                "teachers", "restore_lead", "next_action", "created_at", "updated_at")

Room = Annotated[str, typer.Argument(metavar="ROOM", help="Room name or UUID.")]
Pcs = Annotated[list[str] | None, typer.Argument(
    metavar="[PC]...", show_default=False, help="PCs (node names or UUIDs).")]
Teachers = Annotated[list[str] | None, typer.Option(
    "--teacher", metavar="USER", show_default=False,
    help="A teacher's user name (repeat for several).")]
Images = Annotated[list[str] | None, typer.Option(
    "--image", metavar="IMAGE", show_default=False,
    help="An image allowed in the room (repeat for several).")]
DefaultImage = Annotated[str | None, typer.Option(
    metavar="IMAGE", help="The image a restore uses when none is named (one of the allowed).")]
TimeZone = Annotated[str | None, typer.Option(
    metavar="ZONE", help="IANA time zone (Europe/Paris): session times are wall-clock there.")]
IdleVlan = Annotated[int | None, typer.Option(
    metavar="ID", min=1, max=4094, help="VLAN of idle and provisioning PCs.")]
ClassVlan = Annotated[int | None, typer.Option(
    metavar="ID", min=1, max=4094, help="VLAN of the PCs during a class.")]
Description = Annotated[str | None, typer.Option(help="Free text.")]
Subnet = Annotated[str | None, typer.Option(
    metavar="CIDR", help="The PCs' IPv4 subnet (10.12.0.0/16): Wake-on-LAN magic packets go "
                         "to its broadcast address (a directed broadcast).")]
WolBroadcast = Annotated[str | None, typer.Option(
    metavar="ADDRESS", help="The directed broadcast address for magic packets instead: the "
                            "broadcast address of the subnet or of a part of it.")]
Transfer = Annotated[str | None, typer.Option(
    metavar="unicast|multicast", help="How a restore sends the image: to each PC over HTTP "
                                      "(unicast, the default) or once to all in a multicast "
                                      "session, each PC repairing over HTTP.")]

PcLogins = Annotated[str | None, typer.Option(
    "--pc-logins", metavar="on|off|default",
    help="Whether a restore of the room's PCs waits at a login prompt on each PC (students "
         "log in, start fresh or resume their work); default: ENCLUME_PC_LOGIN_AT_BOOT.")]
LoginLanguage = Annotated[str | None, typer.Option(
    metavar="en|fr|default", help="The language of that prompt; default: "
                                  "ENCLUME_PC_LOGIN_LANGUAGE.")]
SWITCH = {"on": True, "off": False, "default": None}


def login_fields(pc_logins: str | None, login_language: str | None) -> dict[str, Any]:
    """The room's login switch and language as the API takes them ("default": null)."""
    fields: dict[str, Any] = {}
    if pc_logins is not None:
        if pc_logins not in SWITCH:
            raise typer.BadParameter("on, off or default", param_hint="--pc-logins")
        fields["pc_logins"] = SWITCH[pc_logins]
    if login_language is not None:
        fields["login_language"] = None if login_language == "default" else login_language
    return fields


def room_row(room: dict[str, Any]) -> dict[str, Any]:
    return {**room, "pcs": names(room.get("pcs")), "teachers": names(room.get("teachers")),
            "allowed_images": names(room.get("allowed_images")), **plan_cells(room)}


def room_path(room: str, *more: str) -> str:
    return path("rooms", room, *more)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The room's name (B12).")],
    time_zone: Annotated[str, typer.Option(
        metavar="ZONE", help="IANA time zone (Europe/Paris): session times are wall-clock "
                             "there.")],
    pc: Annotated[list[str] | None, typer.Option(
        "--pc", metavar="PC", show_default=False,
        help="A PC of the room, node name or UUID (repeat for several; a PC is in one room "
             "at most).")] = None,
    teacher: Teachers = None, image: Images = None, default_image: DefaultImage = None,
    idle_vlan: IdleVlan = None, class_vlan: ClassVlan = None, description: Description = None,
    subnet: Subnet = None, wol_broadcast: WolBroadcast = None, transfer: Transfer = None,
    pc_logins: PcLogins = None, login_language: LoginLanguage = None, fmt: Format = None,
) -> None:
    """Create a room (admins, operators); shows it."""
    body: dict[str, Any] = {"name": name, "time_zone": time_zone, "pcs": pc or [],
                            "teachers": teacher or [], "allowed_images": image or [],
                            "default_image": default_image, "idle_vlan": idle_vlan,
                            "class_vlan": class_vlan, "description": description,
                            "subnet": subnet, "wol_broadcast": wol_broadcast,
                            "transfer": transfer}
    body = {key: value for key, value in body.items() if value not in (None, [])}
    body.update(login_fields(pc_logins, login_language))
    show(ctx, cli(ctx).client.post(path("rooms"), body), SHOW_COLUMNS, fmt, room_row)


@app.command("list")
def list_rooms(ctx: typer.Context, fmt: Format = None) -> None:
    """The rooms you may see (a teacher: their own)."""
    show(ctx, listing(ctx, "rooms"), LIST_COLUMNS, fmt, room_row)


@app.command("show")
def show_room(ctx: typer.Context, room: Room, fmt: Format = None) -> None:
    """One room: its PCs, teachers, images, VLANs and time zone, how early its restores start
    (its lead, measured from its last restores) and the timetable's next action there."""
    show(ctx, cli(ctx).client.get(room_path(room)), SHOW_COLUMNS, fmt, room_row)


@app.command("set")
def set_room(
    ctx: typer.Context, room: Room,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    time_zone: TimeZone = None, default_image: DefaultImage = None,
    idle_vlan: IdleVlan = None, class_vlan: ClassVlan = None, description: Description = None,
    subnet: Subnet = None, wol_broadcast: WolBroadcast = None, transfer: Transfer = None,
    pc_logins: PcLogins = None, login_language: LoginLanguage = None, fmt: Format = None,
) -> None:
    """Change a room's name, time zone, default image, VLANs, subnet, Wake-on-LAN broadcast
    address, transfer, logins at its PCs or description; shows it."""
    body = {key: value for key, value in {
        "name": name, "time_zone": time_zone, "default_image": default_image,
        "idle_vlan": idle_vlan, "class_vlan": class_vlan, "description": description,
        "subnet": subnet, "wol_broadcast": wol_broadcast, "transfer": transfer,
    }.items() if value is not None}
    body.update(login_fields(pc_logins, login_language))
    if not body:
        raise typer.BadParameter("nothing to set: give at least one option",
                                 param_hint="options")
    show(ctx, cli(ctx).client.patch(room_path(room), body), SHOW_COLUMNS, fmt, room_row)


@app.command("delete")
def delete(ctx: typer.Context, room: Room) -> None:
    """Delete a room (its sessions and jobs go with it; its PCs stay enrolled)."""
    cli(ctx).client.delete(room_path(room))
    typer.echo(f"Deleted room {room}")


def _nothing_given(pcs: list[str] | None, teachers: list[str] | None,
                   images: list[str] | None) -> None:
    if not (pcs or teachers or images):
        raise typer.BadParameter("give PCs, --teacher USER or --image IMAGE",
                                 param_hint="PC / --teacher / --image")


@app.command("add")
def add(ctx: typer.Context, room: Room, pcs: Pcs = None, teacher: Teachers = None,
        image: Images = None, fmt: Format = None) -> None:
    """Add PCs, teachers (--teacher) or allowed images (--image) to a room; shows it."""
    _nothing_given(pcs, teacher, image)
    client = cli(ctx).client
    document: dict[str, Any] = {}
    if pcs:
        document = client.post(room_path(room, "pcs"), {"pcs": pcs})
    if teacher:
        document = client.post(room_path(room, "teachers"), {"teachers": teacher})
    if image:
        current = client.get(room_path(room)).get("allowed_images") or []
        allowed = list(dict.fromkeys([*current, *image]))
        document = client.patch(room_path(room), {"allowed_images": allowed})
    show(ctx, document, SHOW_COLUMNS, fmt, room_row)


@app.command("remove")
def remove(ctx: typer.Context, room: Room, pcs: Pcs = None, teacher: Teachers = None,
           image: Images = None, fmt: Format = None) -> None:
    """Remove PCs, teachers (--teacher) or allowed images (--image) from a room; shows it."""
    _nothing_given(pcs, teacher, image)
    client = cli(ctx).client
    for pc in pcs or []:
        client.delete(room_path(room, "pcs", pc))
    for user in teacher or []:
        client.delete(room_path(room, "teachers", user))
    document = client.get(room_path(room))
    if image:
        current = document.get("allowed_images") or []
        unknown = [name for name in image if name not in current]
        if unknown:
            raise CliError(f"image(s) {', '.join(unknown)} not allowed in room {room}")
        body: dict[str, Any] = {"allowed_images": [n for n in current if n not in image]}
        if document.get("default_image") in image:
            body["default_image"] = None
        document = client.patch(room_path(room), body)
    show(ctx, document, SHOW_COLUMNS, fmt, room_row)
