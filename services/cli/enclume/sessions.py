"""``enclume session create|list|show|set|delete|occurrences``: a room's timetable. Times are
wall-clock in the room's time zone (``2027-03-16T14:00``); a weekly session stays at 14:00
across summer time."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from services.cli.enclume.classroom_common import listing, path, plan_cells, show
from services.cli.enclume.client import ApiClient
from services.cli.enclume.context import CliError, cli
from services.cli.enclume.options import Format
from services.common.validation import is_uuid

app = typer.Typer(no_args_is_help=True,
                  help="Sessions: classes in a room, once, every week or from an iCalendar "
                       "timetable, with what happens to the PCs before and after.")

LIST_COLUMNS = ("uuid", "name", "room", "image", "recurrence", "start", "end", "next")
SHOW_COLUMNS = ("uuid", "name", "room", "image", "recurrence", "start", "end", "rrule",
                "before", "after", "created_by", "next_occurrences", "restore_lead",
                "next_action", "created_at", "updated_at")
OCCURRENCE_COLUMNS = ("planned_start", "planned_end", "state", "claimed_by", "reason")
OCCURRENCE_STATES = ("planned", "claimed", "running", "done", "missed", "cancelled")
BEFORE = ("restore-full", "restore-delta", "none")
AFTER = ("restore", "power-off", "nothing")
ICAL_FETCH_TIMEOUT_S = 30.0

Session = Annotated[str, typer.Argument(metavar="SESSION", help="Session UUID.")]


def _choice(allowed: tuple[str, ...]) -> Any:
    def check(value: str | None) -> str | None:
        if value is not None and value not in allowed:
            raise typer.BadParameter(f"expected one of {', '.join(allowed)}")
        return value
    return check


def session_row(session: dict[str, Any]) -> dict[str, Any]:
    upcoming = session.get("next_occurrences") or []
    return {**session, "next": upcoming[0].get("start") if upcoming else None,
            "next_occurrences": ", ".join(str(o.get("start")) for o in upcoming),
            **plan_cells(session)}


def read_ical(source: str) -> str:
    """The iCalendar text of a file, or of a URL fetched here (the API gets the text)."""
    if source.startswith(("http://", "https://")):
        try:
            response = httpx.get(source, timeout=ICAL_FETCH_TIMEOUT_S, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot fetch {source}: {exc}") from None
        if response.status_code >= 400:
            raise CliError(f"cannot fetch {source}: HTTP {response.status_code}")
        return response.text
    try:
        # newline="": the text as it is (iCalendar lines end in CRLF)
        with Path(source).expanduser().open(encoding="utf-8", newline="") as calendar:
            return calendar.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise typer.BadParameter(f"cannot read {source}: {reason}", param_hint="--ical") \
            from None


def image_version(client: ApiClient, room: str, image: str | None) -> str:
    """``IMAGE:VERSION`` as the API wants it: given so; an image's name alone -> its newest
    version; nothing -> the room's default image, newest version."""
    if image is not None and (":" in image or is_uuid(image)):
        return image
    if image is None:
        image = client.get(path("rooms", room)).get("default_image")
        if not image:
            raise CliError(f"room {room} has no default image: give --image NAME[:VERSION]")
    versions = client.get(path("images", image)).get("versions") or []
    if not versions:
        raise CliError(f"image {image} has no version yet")
    return f"{image}:{versions[-1]['version']}"


def session_body(room: str, image: str | None, at: str | None, until: str | None,
                 weekly: bool, count: int | None, last: str | None, every: int | None,
                 ical: str | None) -> dict[str, Any]:
    """The API's request: checks what the options mean together (usage errors, exit 2)."""
    body: dict[str, Any] = {"room": room}
    if image is not None:
        body["image"] = image
    if ical is not None:
        if at or until or weekly or count or last or every:
            raise typer.BadParameter("an iCalendar session takes its times from the "
                                     "calendar: no --at, --until, --weekly, --count, --last "
                                     "or --every", param_hint="--ical")
        return {**body, "recurrence": "ical", "ical": read_ical(ical)}
    if at is None or until is None:
        raise typer.BadParameter("give --at and --until (or --ical FILE-or-URL)",
                                 param_hint="--at / --until")
    body.update(start=at, end=until)
    if not weekly:
        if count or last or every:
            raise typer.BadParameter("--count, --last and --every go with --weekly",
                                     param_hint="--weekly")
        return {**body, "recurrence": "once"}
    if (count is None) == (last is None):
        raise typer.BadParameter("a weekly session needs an end: --count WEEKS or --last "
                                 "DATE (one of them)", param_hint="--count / --last")
    body["recurrence"] = "weekly"
    if count is not None:
        body["count"] = count
    if last is not None:
        body["until"] = last
    if every is not None:
        body["interval"] = every
    return body


