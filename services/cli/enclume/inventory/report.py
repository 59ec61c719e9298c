"""What ``enclume enroll`` tells the operator: problems, the plan, progress and the summary."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import IO, Any

from services.cli.enclume.inventory.apply import SECRETS_RESENT, Result
from services.cli.enclume.inventory.model import Problem
from services.cli.enclume.inventory.plan import Plan


def problems_text(source: str, problems: list[Problem]) -> str:
    count = len(problems)
    lines = [f"Error: {source}: {count} problem{'s' if count != 1 else ''}, nothing was "
             f"written:"]
    lines.extend(f"  {problem}" for problem in sorted(problems))
    return "\n".join(lines)


def plan_text(source: str, plan: Plan) -> str:
    counts = plan.counts()
    lines = [f"Plan for {source}: {counts['create']} to create, {counts['update']} to update, "
             f"{counts['unchanged']} unchanged."]
    for change in plan.changes:
        if change.kind != "unchanged":
            what = f": {', '.join(change.changed)}" if change.changed else ""
            lines.append(f"  {change.kind:<7} {change.name}{what}")
    unseen = sum(1 for change in plan.changes if change.secret_ops)
    if unseen:
        lines.append(f"Secrets of {unseen} existing node(s) cannot be compared here (the API "
                     f"shows them as ******): the API compares them when enrolling.")
    return "\n".join(lines)


def plan_document(source: str, plan: Plan) -> dict[str, Any]:
    return {
        "file": source,
        "dry_run": True,
        "counts": plan.counts(),
        "nodes": [{"name": change.name, "action": change.kind, "changes": change.changed,
                   "secrets_compared_by_api": bool(change.secret_ops)}
                  for change in plan.changes],
    }


def summary_counts(results: list[Result], unchanged: int) -> dict[str, int]:
    counts = Counter(result.outcome for result in results)
    resent = sum(1 for result in results if result.detail == SECRETS_RESENT)
    return {"created": counts["created"], "updated": counts["updated"],
            "unchanged": counts["unchanged"] + unchanged, "failed": counts["failed"],
            "secrets_resent": resent}


def summary_text(source: str, counts: dict[str, int], elapsed_s: float) -> str:
    parts = [f"{counts[key]} {key}" for key in ("created", "updated", "unchanged", "failed")]
    resent = counts.get("secrets_resent", 0)
    if resent:
        parts.append(f"secrets of {resent} unchanged node(s) re-sent (the API applies those "
                     f"that differ)")
    elif not counts["created"] and not counts["updated"] and not counts["failed"]:
        parts.append("nothing to do")
    return f"{source}: {', '.join(parts)} in {elapsed_s:.1f} s."


def results_document(source: str, results: list[Result], counts: dict[str, int],
                     elapsed_s: float) -> dict[str, Any]:
    return {
        "file": source,
        "dry_run": False,
        "counts": counts,
        "elapsed_s": round(elapsed_s, 3),
        "nodes": [{"name": r.name, "uuid": r.node_uuid, "result": r.outcome, "detail": r.detail}
                  for r in results],
    }


class ProgressCounter:
    """``enroll: 120/500 done, 1 failed`` on stderr: redrawn in place on a terminal, else a
    line at most every ``every_s`` seconds; each failure on a line of its own at once."""

    def __init__(self, total: int, out: IO[str] | None = None, every_s: float = 2.0) -> None:
        self.total = total
        self.out = out or sys.stderr
        self.every_s = every_s
        self.tty = self.out.isatty()
        self.done = 0
        self.failed = 0
        self._last = 0.0

    def __call__(self, result: Result) -> None:
        self.done += 1
        if result.outcome == "failed":
            self.failed += 1
            self._clear()
            print(f"FAILED {result.name}: {result.detail}", file=self.out, flush=True)
        now = time.monotonic()
        if self.tty or now - self._last >= self.every_s or self.done == self.total:
            self._last = now
            self._show()

    def _line(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        return f"enroll: {self.done}/{self.total} done{failed}"

    def _show(self) -> None:
        if self.tty:
            print(f"\r{self._line()}", end="", file=self.out, flush=True)
        else:
            print(self._line(), file=self.out, flush=True)

    def _clear(self) -> None:
        if self.tty:
            print("\r\033[K", end="", file=self.out)

    def close(self) -> None:
        if self.tty and self.done:
            print(file=self.out, flush=True)
