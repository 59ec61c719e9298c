#!/usr/bin/env python3
"""Power-sync cycle time of one conductor owning 10,000 fake-hardware nodes.

What is measured: the wall-clock time of one ``PeriodicTasks(manager).sync_power_states()``
call, the power sync a conductor runs every ENCLUME_POWER_SYNC_INTERVAL_S: select the idle
nodes it owns on the hash ring, then for each, ``ENCLUME_POWER_SYNC_WORKERS`` at a time, open a
session, load the node, build its driver and read its power state from the fake power
interface, which sleeps ``--delay`` seconds (5 ms) like a BMC round trip would.

How: in this process, against a SQLite file in a temp dir and against a throw-away PostgreSQL
(``lab/local_postgres.running_postgres``). The schema is created by ``upgrade_schema``,
the nodes are inserted in bulk with SQLAlchemy as the API would store them
(``fake_nodes.py``), then for each worker count a ``ConductorManager`` is started (it
registers, and the ring holds it alone, so it owns every node) and ``--cycles`` power syncs are
timed. Nothing changes between cycles: the fake power state is the stored one.

Reported per database and worker count: nodes synced, cycle seconds (median of the cycles),
nodes/s, the ideal bound nodes * delay / workers, and the per-node overhead: the time a worker
slot spends on a node beyond the fake delay (cycle * workers / nodes - delay), plus this
process's CPU time per node. The issue's target is a cycle under 60 s for 10,000 nodes.

Usage::

    .venv/bin/python benchmarks/power_sync.py [--nodes 10000] [--workers 8,16,32]
        [--db sqlite,postgres] [--cycles 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # lab/ is not installed

from fake_nodes import count_nodes, insert_nodes

from lab.local_postgres import running_postgres
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.conductor.manager import ConductorManager
from services.conductor.periodic import PeriodicTasks, PowerSyncReport
from services.drivers.registry import Drivers

DATABASES = ("sqlite", "postgres")
TARGET_S = 60.0
HOSTNAME = "bench-conductor"


@dataclass
class Cycle:
    seconds: float
    cpu_s: float
    nodes: int
    changed: int
    failed: int


@dataclass
class Result:
    db: str
    workers: int
    nodes: int
    delay_s: float
    insert_s: float
    cycles: list[Cycle] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return statistics.median(c.seconds for c in self.cycles)

    @property
    def ideal_s(self) -> float:
        return self.nodes * self.delay_s / self.workers

    @property
    def nodes_per_s(self) -> float:
        return self.nodes / self.seconds

    @property
    def overhead_ms(self) -> float:
        """Time a worker slot spends per node beyond the fake power call."""
        return (self.seconds * self.workers / self.nodes - self.delay_s) * 1000

    @property
    def cpu_ms_per_node(self) -> float:
        return statistics.median(c.cpu_s for c in self.cycles) / self.nodes * 1000

    def summary(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": self.seconds, "ideal_s": self.ideal_s,
                "nodes_per_s": self.nodes_per_s, "overhead_ms": self.overhead_ms,
                "cpu_ms_per_node": self.cpu_ms_per_node, "target_s": TARGET_S,
                "target_met": self.seconds < TARGET_S}


# -- databases and the conductor -----------------------------------------------------------


@contextmanager
def database_url(kind: str, workdir: Path) -> Iterator[str]:
    """A URL of an empty database of ``kind``, removed afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'enclume.sqlite'}"
        return
    with running_postgres() as url:
        yield url


@contextmanager
def opened_database(url: str) -> Iterator[Database]:
    upgrade_schema(url)
    db = Database(url)
    try:
        yield db
    finally:
        db.engine.dispose()


def settings_for(url: str, workdir: Path, workers: int, delay_s: float) -> Settings:
    return Settings(
        process={"data_dir": workdir, "log_level": "WARNING"},
        database={"url": url},
        conductor={"hostname": HOSTNAME, "power_sync_workers": workers},
        fake={"power_delay_s": (delay_s, delay_s)},
    )


@contextmanager
def running_conductor(db: Database, settings: Settings) -> Iterator[ConductorManager]:
    """A started conductor (registered, alone on its ring), stopped again at the end."""
    manager = ConductorManager(db, settings, Drivers(settings))
    manager.start()
    try:
        manager.membership.refresh_now()
        yield manager
    finally:
        manager.stop()


