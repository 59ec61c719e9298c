"""``enclume room wake|restore|power-off|log-out ROOM`` and ``enclume room status ROOM
[--watch]``.

An action is one job of the room (``POST /enclume/v1/rooms/{room}/actions``); ``--wait``
follows its PCs live (room_progress.py). ``status`` shows each PC's state with the step and
progress of the room's latest job; ``--watch`` redraws it on every event of the room's event
stream (``GET /enclume/v1/events?room=R``), or every few seconds when the API has none.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from services.cli.enclume import room_events
from services.cli.enclume.classroom_common import path
from services.cli.enclume.client import ApiClient
from services.cli.enclume.context import cli
from services.cli.enclume.jobs import show_job, wait_for_job
from services.cli.enclume.options import DEFAULT_WAIT_TIMEOUT_S, Format, Timeout, Wait
from services.cli.enclume.output import render
from services.cli.enclume.room_progress import pc_key, pc_name
from services.cli.enclume.rooms import Room, app

STATUS_COLUMNS = ("pc", "provision_state", "power_state", "step", "percent", "outcome",
                  "error")

Pc = Annotated[list[str] | None, typer.Option(
    "--pc", metavar="PC", show_default=False,
    help="Only this PC (name or UUID; repeat for several). Default: every PC of the room.")]
Force = Annotated[bool, typer.Option(
    "--force", help="Even while a class is in session in the room.")]
Discard = Annotated[bool, typer.Option(
    "--discard-unsaved", help="Drop the work of the students logged in at the PCs instead of "
                              "saving it (after a save failed: the store full, a quota).")]


def act(ctx: typer.Context, room: str, action: str, pcs: list[str] | None,
        image: str | None, force: bool, wait: bool, timeout: float, fmt: str | None,
        discard: bool = False) -> None:
    body: dict[str, Any] = {"action": action, "force": force}
    if discard:
        body["discard_unsaved"] = True
    if pcs:
        body["pcs"] = pcs
    if image is not None:
        body["image"] = image
    job = cli(ctx).client.post(path("rooms", room, "actions"), body)
    if not wait:
        show_job(ctx, job, fmt)
        return
    typer.echo(f"Job {job['uuid']}: {action} of {len(job.get('pcs') or [])} PC(s) in room "
               f"{job.get('room') or room}", err=True)
    wait_for_job(ctx, job, timeout)


@app.command("wake")
def wake(ctx: typer.Context, room: Room, pc: Pc = None, force: Force = False,
         wait: Wait = False, timeout: Timeout = DEFAULT_WAIT_TIMEOUT_S,
         fmt: Format = None) -> None:
    """Power on the room's PCs (Wake-on-LAN, or their BMC)."""
    act(ctx, room, "wake", pc, None, force, wait, timeout, fmt)


@app.command("restore")
def restore(
    ctx: typer.Context, room: Room, pc: Pc = None,
    image: Annotated[str | None, typer.Option(
        metavar="NAME[:VERSION]", help="The image to put on the PCs (default: the room's "
                                       "default image, newest version).")] = None,
    delta: Annotated[bool, typer.Option(
        "--delta", help="Fetch only the blocks that differ even on PCs that last had another "
                        "image (by default only on PCs that last had this image).")] = False,
    force: Force = False, discard: Discard = False, wait: Wait = False,
    timeout: Timeout = DEFAULT_WAIT_TIMEOUT_S, fmt: Format = None,
) -> None:
    """Put a clean image back on the room's PCs (saving the work of students logged in).

    With --wait: follow each PC live (step, percent, throughput, time left); exit 1 if any PC
    failed."""
    act(ctx, room, "restore-delta" if delta else "restore", pc, image, force, wait, timeout,
        fmt, discard)


@app.command("power-off")
def power_off(ctx: typer.Context, room: Room, pc: Pc = None, force: Force = False,
              discard: Discard = False, wait: Wait = False,
              timeout: Timeout = DEFAULT_WAIT_TIMEOUT_S, fmt: Format = None) -> None:
    """Power off the room's PCs (saving the work of students logged in first)."""
    act(ctx, room, "power-off", pc, None, force, wait, timeout, fmt, discard)


@app.command("log-out")
def log_out(ctx: typer.Context, room: Room, pc: Pc = None, wait: Wait = False,
            timeout: Timeout = DEFAULT_WAIT_TIMEOUT_S, fmt: Format = None) -> None:
    """Take the room's PCs on the class network back to the idle network and end their
    students' logins (their work is saved at the PCs' next restore or power-off)."""
    act(ctx, room, "log-out", pc, None, False, wait, timeout, fmt)


def latest_job(client: ApiClient, room: str) -> dict[str, Any] | None:
    page = client.get(path("jobs"), params={"room": room, "sort_key": "created_at",
                                            "sort_dir": "desc", "limit": 1})
    jobs = page.get("jobs") or []
    return jobs[0] if jobs else None


def status_rows(room: dict[str, Any], job: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per PC of the room: its states, and its step in the latest job (if in it)."""
    in_job = {}
    for pc in (job or {}).get("pcs") or []:
        in_job[pc_key(pc)] = pc
        in_job[pc_name(pc)] = pc
    rows = []
    for pc in room.get("pcs") or []:
        step = in_job.get(pc.get("uuid")) or in_job.get(pc.get("name")) or {}
        rows.append({"pc": pc.get("name") or pc.get("uuid"),
                     "provision_state": pc.get("provision_state"),
                     "power_state": pc.get("power_state"), "step": step.get("step"),
                     "percent": step.get("percent"), "outcome": step.get("outcome"),
                     "error": step.get("error")})
    return rows


def read_status(client: ApiClient, room: str) -> dict[str, Any]:
    document = client.get(path("rooms", room))
    job = latest_job(client, room)
    return {"room": document.get("name"), "job": job, "pcs": status_rows(document, job)}


def job_title(status: dict[str, Any]) -> str:
    job = status.get("job")
    if not job:
        return f"Room {status['room']}: no job yet"
    return (f"Room {status['room']}: {job.get('kind')} job {job.get('uuid')} "
            f"{job.get('state')}")


@app.command("status")
def status(
    ctx: typer.Context, room: Room,
    watch: Annotated[bool, typer.Option(
        "--watch", help="Keep the view up to date as PCs change (Ctrl-C to stop).")] = False,
    timeout: Annotated[float, typer.Option(
        "--timeout", metavar="SECONDS", min=0, help="With --watch: stop after this long "
                                                    "(0: never).")] = 0.0,
    fmt: Format = None,
) -> None:
    """Each PC of a room: its state, and its step and progress in the latest job.

    Provision and power state of each PC, with the step, percent, outcome and error of the
    room's latest job."""
    state = cli(ctx)
    client = state.client
    chosen = state.output_format(fmt)
    if not watch:
        current = read_status(client, room)
        if chosen in ("json", "yaml"):
            render(current, None, chosen)
            return
        if chosen == "table":
            typer.echo(job_title(current))
        render(current["pcs"], STATUS_COLUMNS, chosen)
        return
    deadline = time.monotonic() + timeout if timeout else None
    try:
        room_events.follow(client, room, lambda: read_status(client, room), job_title,
                           STATUS_COLUMNS, deadline)
    except KeyboardInterrupt:
        typer.echo("Stopped watching.", err=True)
