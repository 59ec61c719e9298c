"""GET /ui/rooms/{room}/events: the room's PC cards as Server-Sent Events of HTML, for htmx's
SSE extension (``sse-swap="pc-UUID"`` on each card).

Like /enclume/v1/events, the API polls the database every ``POLL_S``; here it renders the
status of each PC that changed (its node's states and its latest job row) as the card's HTML,
with the write rate worked out from two looks at its bytes written. The first look after a
(re)connection sends every card, so a page whose stream was cut (the API restarted) catches
up by itself. The stream ends when the visitor's session does.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import Depends, Request
from fastapi.responses import StreamingResponse

from services.api.routing import api_router
from services.api.sse import polling_stream
from services.api.ui.i18n import language_of
from services.api.ui.room_pages import room_of
from services.api.ui.status import PcStatus, room_statuses
from services.api.ui.web import PREFIX, LoginRequired, Visitor, database, fragment, visitor
from services.common.classroom_models import Room
from services.common.db import Database

router = api_router(include_in_schema=False)
MEGABYTE = 1_000_000
POLL_S = 0.5  # as /enclume/v1/events: the database is looked at twice a second


def html_event(event: str, html: str) -> str:
    """One SSE message whose data is ``html`` (each of its lines a ``data:`` line)."""
    lines = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
    return f"event: {event}\n{lines}\n"


class CardWatcher:
    """The cards of one room that changed since the last look, rendered."""

    def __init__(self, db: Database, room_id: int, render: Callable[[PcStatus, float | None],
                                                                     str],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db, self.room_id, self.render, self.clock = db, room_id, render, clock
        self.sent: dict[str, tuple[PcStatus, float | None]] = {}
        self.progress: dict[str, tuple[str | None, int, float]] = {}  # job, bytes, when

    def changes(self) -> list[str]:
        with self.db.session() as session:
            room = session.get(Room, self.room_id)
            statuses = room_statuses(session, room) if room is not None else []
        messages = []
        for status in statuses:
            shown = (status, self._rate(status))
            if self.sent.get(status.uuid) != shown:
                self.sent[status.uuid] = shown
                messages.append(html_event(f"pc-{status.uuid}", self.render(*shown)))
        return messages

    def _rate(self, status: PcStatus) -> float | None:
        """MB/s written since the last look at a different byte count, in the same job."""
        if not status.in_progress or status.bytes_done is None:
            self.progress.pop(status.uuid, None)
            return None
        now = self.clock()
        before = self.progress.get(status.uuid)
        if before is None or before[0] != status.job or before[1] > status.bytes_done:
            self.progress[status.uuid] = (status.job, status.bytes_done, now)
            return None
        if before[1] == status.bytes_done:
            return self.sent.get(status.uuid, (status, None))[1]
        self.progress[status.uuid] = (status.job, status.bytes_done, now)
        return (status.bytes_done - before[1]) / MEGABYTE / max(now - before[2], 1e-3)


@router.get(f"{PREFIX}/rooms/{{ident}}/events")
def room_events(ident: str, request: Request, who: Visitor = Depends(visitor),
                db: Database = Depends(database)) -> StreamingResponse:
    with db.session() as session:
        room = room_of(session, who.identity, ident)  # 404 before the stream starts
        room_id, room_name = room.id, room.name
    language = language_of(request)

    def card(status: PcStatus, rate: float | None) -> str:
        return fragment("pc_status.html", language, pc=status, rate=rate, room=room_name,
                        csrf=who.session.csrf)

    watcher = CardWatcher(db, room_id, card)

    def still_logged_in() -> bool:
        try:
            visitor(request)
        except LoginRequired:
            return False
        return True

    return polling_stream(request, watcher.changes, "enclume room", lambda: POLL_S,
                          go_on=still_logged_in)
