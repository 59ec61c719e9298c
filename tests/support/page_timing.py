"""What the browser measures of the room page while its PCs change: the live stream's messages,
each drawing of the cards received (``enclume:cards`` from app.js: how many cards, how many ms
of the main thread), its long tasks (``PerformanceObserver`` 'longtask': 50 ms or more without a
frame), and when each card changed to which text (wall clock, to compare with the server's
timestamps). The browser tests
bound these (a regression fails them) and ``benchmarks/room_page.py`` reports them."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from selenium.webdriver import Chrome

INSTRUMENT = r"""
const timing = window.enclumeTiming = {longTasks: [], messages: 0, draws: [], changes: [],
                                       started: Date.now()};
new PerformanceObserver(list => {
  for (const entry of list.getEntries()) timing.longTasks.push(entry.duration);
}).observe({type: 'longtask'});
document.addEventListener('htmx:sseBeforeMessage', () => { timing.messages++; }, true);
// The page's own drawing of the cards it received (app.js): how many, in how many ms.
document.addEventListener('enclume:cards', event => {
  timing.draws.push([event.detail.cards, event.detail.ms]);
});
const grid = document.querySelector('ul.pcs');
const last = {};
const look = () => {
  const now = Date.now();
  for (const card of grid.querySelectorAll('.status')) {
    const text = card.querySelector('.state').textContent.trim();
    if (last[card.dataset.pc] !== text) {
      last[card.dataset.pc] = text;
      timing.changes.push([now, card.dataset.pc, text]);
    }
  }
};
look();
new MutationObserver(look).observe(grid, {subtree: true, childList: true, characterData: true});
"""


def instrument(browser: Chrome) -> None:
    """Start measuring on the room page that is open now (call again after a reload)."""
    browser.execute_script(INSTRUMENT)


@dataclass(frozen=True)
class PageTiming:
    seconds: float  # since instrument()
    messages: int  # stream messages received (one card each)
    draws: list[tuple[int, float]]  # each time the page drew cards: how many, main-thread ms
    long_tasks_ms: list[float]
    changes: list[tuple[float, str, str]]  # when (epoch s) a PC's card changed, to what text

    def last_change_to(self, pc: str, prefix: str) -> float | None:
        times = [when for when, name, text in self.changes
                 if name == pc and text.startswith(prefix)]
        return max(times) if times else None

    def summary(self) -> dict[str, Any]:
        drawn = sorted(ms for _cards, ms in self.draws) or [0.0]
        cards = sum(count for count, _ms in self.draws)
        return {"seconds": round(self.seconds, 2), "messages": self.messages,
                "messages_per_s": round(self.messages / self.seconds, 1) if self.seconds
                else 0.0,
                "draws": len(self.draws), "cards_per_draw": round(cards / len(self.draws), 1)
                if self.draws else 0.0,
                "draw_ms_median": round(statistics.median(drawn), 2),
                "draw_ms_p95": round(percentile(drawn, 95), 2),
                "draw_ms_max": round(drawn[-1], 2),
                "long_tasks": len(self.long_tasks_ms),
                "long_tasks_ms_total": round(sum(self.long_tasks_ms), 1),
                "long_task_ms_max": round(max(self.long_tasks_ms, default=0.0), 1)}


def read_timing(browser: Chrome) -> PageTiming:
    raw = browser.execute_script("return window.enclumeTiming;")
    now_ms = browser.execute_script("return Date.now();")
    return PageTiming((now_ms - raw["started"]) / 1000, int(raw["messages"]),
                      [(int(n), float(ms)) for n, ms in raw["draws"]],
                      [float(x) for x in raw["longTasks"]],
                      [(when / 1000, str(pc), str(text)) for when, pc, text in raw["changes"]])


def percentile(ordered: list[float], percent: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))]


def update_latencies(timing: PageTiming, nodes: list[dict[str, Any]], prefix: str
                     ) -> list[float]:
    """Seconds from each node's last provision state change (``provision_updated_at``, as the
    API gives it) to its card changing to a text that starts with ``prefix``."""
    latencies = []
    for node in nodes:
        shown = timing.last_change_to(node["name"], prefix)
        changed = node.get("provision_updated_at")
        if shown is not None and changed:
            moment = datetime.fromisoformat(changed)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            latencies.append(shown - moment.timestamp())
    return sorted(latencies)
