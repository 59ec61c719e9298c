"""``room status --watch``: the room's status redrawn on each event of the room's event stream
(``GET /enclume/v1/events?room=R``, Server-Sent Events), or every POLL_S seconds while the API
offers no stream. On a terminal the status table is redrawn in place; elsewhere one line is
printed per PC whose row changed."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

import httpx

from services.cli.enclume.classroom_common import path
from services.cli.enclume.client import ApiClient, ApiError
from services.cli.enclume.output import build_table, cell

POLL_S = 2.0
# Without an event for this long the status is read again anyway (and the stream reopened).
QUIET_S = 15.0
# Answers meaning "this API has no event stream": polling takes over.
NO_STREAM = frozenset({404, 405, 501})

Status = dict[str, Any]


class LineStatus:
    def __init__(self, out: IO[str], columns: Sequence[str]) -> None:
        self.out = out
        self.columns = columns
        self.seen: dict[str, str] = {}
        self.title = ""
        self.start = time.monotonic()

    def show(self, status: Status, title: str) -> None:
        stamp = f"[{time.monotonic() - self.start:6.1f}s]"
        if title != self.title:
            self.title = title
            print(f"{stamp} {title}", file=self.out, flush=True)
        for row in status["pcs"]:
            text = ", ".join(f"{name}={cell(row.get(name))}" for name in self.columns[1:]
                             if row.get(name) is not None)
            if self.seen.get(row["pc"]) != text:
                self.seen[row["pc"]] = text
                print(f"{stamp} {row['pc']}: {text}", file=self.out, flush=True)

    def close(self) -> None:
        pass


class LiveStatus:
    def __init__(self, out: IO[str], columns: Sequence[str]) -> None:
        from rich.console import Console
        from rich.live import Live

        self.columns = columns
        self.live = Live(console=Console(file=out), refresh_per_second=4)
        self.live.start()

    def show(self, status: Status, title: str) -> None:
        table = build_table(status["pcs"], self.columns)
        table.title = title
        self.live.update(table, refresh=True)

    def close(self) -> None:
        self.live.stop()


def follow(client: ApiClient, room: str, read: Callable[[], Status],
           title: Callable[[Status], str], columns: Sequence[str], deadline: float | None,
           *, out: IO[str] | None = None, poll_s: float | None = None) -> None:
    """Show ``read()`` now and after every event of the room (or every ``poll_s`` without a
    stream) until ``deadline`` (monotonic; None: until interrupted)."""
    poll_s = POLL_S if poll_s is None else poll_s
    stream = out or sys.stdout
    display = LiveStatus(stream, columns) if stream.isatty() else LineStatus(stream, columns)

    def refresh() -> None:
        status = read()
        display.show(status, title(status))

    def left() -> float | None:
        return None if deadline is None else deadline - time.monotonic()

    try:
        refresh()
        streaming = True
        while (left() or 1) > 0:
            if streaming:
                try:
                    quiet = min(QUIET_S, left() or QUIET_S)
                    for _event in client.events(path("events"), {"room": room}, quiet):
                        refresh()
                        if (left() or 1) <= 0:
                            return
                except ApiError as exc:
                    if exc.status not in NO_STREAM:
                        raise
                    streaming = False
                    print(f"No event stream ({exc.message}); reading the room every "
                          f"{poll_s:g} s", file=sys.stderr)
                except httpx.TimeoutException:
                    pass
            else:
                time.sleep(max(0.0, min(poll_s, left() or poll_s)))
            refresh()
    finally:
        display.close()
