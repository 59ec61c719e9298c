"""``enclume job list|show|retry``: room actions (wake, restore, power-off, log-out) and how
each PC fared. ``room wake|restore|power-off|log-out`` start them."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

import typer

from services.cli.enclume import room_progress
from services.cli.enclume.classroom_common import listing, path, show
from services.cli.enclume.context import cli
from services.cli.enclume.options import DEFAULT_WAIT_TIMEOUT_S, Format, Timeout, Wait
from services.cli.enclume.output import COLUMN_FORMATS, render

app = typer.Typer(no_args_is_help=True,
                  help="Jobs: what a room action did on each PC (step, progress, outcome).")

LIST_COLUMNS = ("uuid", "room", "kind", "state", "image", "pcs", "requested_by", "created_at")
SHOW_COLUMNS = ("uuid", "room", "kind", "state", "image", "requested_by", "occurrence",
                "created_at", "updated_at")
PC_COLUMNS = ("pc", "step", "percent", "written", "outcome", "error")

Job = Annotated[str, typer.Argument(metavar="JOB", help="Job UUID.")]


def pcs_summary(pcs: list[dict[str, Any]]) -> str:
    """``3 PC(s): 2 succeeded, 1 failed`` (PCs without an outcome count as working)."""
    counts = Counter(pc.get("outcome") or "working" for pc in pcs)
    parts = ", ".join(f"{number} {outcome}" for outcome, number in sorted(counts.items()))
    return f"{len(pcs)} PC(s)" + (f": {parts}" if parts else "")


def job_row(job: dict[str, Any]) -> dict[str, Any]:
    return {**job, "pcs": pcs_summary(job.get("pcs") or [])}


def pc_rows(job: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for pc in job.get("pcs") or []:
        done, total = pc.get("bytes_done"), pc.get("bytes_total")
        written = "" if done is None else room_progress.human_bytes(done) + (
            f" of {room_progress.human_bytes(total)}" if total else "")
        rows.append({"pc": room_progress.pc_name(pc), "step": pc.get("step"),
                     "percent": pc.get("percent"), "written": written,
                     "outcome": pc.get("outcome"), "error": pc.get("error")})
    return rows


def show_job(ctx: typer.Context, job: dict[str, Any], fmt: str | None) -> None:
    """The job's fields, then one row per PC; -f json/yaml: the API's document."""
    chosen = cli(ctx).output_format(fmt)
    if chosen not in COLUMN_FORMATS:
        render(job, None, chosen)
        return
    render(job, SHOW_COLUMNS, chosen)
    if job.get("pcs"):
        render(pc_rows(job), PC_COLUMNS, chosen)


def wait_for_job(ctx: typer.Context, job: dict[str, Any], timeout: float,
                 only: list[str] | None = None) -> None:
    """Follow the job's PCs live; exit 1 if any failed or timed out."""
    outcomes = room_progress.follow_job(cli(ctx).client, job, timeout, only=only)
    if not all(outcome.ok for outcome in outcomes.values()):
        raise typer.Exit(1)


@app.command("list")
def list_jobs(
    ctx: typer.Context,
    room: Annotated[str | None, typer.Option(metavar="ROOM", help="Only this room's.")] = None,
    fmt: Format = None,
) -> None:
    """Jobs of the rooms you may see, oldest first."""
    params = {"room": room} if room else None
    show(ctx, listing(ctx, "jobs", params), LIST_COLUMNS, fmt, job_row)


@app.command("show")
def show_one(ctx: typer.Context, job: Job, fmt: Format = None) -> None:
    """One job, with each PC's step, progress, outcome and error."""
    show_job(ctx, cli(ctx).client.get(path("jobs", job)), fmt)


@app.command("retry")
def retry(
    ctx: typer.Context, job: Job,
    pcs: Annotated[list[str], typer.Argument(metavar="PC...",
                                             help="Failed PCs of the job (names or UUIDs).")],
    wait: Wait = False, timeout: Timeout = DEFAULT_WAIT_TIMEOUT_S,
) -> None:
    """Try a job again on PCs that failed (the others are left alone)."""
    client = cli(ctx).client
    for pc in pcs:
        client.post(path("jobs", job, "pcs", pc, "retry"))
        if not wait:
            typer.echo(f"{pc}: retry requested")
    if wait:
        document = client.get(path("jobs", job))
        chosen = [room_progress.pc_key(pc) for pc in document.get("pcs") or []
                  if pc.get("node_uuid") in pcs or room_progress.pc_name(pc) in pcs]
        wait_for_job(ctx, document, timeout, only=chosen)
