"""``enclume image upload|versions|gc``: versions in the image store (docs/images.md).

An upload goes in pieces (``POST …/uploads``, then ``PATCH`` with ``Upload-Offset``): a piece
cut by the network is sent again from the offset the API has, and an upload cut for good is
resumed with ``--resume ID``. The commit verifies the sha256 and stores the blocks.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from services.cli.enclume.classroom_common import path, show
from services.cli.enclume.client import ApiClient, ApiError
from services.cli.enclume.context import cli
from services.cli.enclume.images import (
    BootMode,
    ImageType,
    Kernel,
    Ramdisk,
    app,
    version_body,
)
from services.cli.enclume.options import Format
from services.cli.enclume.room_progress import Rates, human_bytes, human_duration

READ_BYTES = 1024 * 1024
PIECE_MIB = 256
ATTEMPTS = 5  # per piece, after a cut connection
COMMIT_TIMEOUT_S = 6 * 3600.0
VERSION_COLUMNS = ("version", "state", "size", "blocks", "zero_blocks", "stored_bytes",
                   "reason", "uuid")
GC_COLUMNS = ("freed_bytes", "removed_blocks", "removed_ingests", "removed_uploads",
              "failed_fetches", "used_bytes", "max_bytes")


class ByteProgress:
    """``sent 1.2 GiB / 4.0 GiB (30%) 85.3 MiB/s ETA 0m34s`` on stderr: rewritten in place on
    a terminal, a line per tenth of the total elsewhere."""

    def __init__(self, total: int, stream: IO[str] = sys.stderr,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.stream, self.clock = total, stream, clock
        self.rates = Rates(clock)
        self.live = stream.isatty()
        self._shown_at = 0.0
        self._shown_tenth = -1

    def line(self, done: int) -> str:
        rate, left = self.rates.measure("upload", done, self.total)
        percent = 100 * done // self.total if self.total else 100
        parts = [f"sent {human_bytes(done)} / {human_bytes(self.total)} ({percent}%)"]
        if rate is not None:
            parts.append(f"{human_bytes(rate)}/s")
        if left is not None:
            parts.append(f"ETA {human_duration(left)}")
        return " ".join(parts)

    def update(self, done: int) -> None:
        text = self.line(done)
        if self.live:
            if self.clock() - self._shown_at >= 0.25 or done == self.total:
                self.stream.write("\r" + text.ljust(60))
                self.stream.flush()
                self._shown_at = self.clock()
        elif (tenth := 10 * done // max(self.total, 1)) != self._shown_tenth:
            self._shown_tenth = tenth
            self.stream.write(text + "\n")

    def done(self) -> None:
        if self.live:
            self.stream.write("\n")


def sha256_of(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as source:
        while chunk := source.read(READ_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _piece(file: Path, start: int, end: int, progress: ByteProgress) -> Iterator[bytes]:
    with open(file, "rb") as source:
        source.seek(start)
        position = start
        while position < end:
            chunk = source.read(min(READ_BYTES, end - position))
            if not chunk:
                raise typer.BadParameter(f"{file} became shorter while it was sent")
            position += len(chunk)
            yield chunk
            progress.update(position)


def send_file(client: ApiClient, upload_path: str, file: Path, size: int,
              progress: ByteProgress, piece_bytes: int) -> None:
    """Send what the API lacks of ``file``, piece by piece, resuming after cuts."""
    offset = int(client.get(upload_path)["offset"])
    failures = 0
    while offset < size:
        end = min(offset + piece_bytes, size)
        try:
            answer = client.send_bytes("PATCH", upload_path, _piece(file, offset, end, progress),
                                       {"Upload-Offset": str(offset),
                                        "Content-Type": "application/offset+octet-stream",
                                        "Content-Length": str(end - offset)})
            offset, failures = int(answer["offset"]), 0
        except ApiError as exc:
            failures += 1
            if exc.status not in (0, 409, 502, 503, 504) or failures >= ATTEMPTS:
                raise
            time.sleep(min(2 ** failures, 10))
            offset = int(client.get(upload_path)["offset"])
        progress.update(offset)


@app.command("upload")
def upload(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument(metavar="NAME", help="Image name or UUID.")],
    file: Annotated[Path, typer.Argument(metavar="FILE", exists=True, dir_okay=False,
                                         help="The disk image: raw or qcow2.")],
    version: Annotated[str | None, typer.Option(
        metavar="VERSION", help="Its name; default the time now (2026-12-05T1412).")] = None,
    checksum: Annotated[str | None, typer.Option(
        metavar="SHA256", help="The file's sha256 (checked by the API); default computed "
                               "here.")] = None,
    disk_format: Annotated[str | None, typer.Option(  # --format is the output format
        "--disk-format", metavar="raw|qcow2",
        help="Default: read from the file's header.")] = None,
    image_type: ImageType = None, boot_mode: BootMode = None, kernel: Kernel = None,
    ramdisk: Ramdisk = None,
    resume: Annotated[str | None, typer.Option(
        metavar="UPLOAD_ID", help="Go on with an upload that was cut (its id was printed).")
    ] = None,
    piece_mib: Annotated[int, typer.Option(min=1, help="MiB sent per request.")] = PIECE_MIB,
    fmt: Format = None,
) -> None:
    """Upload a version of an image into the image store (admins, operators); shows it."""
    client = cli(ctx).client
    size = file.stat().st_size
    if size == 0:
        raise typer.BadParameter(f"{file} is empty", param_hint="FILE")
    if resume is None:
        if checksum is None:
            typer.echo(f"computing the sha256 of {file} ...", err=True)
            checksum = sha256_of(file)
        name = version or datetime.now(UTC).strftime("%Y-%m-%dT%H%M")
        body = version_body(name, None, checksum, _format(file, disk_format), image_type,
                            boot_mode, kernel, ramdisk)
        body.update(size=size, filename=file.name)
        started = client.post(path("images", image, "uploads"), body)
        resume = str(started["id"])
    typer.echo(f"upload {resume}: if it is cut, go on with --resume {resume}", err=True)
    upload_path = path("images", image, "uploads", resume)
    progress = ByteProgress(size)
    send_file(client, upload_path, file, size, progress, piece_mib * 1024 * 1024)
    progress.done()
    typer.echo("verifying the sha256 and storing the blocks ...", err=True)
    show(ctx, client.slow_post(f"{upload_path}/commit", COMMIT_TIMEOUT_S), VERSION_COLUMNS,
         fmt, version_row)


def _format(file: Path, disk_format: str | None) -> str:
    if disk_format is not None:
        return disk_format
    with open(file, "rb") as source:
        return "qcow2" if source.read(4) == b"QFI\xfb" else "raw"


def version_row(version: dict[str, Any]) -> dict[str, Any]:
    store = version.get("store") or {}
    return {**version, **{key: store.get(key) for key in
                          ("size", "blocks", "zero_blocks", "stored_bytes")}}


@app.command("versions")
def versions(ctx: typer.Context,
             image: Annotated[str, typer.Argument(metavar="NAME", help="Image name or UUID.")],
             fmt: Format = None) -> None:
    """The versions of an image: state, size, blocks, zero blocks, bytes stored.

    States: available (in the store), ingesting (being fetched), failed (the reason says
    why), external (a catalogue entry deployed from its source)."""
    found = cli(ctx).client.get(path("images", image))
    show(ctx, found.get("versions", []), VERSION_COLUMNS, fmt, version_row)


@app.command("gc")
def collect_garbage(ctx: typer.Context, fmt: Format = None) -> None:
    """Free the blocks no version uses, dead ingests and idle uploads (admins, operators)."""
    freed = cli(ctx).client.post(path("image-store", "gc"))
    show(ctx, freed, GC_COLUMNS, fmt, lambda document: {**document, **document["usage"]})

