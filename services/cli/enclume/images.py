"""``enclume image create|list|show|delete`` and ``enclume image version add|delete``: the
catalogue of OS images rooms may use (admins and operators change it; teachers read the images
of their rooms). Uploads, versions in the store, gc: image_versions.py."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from services.cli.enclume.classroom_common import listing, names, path, show
from services.cli.enclume.context import cli
from services.cli.enclume.options import Format
from services.cli.enclume.room_progress import human_bytes

app = typer.Typer(no_args_is_help=True,
                  help="OS images (with versions) that rooms may be restored to.")
version_app = typer.Typer(no_args_is_help=True, help="Add or delete a version of an image.")
app.add_typer(version_app, name="version")

LIST_COLUMNS = ("name", "description", "versions")
SHOW_COLUMNS = ("uuid", "name", "description", "versions", "created_at", "updated_at")
VERSION_COLUMNS = ("version", "state", "source", "checksum", "disk_format", "image_type",
                   "boot_mode", "uuid", "created_at")

Image = Annotated[str, typer.Argument(metavar="IMAGE", help="Image name or UUID.")]
SOURCE_HELP = ("Where the version is: an http(s) or file URL, or a file name in the image "
               "store.")
Source = Annotated[str | None, typer.Option(metavar="URL|FILE", help=SOURCE_HELP)]
Checksum = Annotated[str | None, typer.Option(metavar="SHA256",
                                              help="The sha256 of the image file.")]
DiskFormat = Annotated[str | None, typer.Option(metavar="raw|qcow2",
                                                help="Default raw.")]
ImageType = Annotated[str | None, typer.Option(metavar="whole-disk|partition",
                                               help="Default whole-disk.")]
BootMode = Annotated[str | None, typer.Option(metavar="uefi|bios", help="Default uefi.")]
Kernel = Annotated[str | None, typer.Option(metavar="URL|FILE",
                                            help="Partition images: their kernel.")]
Ramdisk = Annotated[str | None, typer.Option(metavar="URL|FILE",
                                             help="Partition images: their initramfs.")]


def image_row(image: dict[str, Any]) -> dict[str, Any]:
    return {**image, "versions": names(image.get("versions"), "version")}


def version_summary(version: dict[str, Any]) -> str:
    """``v2 (available: 1.0 GiB, 256 blocks, 190 zero, 212.0 MiB stored)``."""
    state = version.get("state") or "external"
    store = version.get("store")
    if store:
        details = (f"{state}: {human_bytes(store['size'])}, {store['blocks']} blocks, "
                   f"{store['zero_blocks']} zero, {human_bytes(store['stored_bytes'])} stored")
    elif version.get("reason"):
        details = f"{state}: {version['reason']}"
    else:
        details = state
    return f"{version.get('version')} ({details})"


def image_detail_row(image: dict[str, Any]) -> dict[str, Any]:
    return {**image, "versions": "; ".join(version_summary(v)
                                           for v in image.get("versions") or [])}


def version_body(version: str, source: str | None, checksum: str | None,
                 disk_format: str | None, image_type: str | None, boot_mode: str | None,
                 kernel: str | None, ramdisk: str | None) -> dict[str, Any]:
    body = {"version": version, "source": source, "checksum": checksum,
            "disk_format": disk_format, "image_type": image_type, "boot_mode": boot_mode,
            "kernel": kernel, "ramdisk": ramdisk}
    return {key: value for key, value in body.items() if value is not None}


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME",
                                        help="Letters, digits and -._~ (debian-12).")],
    description: Annotated[str | None, typer.Option(help="What is on it.")] = None,
    version: Annotated[str | None, typer.Option(
        metavar="VERSION", help="Also add a first version (2026-09): with --source and "
                                "--checksum.")] = None,
    source: Source = None, checksum: Checksum = None, disk_format: DiskFormat = None,
    image_type: ImageType = None, boot_mode: BootMode = None, kernel: Kernel = None,
    ramdisk: Ramdisk = None, fmt: Format = None,
) -> None:
    """Add an image to the catalogue (admins, operators); shows it."""
    body: dict[str, Any] = {"name": name}
    if description is not None:
        body["description"] = description
    details = (source, checksum, disk_format, image_type, boot_mode, kernel, ramdisk)
    if version is not None:
        body["versions"] = [version_body(version, *details)]
    elif any(value is not None for value in details):
        raise typer.BadParameter("version details need --version NAME", param_hint="--version")
    show(ctx, cli(ctx).client.post(path("images"), body), SHOW_COLUMNS, fmt, image_row)


@app.command("list")
def list_images(ctx: typer.Context, fmt: Format = None) -> None:
    """Every image, with its versions."""
    show(ctx, listing(ctx, "images"), LIST_COLUMNS, fmt, image_row)


@app.command("show")
def show_image(ctx: typer.Context, image: Image, fmt: Format = None) -> None:
    """One image; the table sums each version up, -f json tells everything about them.

    Per version: its state, and when in the store its size, blocks, zero blocks and bytes
    stored."""
    show(ctx, cli(ctx).client.get(path("images", image)), SHOW_COLUMNS, fmt,
         image_detail_row)


@app.command("delete")
def delete(ctx: typer.Context, image: Annotated[str, typer.Argument(
        metavar="IMAGE[:VERSION]", help="Image name or UUID; with :VERSION only that "
                                        "version.")]) -> None:
    """Delete an image and its versions, or one version (IMAGE:VERSION).

    Refused while a session uses it, or a room restores it by default; its blocks are freed
    by `enclume image gc`."""
    name, _, version = image.rpartition(":") if ":" in image else (image, "", "")
    if version:
        cli(ctx).client.delete(path("images", name, "versions", version))
        typer.echo(f"Deleted version {version} of image {name}")
        return
    cli(ctx).client.delete(path("images", image))
    typer.echo(f"Deleted image {image}")


@version_app.command("add")
def add_version(
    ctx: typer.Context, image: Image,
    version: Annotated[str, typer.Argument(metavar="VERSION", help="Its name (2026-09).")],
    source: Annotated[str, typer.Option(metavar="URL|FILE", help=SOURCE_HELP)],
    checksum: Annotated[str, typer.Option(metavar="SHA256", help="The sha256 of the file.")],
    disk_format: DiskFormat = None, image_type: ImageType = None, boot_mode: BootMode = None,
    kernel: Kernel = None, ramdisk: Ramdisk = None,
    fetch: Annotated[bool, typer.Option(
        "--fetch", help="Fetch the source URL into the image store (in the background: "
                        "`enclume image versions` shows when it is available).")] = False,
    fmt: Format = None,
) -> None:
    """Add a version to an image (IMAGE:VERSION elsewhere); shows it."""
    body = version_body(version, source, checksum, disk_format, image_type, boot_mode, kernel,
                        ramdisk)
    if fetch:
        body["fetch"] = True
    show(ctx, cli(ctx).client.post(path("images", image, "versions"), body), VERSION_COLUMNS,
         fmt)


@version_app.command("delete")
def delete_version(ctx: typer.Context, image: Image,
                   version: Annotated[str, typer.Argument(metavar="VERSION")]) -> None:
    """Delete one version of an image (refused while a session uses it)."""
    cli(ctx).client.delete(path("images", image, "versions", version))
    typer.echo(f"Deleted version {version} of image {image}")
