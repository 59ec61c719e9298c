"""``--wait``: follow nodes until each reaches its goal, fails or runs out of time.

On a terminal a live table shows one line per node (name, provision state, target, power,
elapsed, last error); elsewhere (pipes, CI, logs) one plain line is printed per change.
What is followed and shown is a ``View``: nodes by default; the PCs of a room's job
(room_progress.py) are followed by the same loop and displays.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from services.cli.enclume.client import ApiClient, ApiError
from services.common.states import FAILURE_STATES

POLL_S = 0.5
# Answers of an API that is down behind a proxy or starting: waited through like no answer.
UNAVAILABLE = frozenset({502, 503, 504})
# How long waiting without a timeout goes on while the API does not answer.
UNREACHABLE_GIVE_UP_S = 300.0
# Up to this many nodes are fetched one by one; more are read from the node list in one go.
SINGLE_FETCH_MAX = 10
WATCHED_FIELDS = ("uuid", "name", "provision_state", "target_provision_state", "power_state",
                  "target_power_state", "last_error")
FAILED_PROVISION_STATES: frozenset[str] = frozenset(state.value for state in FAILURE_STATES)

# A judge reads a node: True when it reached the goal, False when it failed, None: not yet.
Judge = Callable[[dict[str, Any]], bool | None]


@dataclass
class Outcome:
    """How waiting for one node ended."""

    ident: str
    ok: bool
    node: dict[str, Any]  # the node's last WATCHED_FIELDS ({} if it could not be read)
    elapsed_s: float
    timed_out: bool = False
    error: str | None = None  # why it failed: last_error, or the API's answer
    state_field: str = "provision_state"  # the field describe() names the state by

    @property
    def label(self) -> str:
        return str(self.node.get("name") or self.node.get("uuid") or self.ident)

    def describe(self) -> str:
        state = self.node.get(self.state_field)
        if self.ok:
            return f"{self.label}: {state} after {self.elapsed_s:.1f} s"
        if self.timed_out:
            return f"{self.label}: timed out after {self.elapsed_s:.1f} s in {state}"
        reason = f": {self.error}" if self.error else ""
        return f"{self.label}: failed in {state}{reason}"


def provision_judge(done_states: Collection[str], failed_states: Collection[str]) -> Judge:
    """Reached: a done state. Failed: a failed state, or a stable state that is not done
    (e.g. back in ``enroll`` after a failed ``manage``)."""

    def judge(node: dict[str, Any]) -> bool | None:
        state = node.get("provision_state")
        if state in done_states:
            return True
        if state in failed_states:
            return False
        if node.get("target_provision_state") is None:
            return False
        return None

    return judge


def settled_judge(failed_states: Collection[str] = FAILED_PROVISION_STATES) -> Judge:
    """Reached: no provision state change under way (no target). Failed: a failed state (which
    keeps its target)."""

    def judge(node: dict[str, Any]) -> bool | None:
        if node.get("provision_state") in failed_states:
            return False
        if node.get("target_provision_state") is None:
            return True
        return None

    return judge


def power_judge(expected: str) -> Judge:
    def judge(node: dict[str, Any]) -> bool | None:
        if node.get("target_power_state") is not None:
            return None
        return node.get("power_state") == expected

    return judge


def _state_line(node: dict[str, Any]) -> str:
    state = node.get("provision_state")
    target = node.get("target_provision_state")
    power = node.get("power_state")
    text = f"{state}" + (f" -> {target}" if target else "")
    return text + f", {power or 'power unknown'}"


Column = tuple[str, Callable[[dict[str, Any]], Any]]


@dataclass(frozen=True)
class View:
    """What is followed and how it is shown: the plural noun of the summary, the live table's
    columns between the name and the elapsed time, the plain line of a change, the field
    that names an item's state and the one that tells why it failed."""

    noun: str = "node(s)"
    columns: tuple[Column, ...] = field(default=(
        ("Provision State", lambda node: node.get("provision_state")),
        ("Target", lambda node: node.get("target_provision_state") or ""),
        ("Power", lambda node: node.get("power_state") or "")))
    line: Callable[[dict[str, Any]], str] = _state_line
    state_field: str = "provision_state"
    error_field: str = "last_error"
    heading: str = "Node"


NODE_VIEW = View()
# Reads the items not finished yet: each item, or an ApiError for one that cannot be read.
Fetcher = Callable[[list[str]], dict[str, "dict[str, Any] | ApiError"]]


