"""``enclume image capture PC --image NAME [--version V] [--partition --kernel K --ramdisk R
[--root-partition N]]``: a reference PC's disk (or its root partition) becomes a new version of
an image (docs/images.md "Capture"). The PC boots the deploy ramdisk, its agent sends
the blocks the image store lacks, the PC powers off and is ``manageable`` again."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from services.cli.enclume import progress
from services.cli.enclume.classroom_common import path, show
from services.cli.enclume.context import cli
from services.cli.enclume.image_versions import VERSION_COLUMNS, version_row
from services.cli.enclume.options import DEFAULT_WAIT_TIMEOUT_S, Format, Node, Timeout, Wait

CAPTURED_COLUMNS = ("image", "version", "node_name", "node", "session")


def capture(
    ctx: typer.Context, node: Node,
    image: Annotated[str, typer.Option("--image", metavar="NAME",
                                       help="The image the new version belongs to.")],
    version: Annotated[str | None, typer.Option(
        metavar="VERSION", help="Its name (default: the time now, 20261205-1430).")] = None,
    target_disk: Annotated[str | None, typer.Option(
        metavar="DEVICE", help="The disk to capture (default: the PC's first disk).")] = None,
    partition: Annotated[bool, typer.Option(
        "--partition", help="Capture the root partition alone, as a partition image.")] = False,
    root_partition: Annotated[int | None, typer.Option(
        metavar="N", help="With --partition: the root partition's number (default: the "
                          "largest Linux partition).")] = None,
    kernel: Annotated[str | None, typer.Option(
        metavar="URL", help="With --partition: the version's kernel (URL or file name).")] = None,
    ramdisk: Annotated[str | None, typer.Option(
        metavar="URL", help="With --partition: the version's ramdisk (URL or file name).")
    ] = None,
    wait: Wait = False, timeout: Timeout = DEFAULT_WAIT_TIMEOUT_S, fmt: Format = None,
) -> None:
    """Capture a manageable PC's disk as a new image version (admins, operators). With --wait:
    shows the version once it is in the catalogue; exit 1 if the capture failed."""
    body = {"node": node, "version": version, "target_disk": target_disk,
            "image_type": "partition" if partition else None,
            "root_partition": root_partition, "kernel": kernel, "ramdisk": ramdisk}
    client = cli(ctx).client
    started = client.post(path("images", image, "capture"),
                          {key: value for key, value in body.items() if value is not None})
    if not wait:
        show(ctx, started, CAPTURED_COLUMNS, fmt)
        return
    typer.echo(f"Capturing {started['node_name'] or started['node']} as "
               f"{started['image']}:{started['version']}", err=True)
    outcome = progress.wait_for(client, [started["node"]], {"manageable"}, timeout_s=timeout,
                                out=sys.stderr)[started["node"]]  # stdout: the version
    if not outcome.ok:
        typer.echo(f"Capture failed: {outcome.describe()}", err=True)
        raise typer.Exit(1)
    versions = client.get(path("images", started["image"]))["versions"]
    made = [found for found in versions if found["version"] == started["version"]]
    if not made:
        typer.echo(f"Capture failed: {started['image']} has no version "
                   f"{started['version']}", err=True)
        raise typer.Exit(1)
    show(ctx, made[0], VERSION_COLUMNS, fmt, version_row)
