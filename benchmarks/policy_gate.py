#!/usr/bin/env python3
"""What the /v1 policy gate costs a request, with and without a policy file.

Two measurements, each with Ironic's defaults and with the policy file below
(ENCLUME_API_POLICY_FILE):

- ``http``: ``--requests`` requests by a system admin (the noauth caller) through a real API
  served by uvicorn on loopback on a SQLite database (tests/support/api_stack.py): a node's
  GET, its power-state PUT and a clean with a runbook (refused by the conductor: the node is
  in ``enroll``, after the gate and the endpoint's runbook checks). Reported: the wall time per
  request and the time spent in the gate (services/api/policy_gate.enforce_policy, timed by
  a wrapper installed before the app is made).
- ``decisions``: ``--decisions`` answers of ``policy.allowed`` for a project member of the
  node's owner on a node, for rules the file rewrites with ``rule:`` references (and the
  same rules under the defaults): the cost of one policy decision (the fastest of 5 rounds).

Usage::

    .venv/bin/python benchmarks/policy_gate.py [--requests 300] [--decisions 20000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ is not installed

from fastapi import Request

from services.api import app as api_app
from services.api import policy, policy_gate
from services.api.policy_file import load_rules
from tests.support.api_stack import at, served_sqlite_api

POLICY_FILE = """\
"site_admin": "role:admin and system_scope:all"
"owner_member": "role:member and project_id:%(node.owner)s"
"lessee_member": "role:member and project_id:%(node.lessee)s"
"baremetal:node:get": "rule:site_admin or rule:owner_member or rule:lessee_member"
"baremetal:node:set_power_state": "rule:site_admin or rule:owner_member"
"baremetal:step:execute:deploy.erase_devices": "rule:site_admin"
"""
MEMBER = policy.Credentials(frozenset({"member", "reader"}), project_id="p1",
                            project_name="p1")
NODE = policy.Target(policy.NODE, "p1", "p2")


def _timed_gate(spent: list[float]) -> Callable[[Request], Awaitable[None]]:
    gate = policy_gate.enforce_policy

    async def timed(request: Request) -> None:
        started = time.perf_counter()
        try:
            await gate(request)
        finally:
            spent.append(time.perf_counter() - started)
    return timed


def http(policy_file: Path | None, requests: int) -> dict[str, float]:
    spent: list[float] = []
    api_app.enforce_policy = _timed_gate(spent)  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as directory:
        sections = {"api": {"policy_file": policy_file}} if policy_file else {}
        with served_sqlite_api(Path(directory), **sections) as stack:
            client = stack.client
            created = client.post("/v1/nodes", json={"driver": "fake-hardware"})
            uuid = created.json().get("uuid") or sys.exit(created.text)
            client.post("/v1/runbooks", json={"name": "CUSTOM_LIGHT", "steps": [
                {"interface": "deploy", "step": "erase_devices_metadata", "order": 1}]})
            client.put(f"/v1/nodes/{uuid}/traits/CUSTOM_LIGHT")
            calls = [
                lambda: client.get(f"/v1/nodes/{uuid}"),
                lambda: client.put(f"/v1/nodes/{uuid}/states/power", json={"target": "power on"}),
                lambda: client.put(f"/v1/nodes/{uuid}/states/provision", headers=at("1.92"),
                                   json={"target": "clean", "runbook": "CUSTOM_LIGHT"}),
            ]
            for call in calls:
                call()  # warm-up
            spent.clear()
            started = time.perf_counter()
            for index in range(requests):
                calls[index % len(calls)]()
            wall = time.perf_counter() - started
    api_app.enforce_policy = policy_gate.enforce_policy
    return {"request_ms": 1000 * wall / requests,
            "gate_ms_median": 1000 * statistics.median(spent),
            "gate_ms_mean": 1000 * statistics.fmean(spent)}


def decisions(rules: Any, count: int) -> float:
    """The fastest of 5 rounds (the machine's other load only slows one down)."""
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(count):
            policy.allowed("baremetal:node:get", MEMBER, NODE, rules)
            policy.allowed("baremetal:node:set_power_state", MEMBER, NODE, rules)
        rounds.append(1e6 * (time.perf_counter() - started) / (2 * count))
    return min(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--decisions", type=int, default=20000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "policy.yaml"
        path.write_text(POLICY_FILE)
        file_rules = load_rules(path)
        for label, rules, source in (("defaults", policy.RULES, None),
                                     ("policy file", file_rules, path)):
            figures = http(source, options.requests)
            print(f"{label:12} http: {figures['request_ms']:.2f} ms a request, gate "
                  f"{figures['gate_ms_median']:.3f} ms median "
                  f"({figures['gate_ms_mean']:.3f} mean); a decision "
                  f"{decisions(rules, options.decisions):.2f} us")


if __name__ == "__main__":
    main()