class Display(Protocol):
    def update(self, nodes: dict[str, dict[str, Any]], finished: dict[str, Outcome],
               elapsed_s: float) -> None: ...

    def close(self, outcomes: dict[str, Outcome]) -> None: ...


def wait_for(client: ApiClient, node_idents: Iterable[str], done_states: Collection[str],
             failed_states: Collection[str] = FAILED_PROVISION_STATES,
             timeout_s: float | None = None, *, out: IO[str] | None = None,
             poll_s: float = POLL_S) -> dict[str, Outcome]:
    """Wait until every node is in one of ``done_states`` (ok), in one of ``failed_states`` or
    a stable state that is not done (failed), or ``timeout_s`` passed (None or 0: no limit).

    Returns one Outcome per identifier, in the order given; shows progress on ``out``."""
    return watch(client, node_idents, provision_judge(done_states, failed_states), timeout_s,
                 out=out, poll_s=poll_s)


def watch(client: ApiClient, node_idents: Iterable[str], judge: Judge,
          timeout_s: float | None, *, out: IO[str] | None = None,
          poll_s: float = POLL_S, fetcher: Fetcher | None = None,
          view: View = NODE_VIEW) -> dict[str, Outcome]:
    """Follow the items until ``judge`` settles each or ``timeout_s`` passes: nodes read with
    ``fetch``, or what ``fetcher`` reads, shown as ``view`` says."""
    idents = list(dict.fromkeys(node_idents))
    stream = out or sys.stdout
    read = fetcher or (lambda pending: fetch(client, pending))
    display: Display = (LiveDisplay(stream, view) if stream.isatty()
                        else LineDisplay(stream, view))
    start = time.monotonic()
    finished: dict[str, Outcome] = {}
    nodes: dict[str, dict[str, Any]] = {}
    outage = Outage(timeout_s)
    try:
        while True:
            elapsed = time.monotonic() - start
            pending = [ident for ident in idents if ident not in finished]
            try:
                fetched = read(pending)
            except ApiError as exc:  # no answer at all, or the API is unavailable
                if not outage.lost(exc, elapsed):
                    raise
                fetched = {}
            else:
                outage.back(elapsed)
            for ident, node in fetched.items():
                if ident not in pending:  # finished before, or not followed
                    continue
                if isinstance(node, ApiError):
                    finished[ident] = Outcome(ident, False, nodes.get(ident, {}), elapsed,
                                              error=f"{node.message} (HTTP {node.status})",
                                              state_field=view.state_field)
                    continue
                nodes[ident] = node
                verdict = judge(node)
                if verdict is not None:
                    finished[ident] = Outcome(
                        ident, verdict, node, elapsed, state_field=view.state_field,
                        error=None if verdict else node.get(view.error_field))
            timed_out = bool(timeout_s) and elapsed >= (timeout_s or 0)
            if timed_out:
                for ident in idents:
                    if ident not in finished:
                        finished[ident] = Outcome(ident, False, nodes.get(ident, {}), elapsed,
                                                  timed_out=True, state_field=view.state_field)
            display.update(nodes, finished, elapsed)
            if len(finished) == len(idents):
                break
            pause = poll_s
            if timeout_s:
                pause = min(poll_s, max(0.0, start + timeout_s - time.monotonic()))
            time.sleep(pause)
    finally:
        outcomes = {ident: finished[ident] for ident in idents if ident in finished}
        display.close(outcomes)
    return outcomes


class Outage:
    """The API not answering while nodes are watched (restarted, or behind a balancer that
    lost it: 502, 503, 504): waiting goes on until the timeout, or UNREACHABLE_GIVE_UP_S
    without one; the outage and its end are told on stderr."""

    def __init__(self, timeout_s: float | None) -> None:
        self.timeout_s = timeout_s
        self.since: float | None = None

    def lost(self, error: ApiError, elapsed: float) -> bool:
        """Whether to keep waiting after ``error`` (False: give up with it)."""
        if error.status != 0 and error.status not in UNAVAILABLE:
            return False
        if self.since is None:
            self.since = elapsed
            limit = "until the timeout" if self.timeout_s else \
                f"for up to {UNREACHABLE_GIVE_UP_S:.0f} s"
            sys.stderr.write(f"The API does not answer ({error.message}); retrying {limit}\n")
        return bool(self.timeout_s) or elapsed - self.since < UNREACHABLE_GIVE_UP_S

    def back(self, elapsed: float) -> None:
        if self.since is not None:
            sys.stderr.write(f"The API answers again after {elapsed - self.since:.1f} s\n")
            self.since = None


