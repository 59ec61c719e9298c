#!/usr/bin/env python3
"""Power sync of one conductor against emulated BMCs: 500 IPMI and 500 Redfish systems.

What is measured: the wall-clock and CPU time of ``PeriodicTasks(manager).sync_power_states()``,
the cycle a conductor runs every ENCLUME_POWER_SYNC_INTERVAL_S, when its nodes are real
``ipmi`` and ``redfish`` nodes talking to real protocol peers on loopback:
- IPMI: ``python -m tests.support.ipmi_bmc`` serving ``--ipmi`` BMCs (pyghmi ``Bmc`` emulator,
  RMCP+ cipher suite 3) in a process of its own;
- Redfish: ``sushy-emulator --fake`` with ``--redfish`` systems (HTTP, basic auth).
The conductor (``ConductorManager`` + ``PeriodicTasks``) runs in this process on SQLite; its
CPU time per node is this process's CPU time divided by the nodes synced, so the peers' own
CPU is not counted. The first cycle logs in to every BMC (RMCP+ session set-up, Redfish
connections); later cycles reuse the sessions. Both are reported.

Ironic's reference point: ``[conductor] sync_power_state_interval = 60`` s with
``sync_power_state_workers = 8``, and its guidance of a few hundred to 1,000 nodes per conductor.

The IPMI emulator answers in microseconds on loopback, faster than any real BMC; pyghmi's client
then sometimes misses the wake-up for an answer that arrived before it started waiting and
stalls until its retry timer (~0.8 s, measured). ``--latency-ms`` also measures with the BMCs
answering a few milliseconds late, as real ones do.

Usage::

    .venv/bin/python benchmarks/bmc_power_sync.py [--ipmi 500] [--redfish 500]
        [--workers 8,32] [--latency-ms 2] [--cycles 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import delete  # noqa: E402

from services.common.config import Settings  # noqa: E402
from services.common.db import Database, upgrade_schema  # noqa: E402
from services.common.models import Node, utcnow  # noqa: E402
from services.common.node_fields import INTERFACES  # noqa: E402
from services.common.states import ProvisionState  # noqa: E402
from services.conductor.manager import ConductorManager  # noqa: E402
from services.conductor.periodic import PeriodicTasks  # noqa: E402
from services.drivers.base import POWER_OFF  # noqa: E402
from services.drivers.registry import HARDWARE_TYPES, Drivers  # noqa: E402
from tests.support.redfish_emulator import RedfishEmulator, fake_systems  # noqa: E402

HOSTNAME = "bench-conductor"
USER = "admin"


@dataclass
class Cycle:
    seconds: float
    cpu_s: float
    nodes: int
    failed: int


@dataclass
class Result:
    latency_ms: float
    workers: int
    ipmi: int
    redfish: int
    cycles: list[Cycle] = field(default_factory=list)

    @property
    def nodes(self) -> int:
        return self.ipmi + self.redfish

    @property
    def cold_s(self) -> float:
        return self.cycles[0].seconds

    @property
    def warm_s(self) -> float:
        return statistics.median(c.seconds for c in self.cycles[1:])

    @property
    def warm_cpu_ms_per_node(self) -> float:
        return statistics.median(c.cpu_s for c in self.cycles[1:]) / self.nodes * 1000

    def summary(self) -> dict[str, Any]:
        return {**asdict(self), "cold_s": self.cold_s, "warm_s": self.warm_s,
                "warm_nodes_per_s": self.nodes / self.warm_s,
                "warm_cpu_ms_per_node": self.warm_cpu_ms_per_node}


@contextmanager
def ipmi_fleet(count: int, password_file: Path, latency_ms: float) -> Iterator[list[int]]:
    """The BMC emulator as a process of its own, each BMC answering after ``latency_ms``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.ipmi_bmc", "--count", str(count),
         "--user", USER, "--password-file", str(password_file), "--control-stdin"],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        assert process.stdout is not None and process.stdin is not None
        ready = json.loads(process.stdout.readline() or "{}")
        if ready.get("event") != "ready":
            raise RuntimeError("the IPMI emulator did not start")
        for port in ready["ports"] if latency_ms else ():
            process.stdin.write(f"slow {port} {latency_ms / 1000}\n")
            process.stdin.flush()
            if not json.loads(process.stdout.readline()).get("ok"):
                raise RuntimeError("the IPMI emulator refused the latency setting")
        print(f"  {count} IPMI BMCs up in {ready['startup_s']} s, answering after "
              f"{latency_ms} ms, RSS {ready['rss_kib'] / 1024:.0f} MiB", flush=True)
        yield list(ready["ports"])
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def node(driver: str, driver_info: dict[str, Any], index: int) -> Node:
    hardware = HARDWARE_TYPES[driver]
    interfaces = {f"{name}_interface": hardware.default(name) for name in INTERFACES}
    return Node(name=f"{driver}-{index:04d}", driver=driver, driver_info=driver_info,
                **interfaces, provision_state=ProvisionState.MANAGEABLE.value,
                power_state=POWER_OFF, provision_updated_at=utcnow())