@app.command("create")
def create(
    ctx: typer.Context,
    room: Annotated[str, typer.Option(metavar="ROOM", help="The room of the class.")],
    image: Annotated[str | None, typer.Option(
        metavar="NAME[:VERSION]", help="The image the PCs run, allowed in the room "
                                       "(debian-12:2026-09; a name alone: its newest "
                                       "version). Default: the room's default image.")]
    = None,
    at: Annotated[str | None, typer.Option(
        metavar="START", help="When the class starts, in the room's time: 2027-03-16T14:00."
    )] = None,
    until: Annotated[str | None, typer.Option(
        metavar="END", help="When it ends, same day or next: 2027-03-16T16:00.")] = None,
    weekly: Annotated[bool, typer.Option(
        "--weekly", help="Every week at the same time (needs --count or --last).")] = False,
    count: Annotated[int | None, typer.Option(
        metavar="WEEKS", min=1, max=520, help="With --weekly: how many weeks.")] = None,
    last: Annotated[str | None, typer.Option(
        metavar="DATE", help="With --weekly: the last day it may happen (2027-06-29).")]
    = None,
    every: Annotated[int | None, typer.Option(
        metavar="N", min=1, help="With --weekly: every N weeks (default 1).")] = None,
    ical: Annotated[str | None, typer.Option(
        metavar="FILE-or-URL", help="Take the times from an iCalendar timetable (.ics file, "
                                    "or a URL this command downloads).")] = None,
    before: Annotated[str | None, typer.Option(
        metavar="|".join(BEFORE), callback=_choice(BEFORE),
        help="Before the class: restore the whole disk (default), only the changed blocks, "
             "or nothing.")] = None,
    after: Annotated[str | None, typer.Option(
        metavar="|".join(AFTER), callback=_choice(AFTER),
        help="After the class: restore, power off, or nothing (default).")] = None,
    name: Annotated[str | None, typer.Option(help="A name for it (Networks 101).")] = None,
    fmt: Format = None,
) -> None:
    """Plan a class in a room: once (--at/--until), weekly, or from an iCalendar timetable."""
    body = session_body(room, image, at, until, weekly, count, last, every, ical)
    client = cli(ctx).client
    body["image"] = image_version(client, room, image)
    for key, value in (("before", before), ("after", after), ("name", name)):
        if value is not None:
            body[key] = value
    show(ctx, client.post(path("sessions"), body), SHOW_COLUMNS, fmt, session_row)


@app.command("list")
def list_sessions(
    ctx: typer.Context,
    room: Annotated[str | None, typer.Option(metavar="ROOM", help="Only this room's.")] = None,
    fmt: Format = None,
) -> None:
    """Sessions of the rooms you may see, with the next time each happens (UTC)."""
    params = {"room": room} if room else None
    show(ctx, listing(ctx, "sessions", params), LIST_COLUMNS, fmt, session_row)


@app.command("show")
def show_session(ctx: typer.Context, session: Session, fmt: Format = None) -> None:
    """One session, its next three occurrences (UTC), its room's restore lead and the next
    thing the timetable does for it (a restore, the start, the after action) and when."""
    show(ctx, cli(ctx).client.get(path("sessions", session)), SHOW_COLUMNS, fmt, session_row)


@app.command("delete")
def delete(ctx: typer.Context, session: Session) -> None:
    """Delete a session and its planned occurrences."""
    cli(ctx).client.delete(path("sessions", session))
    typer.echo(f"Deleted session {session}")


@app.command("set")
def set_session(
    ctx: typer.Context, session: Session,
    until: Annotated[str | None, typer.Option(
        metavar="END", help="A new end: 2027-03-16T17:00 (the first class's day), or a time "
                            "of day alone (17:00) for every class.")] = None,
    last: Annotated[str | None, typer.Option(
        metavar="DATE", help="Weekly: a new last day (2027-06-29).")] = None,
    count: Annotated[int | None, typer.Option(
        metavar="WEEKS", min=1, max=520, help="Weekly: a new number of weeks.")] = None,
    image: Annotated[str | None, typer.Option(
        metavar="NAME[:VERSION]", help="Another image allowed in the room (a name alone: its "
                                       "newest version).")] = None,
    before: Annotated[str | None, typer.Option(
        metavar="|".join(BEFORE), callback=_choice(BEFORE), help="What happens before.")]
    = None,
    after: Annotated[str | None, typer.Option(
        metavar="|".join(AFTER), callback=_choice(AFTER), help="What happens after.")] = None,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    fmt: Format = None,
) -> None:
    """Change a session: its end, weekly last day or count, image, before/after or name.
    Classes not yet started are planned again; one under way cannot change (409)."""
    if last is not None and count is not None:
        raise typer.BadParameter("give --last or --count, not both", param_hint="--last")
    body: dict[str, Any] = {key: value for key, value in {
        "end": until, "until": last, "count": count, "before": before, "after": after,
        "name": name}.items() if value is not None}
    client = cli(ctx).client
    if image is not None:
        room = client.get(path("sessions", session)).get("room") or ""
        body["image"] = image_version(client, room, image)
    if not body:
        raise typer.BadParameter("nothing to set: give at least one option",
                                 param_hint="options")
    show(ctx, client.patch(path("sessions", session), body), SHOW_COLUMNS, fmt, session_row)


@app.command("occurrences")
def list_occurrences(
    ctx: typer.Context, session: Session,
    state: Annotated[str | None, typer.Option(
        metavar="|".join(OCCURRENCE_STATES), callback=_choice(OCCURRENCE_STATES),
        help="Only the occurrences in this state (missed: with why).")] = None,
    fmt: Format = None,
) -> None:
    """A session's occurrences (UTC): planned, claimed, running, done, or missed with the
    reason (no conductor was running then, the room was still in another class...)."""
    params = {"session": session, **({"state": state} if state else {})}
    show(ctx, listing(ctx, "occurrences", params), OCCURRENCE_COLUMNS, fmt)