def fetch(client: ApiClient, idents: list[str]) -> dict[str, dict[str, Any] | ApiError]:
    """The watched fields of each node; an ApiError for a node that cannot be read. No
    answer, or 503, raises."""
    fields = ",".join(WATCHED_FIELDS)
    result: dict[str, dict[str, Any] | ApiError] = {}
    if len(idents) <= SINGLE_FETCH_MAX:
        for ident in idents:
            try:
                result[ident] = client.get(f"/v1/nodes/{ident}", params={"fields": fields})
            except ApiError as exc:
                if exc.status == 0 or exc.status in UNAVAILABLE:
                    raise
                result[ident] = exc
        return result
    by_key: dict[str, dict[str, Any]] = {}
    for node in client.list_all("/v1/nodes", "nodes", params={"fields": fields}):
        by_key[node["uuid"]] = node
        if node.get("name"):
            by_key[node["name"]] = node
    for ident in idents:
        node = by_key.get(ident) or by_key.get(ident.lower())
        result[ident] = node if node is not None else ApiError(
            404, f"Node {ident} could not be found.")
    return result


def summary(outcomes: dict[str, Outcome], noun: str = "node(s)") -> str:
    total = len(outcomes)
    ok = [o for o in outcomes.values() if o.ok]
    timed_out = [o for o in outcomes.values() if o.timed_out]
    failed = [o for o in outcomes.values() if not o.ok and not o.timed_out]
    parts = [f"{len(ok)} of {total} {noun} done"]
    if failed:
        parts.append(f"{len(failed)} failed")
    if timed_out:
        parts.append(f"{len(timed_out)} timed out")
    return ", ".join(parts)


class LineDisplay:
    """One line per change of a node, for logs and pipes."""

    def __init__(self, out: IO[str], view: View = NODE_VIEW) -> None:
        self.out = out
        self.view = view
        self.seen: dict[str, str] = {}
        self.reported: set[str] = set()

    def _say(self, elapsed_s: float, text: str) -> None:
        print(f"[{elapsed_s:6.1f}s] {text}", file=self.out, flush=True)

    def update(self, nodes: dict[str, dict[str, Any]], finished: dict[str, Outcome],
               elapsed_s: float) -> None:
        for ident, node in nodes.items():
            line = self.view.line(node)
            if self.seen.get(ident) != line and ident not in self.reported:
                self.seen[ident] = line
                label = node.get("name") or node.get("uuid") or ident
                self._say(elapsed_s, f"{label}: {line}")
        for ident, outcome in finished.items():
            if ident not in self.reported:
                self.reported.add(ident)
                mark = "done" if outcome.ok else "FAILED"
                self._say(outcome.elapsed_s, f"{mark} {outcome.describe()}")

    def close(self, outcomes: dict[str, Outcome]) -> None:
        print(summary(outcomes, self.view.noun), file=self.out, flush=True)


class LiveDisplay:
    """A table redrawn in place on a terminal."""

    def __init__(self, out: IO[str], view: View = NODE_VIEW) -> None:
        from rich.console import Console
        from rich.live import Live

        self.view = view
        self.console = Console(file=out)
        self.live = Live(console=self.console, refresh_per_second=4, transient=False,
                         vertical_overflow="ellipsis")
        self.live.start()

    def update(self, nodes: dict[str, dict[str, Any]], finished: dict[str, Outcome],
               elapsed_s: float) -> None:
        from rich.table import Table
        from rich.text import Text

        view = self.view
        total = max(len(nodes), len(finished))
        table = Table(view.heading, *(title for title, _ in view.columns), "Elapsed",
                      "Last Error", title=f"{len(finished)} of {total} finished, "
                                          f"{elapsed_s:.0f} s")
        for ident, node in nodes.items():
            outcome = finished.get(ident)
            seconds = outcome.elapsed_s if outcome else elapsed_s
            style = "" if outcome is None else ("green" if outcome.ok else "red")
            cells = [Text(str(value(node))) for _, value in view.columns]
            cells[0].stylize(style)
            table.add_row(Text(str(node.get("name") or node.get("uuid") or ident)), *cells,
                          Text(f"{seconds:.1f} s"),
                          Text(str((outcome.error if outcome else None)
                                   or node.get(view.error_field) or "")))
        self.live.update(table, refresh=True)

    def close(self, outcomes: dict[str, Outcome]) -> None:
        from rich.text import Text

        self.live.stop()
        for outcome in outcomes.values():
            if not outcome.ok:
                self.console.print(Text(f"FAILED {outcome.describe()}", style="red"))
        self.console.print(Text(summary(outcomes, self.view.noun)))