def measure(db: Database, settings: Settings, result: Result, cycles: int) -> Result:
    manager = ConductorManager(db, settings, Drivers(settings))
    manager.start()
    try:
        manager.membership.refresh_now()
        periodic = PeriodicTasks(manager)
        for _ in range(cycles):
            cpu, started = time.process_time(), time.monotonic()
            report = periodic.sync_power_states()
            cycle = Cycle(time.monotonic() - started, time.process_time() - cpu,
                          report.nodes, report.failed)
            if cycle.nodes != result.nodes or cycle.failed:
                raise RuntimeError(f"power sync saw {cycle.nodes} of {result.nodes} nodes, "
                                   f"{cycle.failed} failed")
            result.cycles.append(cycle)
            print(f"  workers={result.workers}: {cycle.seconds:.2f} s, CPU {cycle.cpu_s:.2f} s",
                  flush=True)
    finally:
        manager.stop()
    return result


def run(args: argparse.Namespace) -> list[Result]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    password = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="enclume-bmc-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "password").write_text(password + "\n")
        url = f"sqlite:///{workdir / 'enclume.sqlite'}"
        upgrade_schema(url)
        db = Database(url)
        systems = fake_systems(args.redfish) if args.redfish else []
        results = []
        with RedfishEmulator(workdir / "redfish", systems, {USER: password}) as emulator:
            results += measure_latency(args, db, url, workdir, password, emulator, systems,
                                       args.latency_ms)
        db.engine.dispose()
    return results


def measure_latency(args: argparse.Namespace, db: Database, url: str, workdir: Path,
                    password: str, emulator: RedfishEmulator, systems: list[Any],
                    latency_ms: float) -> list[Result]:
    with ipmi_fleet(args.ipmi, workdir / "password", latency_ms) as ports:
        with db.session() as session:
            session.execute(delete(Node))
            session.add_all(node("ipmi", {
                "ipmi_address": "127.0.0.1", "ipmi_port": port, "ipmi_username": USER,
                "ipmi_password": password}, i) for i, port in enumerate(ports))
            session.add_all(node("redfish", {
                "redfish_address": emulator.address,
                "redfish_system_id": emulator.system_path(system.uuid),
                "redfish_username": USER, "redfish_password": password}, i)
                for i, system in enumerate(systems))
        results = []
        for workers in args.workers:
            settings = Settings(
                process={"data_dir": workdir, "log_level": "WARNING"},
                database={"url": url},
                conductor={"hostname": HOSTNAME, "power_sync_workers": workers},
                ipmi={"max_concurrency": max(32, workers)},
                redfish={"max_concurrency": max(32, workers)},
            )
            results.append(measure(db, settings,
                                   Result(latency_ms, workers, args.ipmi, args.redfish),
                                   args.cycles))
        return results


def print_table(results: list[Result]) -> None:
    print("\n| IPMI latency ms | workers | IPMI nodes | Redfish nodes | first cycle s (log-ins) "
          "| cycle s (sessions reused) | nodes/s | conductor CPU ms/node |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r.latency_ms:g} | {r.workers} | {r.ipmi} | {r.redfish} | {r.cold_s:.2f} | "
              f"{r.warm_s:.2f} | "
              f"{r.nodes / r.warm_s:.0f} | {r.warm_cpu_ms_per_node:.2f} |")


def int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ipmi", type=int, default=500)
    parser.add_argument("--redfish", type=int, default=500)
    parser.add_argument("--workers", type=int_list, default=[8, 32])
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="how late the IPMI BMCs answer (default 0); one value per run: "
                             "pyghmi keeps retrying the sessions of a stopped fleet, which "
                             "would slow down the next one in the same process")
    parser.add_argument("--cycles", type=int, default=3, help="at least 2: one cold, then warm")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.cycles < 2:
        parser.error("--cycles must be at least 2")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    results = run(args)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "bmc_power_sync",
                                         "results": [r.summary() for r in results]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
