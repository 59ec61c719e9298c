"""Following a room's job (``--wait``, ``job wait``): each PC's step, percent, throughput and
estimated end, through progress.py's loop and displays (a View of job PCs instead of nodes).

The API gives per PC ``step``, ``percent``, ``bytes_done``, ``bytes_total``, ``outcome``
(``succeeded``, ``failed``, ``skipped``; none while it works) and ``error``; throughput and
the estimated end are measured here from how ``bytes_done`` grows between two reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO, Any

from services.cli.enclume import progress
from services.cli.enclume.client import ENCLUME_PREFIX, ApiClient, ApiError

# A job in one of these states moves no more: a PC without an outcome then never gets one.
FINISHED_JOB_STATES = frozenset({"done", "failed", "failed-partly", "cancelled"})
FAILED_OUTCOME = "failed"


def job_path(job: str) -> str:
    return f"{ENCLUME_PREFIX}/jobs/{job}"


def pc_key(pc: dict[str, Any]) -> str:
    """How a PC of a job is identified: its node UUID, else its name."""
    return str(pc.get("node_uuid") or pc.get("uuid") or pc.get("node") or pc.get("name"))


def pc_name(pc: dict[str, Any]) -> str:
    return str(pc.get("name") or pc.get("node") or pc.get("node_uuid") or "?")


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class Rates:
    """Throughput per PC: bytes written since the first read that saw it writing, over the
    time since; and the estimated time left at that pace."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.first: dict[str, tuple[float, int]] = {}
        self.last: dict[str, int] = {}

    def measure(self, key: str, done: Any, total: Any) -> tuple[float | None, float | None]:
        """(bytes per second, seconds left); None where it cannot be told yet."""
        if not isinstance(done, int) or isinstance(done, bool):
            return None, None
        now = self.clock()
        start = self.first.setdefault(key, (now, done))
        if done < self.last.get(key, done):  # written again from the start (a retry)
            start = self.first[key] = (now, done)
        self.last[key] = done
        elapsed = now - start[0]
        if elapsed <= 0 or done == start[1]:
            return None, None
        rate = (done - start[1]) / elapsed
        left = (total - done) / rate if isinstance(total, int) and total >= done else None
        return rate, left


def pc_line(pc: dict[str, Any]) -> str:
    """``writing 42% 110.0 MiB/s ETA 1m05s`` — what a plain line shows of one PC."""
    parts = [str(pc.get("step") or "waiting")]
    if pc.get("percent") is not None:
        parts.append(f"{pc['percent']}%")
    if pc.get("rate") is not None:
        parts.append(f"{human_bytes(pc['rate'])}/s")
    if pc.get("eta") is not None:
        parts.append(f"ETA {human_duration(pc['eta'])}")
    if pc.get("outcome"):
        parts.append(str(pc["outcome"]))
    return " ".join(parts)


PC_VIEW = progress.View(
    noun="PC(s)",
    columns=(("Step", lambda pc: pc.get("step") or ""),
             ("Percent", lambda pc: "" if pc.get("percent") is None else f"{pc['percent']}%"),
             ("Throughput", lambda pc: "" if pc.get("rate") is None
              else f"{human_bytes(pc['rate'])}/s"),
             ("ETA", lambda pc: "" if pc.get("eta") is None else human_duration(pc["eta"])),
             ("Outcome", lambda pc: pc.get("outcome") or "")),
    line=pc_line, state_field="step", error_field="error", heading="PC")


def pc_judge(pc: dict[str, Any]) -> bool | None:
    """Done with any outcome but ``failed``; failed with it, or without one when the job has
    ended (cancelled, or given up)."""
    outcome = pc.get("outcome")
    if outcome == FAILED_OUTCOME:
        return False
    if outcome:
        return True
    if pc.get("job_state") in FINISHED_JOB_STATES:
        return False
    return None


def job_fetcher(client: ApiClient, job: str, rates: Rates) -> progress.Fetcher:
    """Reads the job once per round: its PCs keyed by ``pc_key``, with throughput and ETA."""

    def read(pending: list[str]) -> dict[str, dict[str, Any] | ApiError]:
        document = client.get(job_path(job))
        found: dict[str, dict[str, Any] | ApiError] = {}
        for pc in document.get("pcs") or []:
            key = pc_key(pc)
            if key not in pending:
                continue
            rate, left = rates.measure(key, pc.get("bytes_done"), pc.get("bytes_total"))
            found[key] = {**pc, "name": pc_name(pc), "uuid": pc.get("node_uuid"),
                          "rate": rate, "eta": left, "job_state": document.get("state")}
        for key in pending:
            found.setdefault(key, ApiError(404, f"PC {key} is no longer in job {job}."))
        return found

    return read


def follow_job(client: ApiClient, document: dict[str, Any], timeout_s: float | None, *,
               out: IO[str] | None = None, poll_s: float = progress.POLL_S,
               only: list[str] | None = None) -> dict[str, progress.Outcome]:
    """Follow the PCs of the job ``document`` (all, or the keys in ``only``) until each has an
    outcome, the job ends or ``timeout_s`` passes."""
    keys = only if only is not None else [pc_key(pc) for pc in document.get("pcs") or []]
    return progress.watch(client, keys, pc_judge, timeout_s, out=out, poll_s=poll_s,
                          fetcher=job_fetcher(client, str(document["uuid"]), Rates()),
                          view=PC_VIEW)