# -- measuring -----------------------------------------------------------------------------


def timed_cycle(periodic: PeriodicTasks) -> Cycle:
    cpu_before = time.process_time()
    started = time.monotonic()
    report: PowerSyncReport = periodic.sync_power_states()
    seconds = time.monotonic() - started
    return Cycle(seconds, time.process_time() - cpu_before, report.nodes, report.changed,
                 report.failed)


def measure(db: Database, result: Result, settings: Settings, cycles: int) -> Result:
    with running_conductor(db, settings) as manager:
        periodic = PeriodicTasks(manager)
        for _ in range(cycles):
            cycle = timed_cycle(periodic)
            check_cycle(cycle, result.nodes)
            result.cycles.append(cycle)
            print(f"  {result.db} workers={result.workers}: {cycle.seconds:.2f} s, "
                  f"{cycle.nodes} nodes, CPU {cycle.cpu_s:.2f} s", flush=True)
    return result


def check_cycle(cycle: Cycle, expected: int) -> None:
    if cycle.nodes != expected or cycle.failed:
        raise RuntimeError(f"power sync saw {cycle.nodes} of {expected} nodes, "
                           f"{cycle.failed} failed")


def run_database(kind: str, args: argparse.Namespace) -> list[Result]:
    print(f"{kind}: inserting {args.nodes} nodes", flush=True)
    with tempfile.TemporaryDirectory(prefix="enclume-powersync-") as tmp, \
            database_url(kind, Path(tmp)) as url, opened_database(url) as db:
        insert_s = insert_nodes(db, args.nodes)
        if count_nodes(db) != args.nodes:
            raise RuntimeError("the nodes were not all inserted")
        print(f"  inserted in {insert_s:.2f} s", flush=True)
        return [measure(db, Result(kind, workers, args.nodes, args.delay, insert_s),
                        settings_for(url, Path(tmp), workers, args.delay), args.cycles)
                for workers in args.workers]


# -- output --------------------------------------------------------------------------------


COLUMNS = ("db", "workers", "nodes", "cycle s", "nodes/s", "ideal s", "overhead ms/node",
           "CPU ms/node", f"< {TARGET_S:.0f} s")


def table_row(result: Result) -> list[str]:
    return [result.db, str(result.workers), str(result.nodes), f"{result.seconds:.2f}",
            f"{result.nodes_per_s:.0f}", f"{result.ideal_s:.2f}", f"{result.overhead_ms:.2f}",
            f"{result.cpu_ms_per_node:.2f}", "yes" if result.seconds < TARGET_S else "NO"]


def print_table(results: list[Result]) -> None:
    rows = [list(COLUMNS), *(table_row(r) for r in results)]
    print()
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(COLUMNS))
    for row in rows[1:]:
        print("| " + " | ".join(row) + " |")


def write_json(path: Path, args: argparse.Namespace, results: list[Result]) -> None:
    document = {"benchmark": "power_sync", "nodes": args.nodes, "delay_s": args.delay,
                "cycles": args.cycles, "results": [r.summary() for r in results]}
    path.write_text(json.dumps(document, indent=2) + "\n")


# -- command line --------------------------------------------------------------------------


def int_list(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected positive integers separated by commas")
    return values


def db_list(text: str) -> list[str]:
    values = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [v for v in values if v not in DATABASES]
    if unknown or not values:
        raise argparse.ArgumentTypeError(f"expected some of {', '.join(DATABASES)}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10_000, help="nodes (default 10000)")
    parser.add_argument("--workers", type=int_list, default=[8, 16, 32],
                        help="power_sync_workers values, comma separated (default 8,16,32)")
    parser.add_argument("--db", type=db_list, default=list(DATABASES),
                        help="databases, comma separated (default sqlite,postgres)")
    parser.add_argument("--delay", type=float, default=0.005,
                        help="seconds each fake power call takes (default 0.005)")
    parser.add_argument("--cycles", type=int, default=2,
                        help="power syncs timed per configuration; the median is reported")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    results = [result for kind in args.db for result in run_database(kind, args)]
    print_table(results)
    if args.json:
        write_json(args.json, args, results)
    return 0 if all(r.seconds < TARGET_S for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
