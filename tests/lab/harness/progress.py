"""Following nodes through the API: each provision state a node passes through, and when.

`NodeProgress` polls `GET /v1/nodes/<node>` for the nodes it waits for and records every change
of (provision_state, target_provision_state) with the monotonic time it was first seen, so a
test or the demo can say how long each step took. `on_change` is called with every change (the
demo prints it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tests.lab.harness.processes import LabError

FAILED_STATES = frozenset({"deploy failed", "clean failed", "inspect failed", "rescue failed",
                           "error"})
POLL_INTERVAL_S = 0.5


@dataclass(frozen=True)
class Change:
    at: float  # time.monotonic() when first seen
    provision_state: str
    target: str | None
    last_error: str | None


GetNode = Callable[[str], dict[str, Any]]
OnChange = Callable[[str, Change], None]


class NodeProgress:
    def __init__(self, get_node: GetNode, on_change: OnChange | None = None,
                 interval: float = POLL_INTERVAL_S) -> None:
        self._get_node = get_node
        self._on_change = on_change
        self.interval = interval
        self.changes: dict[str, list[Change]] = {}

    def poll(self, names: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The nodes now; records what changed since the last poll."""
        nodes = {}
        for name in names:
            node = self._get_node(name)
            nodes[name] = node
            history = self.changes.setdefault(name, [])
            key = (node["provision_state"], node.get("target_provision_state"))
            if not history or (history[-1].provision_state, history[-1].target) != key:
                change = Change(time.monotonic(), key[0], key[1], node.get("last_error"))
                history.append(change)
                if self._on_change is not None:
                    self._on_change(name, change)
        return nodes

    def wait(self, names: Iterable[str], wanted: str, timeout: float,
             failed: Iterable[str] = FAILED_STATES,
             between: Callable[[], None] | None = None) -> dict[str, dict[str, Any]]:
        """The nodes once every one rests in `wanted` (no target state, not locked); LabError
        as soon as one lands in a `failed` state, or after `timeout` seconds. `between` runs
        after each poll (a check, or something to show)."""
        names = list(names)
        failing = set(failed) - {wanted}
        deadline = time.monotonic() + timeout
        while True:
            nodes = self.poll(names)
            for name, node in nodes.items():
                if node["provision_state"] in failing and node.get("reservation") is None:
                    raise LabError(f"{name} went to {node['provision_state']}: "
                                   f"{node.get('last_error')}")
            if all(self._rests_in(node, wanted) for node in nodes.values()):
                return nodes
            if between is not None:
                between()
            if time.monotonic() > deadline:
                states = {name: (node["provision_state"], node.get("target_provision_state"))
                          for name, node in nodes.items()}
                raise LabError(f"timed out after {timeout:.0f} s waiting for {wanted}: {states}")
            time.sleep(self.interval)

    @staticmethod
    def _rests_in(node: dict[str, Any], wanted: str) -> bool:
        if node["provision_state"] != wanted or node.get("reservation") is not None:
            return False
        return wanted in FAILED_STATES or not node.get("target_provision_state")

    def first_seen(self, name: str, state: str, since: float = 0.0) -> float | None:
        """When `state` was first seen at or after `since`, or None."""
        for change in self.changes.get(name, []):
            if change.at >= since and change.provision_state == state:
                return change.at
        return None

    def steps(self, name: str, since: float, until: float | None = None
              ) -> list[tuple[str, float]]:
        """(state, seconds spent in it) for each state seen from `since` on, in order; the
        last one lasts until `until` (default: now)."""
        seen = [change for change in self.changes.get(name, []) if change.at >= since]
        end = time.monotonic() if until is None else until
        spans = []
        for index, change in enumerate(seen):
            stop = seen[index + 1].at if index + 1 < len(seen) else end
            spans.append((change.provision_state, max(0.0, stop - change.at)))
        return spans
