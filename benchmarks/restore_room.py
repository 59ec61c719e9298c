#!/usr/bin/env python3
"""Time from "restore room" to every PC active, through the real API and conductor (#16).

For each room size (``--pcs``, default 40 and 400) a fresh ``enclume-aio`` is started on
127.0.0.1 (``lab/local_service.running_aio``, SQLite in a temp dir), its PCs are inserted into
its database as available, powered-off ``fake-hardware`` nodes (``fake_nodes.py``), and a room
with all of them and one image is created through ``/enclume/v1``. Then ``--runs`` restores, one
after the other: ``POST /enclume/v1/rooms/ROOM/actions {"action": "restore"}``, and
``GET /enclume/v1/jobs/JOB`` every ``--poll`` seconds until the job has ended; the first restore
deploys ``available`` PCs, the next ones rebuild ``active`` ones (a room restored again).

The fake hardware's delays are set so that the figure is Enclume's own overhead:
``ENCLUME_FAKE_DEPLOY_DELAY_S=[D, D]`` and ``ENCLUME_FAKE_POWER_DELAY_S=[P, P]`` with D and P
from ``--deploy-delay`` and ``--power-delay`` (default 0 and 0: no simulated disk write or BMC
call). Everything else is ``enclume-aio``'s defaults (``ENCLUME_CLASSROOM_INTERVAL_S=2``: the job
advancer's period, ``ENCLUME_MAX_CONCURRENT_DEPLOYS=250``, ``ENCLUME_CONDUCTOR_WORKERS=100``)
except ``ENCLUME_POWER_SYNC_INTERVAL_S=3600`` (no power sync during the measure) and
``--interval`` when given.

Prints one JSON line per room size: ``total_s`` (request to the job ended with every PC
active, as the client saw it), ``server_s`` (the job's ``finished_at`` - ``created_at``),
``first_pc_started_s``, ``per_pc_ms`` (total / PCs), ``server_cpu_s`` and
``server_cpu_ms_per_pc`` (CPU of the enclume-aio process during the restore).

    .venv/bin/python benchmarks/restore_room.py                  # 40 and 400 PCs, 2 runs
    .venv/bin/python benchmarks/restore_room.py --pcs 40 --runs 3 --interval 0.5
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # lab/ is not installed

from fake_nodes import insert_nodes

from lab.local_service import Server, running_aio
from services.common.db import Database

E = "/enclume/v1"
ENDED = ("done", "failed", "failed-partly", "cancelled")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def ok(response: httpx.Response, status: int = 200) -> Any:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.method} {response.request.url}: "
                           f"{response.status_code} {response.text}")
    return response.json()


def prepare(api: httpx.Client, url: str, pcs: int) -> list[str]:
    db = Database(url)
    try:
        insert_nodes(db, pcs)
    finally:
        db.engine.dispose()
    names = [f"bench-{i:05d}" for i in range(pcs)]
    ok(api.post(f"{E}/images", json={"name": "debian", "versions": [
        {"version": "v1", "source": "http://images.example/debian.img",
         "checksum": "c" * 64}]}), 201)
    ok(api.post(f"{E}/rooms", json={"name": "BENCH", "time_zone": "UTC", "pcs": names,
                                     "allowed_images": ["debian"],
                                     "default_image": "debian"}), 201)
    return names


def restore(api: httpx.Client, server: Server, pcs: int, poll: float) -> dict[str, Any]:
    cpu = process_cpu_s(server.process.pid)
    started = time.monotonic()
    job = ok(api.post(f"{E}/rooms/BENCH/actions", json={"action": "restore"}), 202)
    first_start = None
    while True:
        job = ok(api.get(f"{E}/jobs/{job['uuid']}"))
        now = time.monotonic() - started
        if first_start is None and any(pc["step"] != "queued" for pc in job["pcs"]):
            first_start = now
        if job["state"] in ENDED:
            break
        time.sleep(poll)
    total = time.monotonic() - started
    cpu = process_cpu_s(server.process.pid) - cpu
    nodes = ok(api.get("/v1/nodes", params={"fields": "provision_state", "limit": 1000}))
    active = sum(n["provision_state"] == "active" for n in nodes["nodes"])
    server_s = (datetime.fromisoformat(job["finished_at"])
                - datetime.fromisoformat(job["created_at"])).total_seconds()
    return {"state": job["state"], "pcs_active": active, "total_s": round(total, 2),
            "server_s": round(server_s, 2), "first_pc_started_s": round(first_start or 0, 2),
            "per_pc_ms": round(total * 1000 / pcs, 1), "server_cpu_s": round(cpu, 2),
            "server_cpu_ms_per_pc": round(cpu * 1000 / pcs, 1)}


def run_size(pcs: int, args: argparse.Namespace) -> dict[str, Any]:
    env = {"ENCLUME_FAKE_DEPLOY_DELAY_S": f"[{args.deploy_delay}, {args.deploy_delay}]",
           "ENCLUME_FAKE_POWER_DELAY_S": f"[{args.power_delay}, {args.power_delay}]",
           "ENCLUME_POWER_SYNC_INTERVAL_S": "3600"}
    if args.interval is not None:
        env["ENCLUME_CLASSROOM_INTERVAL_S"] = str(args.interval)
    with tempfile.TemporaryDirectory(prefix="enclume-restore-") as tmp, \
            running_aio(Path(tmp), env=env) as server, \
            httpx.Client(base_url=server.url, timeout=60, trust_env=False,
                         headers={"X-OpenStack-Ironic-API-Version": "latest"}) as api:
        try:
            prepare(api, f"sqlite:///{Path(tmp) / 'enclume.sqlite'}", pcs)
            runs = [restore(api, server, pcs, args.poll) for _ in range(args.runs)]
        except Exception:
            print(f"--- tail of {server.log} ---\n{server.log_text()[-4000:]}",
                  file=sys.stderr)
            raise
    return {"benchmark": "restore_room", "pcs": pcs, "fake_deploy_delay_s": args.deploy_delay,
            "fake_power_delay_s": args.power_delay,
            "classroom_interval_s": args.interval if args.interval is not None else 2.0,
            "poll_s": args.poll, "runs": runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pcs", default="40,400", help="room sizes (default 40,400)")
    parser.add_argument("--runs", type=int, default=2,
                        help="restores per size: the first deploys, the next rebuild")
    parser.add_argument("--deploy-delay", type=float, default=0.0)
    parser.add_argument("--power-delay", type=float, default=0.0)
    parser.add_argument("--interval", type=float, default=None,
                        help="ENCLUME_CLASSROOM_INTERVAL_S (default: the server's, 2)")
    parser.add_argument("--poll", type=float, default=0.2, help="client poll period (s)")
    args = parser.parse_args()
    for size in (int(s) for s in args.pcs.split(",")):
        print(json.dumps(run_size(size, args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
