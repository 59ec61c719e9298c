#!/usr/bin/env python3
"""The teacher's room page while a 40-PC room is restored at once (#19): does it stay smooth?

A fresh ``enclume-aio`` on 127.0.0.1 (no authentication: the page's visitor is an admin), its
PCs inserted as available ``fake-hardware`` nodes in one room (``restore_room.prepare``). Debian's
chromium, headless (``tests/support/browser.py``), opens the room page, and the page is
instrumented (``tests/support/page_timing.py``): the stream's messages (one card each), each
drawing of the cards (app.js's ``enclume:cards``: how many cards, main-thread ms), the long
tasks (``PerformanceObserver`` 'longtask'), and when each card changed to which text.
Restores of the whole room, one after the other:

- ``warm-up``: the first deploy of the available PCs, the page open;
- ``page open``: ``--runs`` rebuilds of every PC, measured (medians reported too);
- ``page closed``: as many rebuilds with the page closed, for the server's CPU without it.

The fake deploy lasts ``--deploy-delay`` (a range, default 3 to 6 s) and reports its progress
every 0.5 s as an agent does, so every PC sends "restoring N % at R MB/s" several times: the
room's 40 PCs change state at once. Per measured restore: messages/s the page handled, the
page's update latency (a node turning ``active`` in the database, ``provision_updated_at``, to
its card saying "active on"), the drawings' main-thread time, long tasks, and the server's CPU
(``enclume-aio`` process) per message: (CPU with the page - CPU without) / messages.

    .venv/bin/python benchmarks/room_page.py
    .venv/bin/python benchmarks/room_page.py --pcs 40 --deploy-delay 3,6 --interval 0.5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # lab/, tests/ are not installed

from restore_room import ENDED, ok, prepare, process_cpu_s

from lab.local_service import Server, running_aio
from tests.support.browser import cards, headless_chromium, open_page, until
from tests.support.page_timing import instrument, percentile, read_timing, update_latencies

E = "/enclume/v1"


def restore(api: httpx.Client, server: Server) -> dict[str, Any]:
    """One restore of the whole room, to its end: its time and the server's CPU."""
    cpu = process_cpu_s(server.process.pid)
    started = time.monotonic()
    job = ok(api.post(f"{E}/rooms/BENCH/actions", json={"action": "restore"}), 202)
    while job["state"] not in ENDED:
        time.sleep(0.2)
        job = ok(api.get(f"{E}/jobs/{job['uuid']}"))
    return {"state": job["state"], "seconds": round(time.monotonic() - started, 2),
            "server_cpu_s": round(process_cpu_s(server.process.pid) - cpu, 2)}


def with_page(api: httpx.Client, server: Server, pcs: int) -> dict[str, Any]:
    """A restore watched by the room page, until every card says so."""
    with headless_chromium() as browser:
        open_page(browser, f"{server.url}/ui/rooms/BENCH")
        until(lambda: len(cards(browser)) == pcs, 60, "the room's cards")
        instrument(browser)
        result = restore(api, server)
        until(lambda: all(s.startswith("active on") for s in cards(browser).values()), 60,
              "every card active")
        timing = read_timing(browser)
    nodes = ok(api.get("/v1/nodes", params={"fields": "name,provision_updated_at",
                                            "limit": 1000}))["nodes"]
    latencies = update_latencies(timing, nodes, "active on")
    return {**result, **timing.summary(),
            "update_latency_s_median": round(percentile(latencies, 50), 2),
            "update_latency_s_p95": round(percentile(latencies, 95), 2),
            "update_latency_s_max": round(latencies[-1] if latencies else 0.0, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pcs", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3,
                        help="measured restores with the page open, and as many without")
    parser.add_argument("--deploy-delay", default="3,6", help="fake deploy's range, s")
    parser.add_argument("--interval", type=float, default=0.5,
                        help="ENCLUME_CLASSROOM_INTERVAL_S (the job advancer's period)")
    args = parser.parse_args()
    low, high = (float(x) for x in args.deploy_delay.split(","))
    env = {"ENCLUME_FAKE_DEPLOY_DELAY_S": f"[{low}, {high}]",
           "ENCLUME_CLASSROOM_INTERVAL_S": str(args.interval),
           "ENCLUME_POWER_SYNC_INTERVAL_S": "3600"}
    with tempfile.TemporaryDirectory(prefix="enclume-room-page-") as tmp, \
            running_aio(Path(tmp), env=env) as server, \
            httpx.Client(base_url=server.url, timeout=60, trust_env=False,
                         headers={"X-OpenStack-Ironic-API-Version": "latest"}) as api:
        try:
            prepare(api, f"sqlite:///{Path(tmp) / 'enclume.sqlite'}", args.pcs)
            warm_up = with_page(api, server, args.pcs)
            watched = [with_page(api, server, args.pcs) for _ in range(args.runs)]
            alone = [restore(api, server) for _ in range(args.runs)]
        except Exception:
            print(f"--- tail of {server.log} ---\n{server.log_text()[-4000:]}",
                  file=sys.stderr)
            raise
    medians = {key: statistics.median(run[key] for run in watched) for key in watched[0]
               if isinstance(watched[0][key], int | float)}
    closed_cpu = statistics.median(run["server_cpu_s"] for run in alone)
    print(json.dumps({
        "benchmark": "room_page", "pcs": args.pcs, "fake_deploy_delay_s": [low, high],
        "classroom_interval_s": args.interval, "warm_up": warm_up, "page_open": watched,
        "page_closed": alone, "page_open_medians": medians,
        "server_cpu_ms_per_message": round((medians["server_cpu_s"] - closed_cpu) * 1000
                                           / max(medians["messages"], 1), 2)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
