#!/usr/bin/env python3
"""What the boot service's desired-boot watcher costs with 10,000 nodes.

The watcher (``services/boot/desired.py``) runs ``fingerprint`` every
ENCLUME_BOOT_POLL_INTERVAL_S (0.5 s) and ``load_desired_boot`` only when the fingerprint moved
(and every ENCLUME_BOOT_RESYNC_INTERVAL_S). Measured here, in process: 10,000 fake-hardware
nodes as the API stores them (``fake_nodes.py``), one port each, ``--booting`` of them with a
desired boot (``driver_internal_info.boot``, as a deploy in progress), on a SQLite file in a
temp dir and on a throw-away PostgreSQL. Reported: median milliseconds of ``fingerprint``, of
``load_desired_boot`` without and with discovery, and the share of each poll interval the
fingerprint query is busy (client and database together).

Usage::

    .venv/bin/python benchmarks/boot_watch.py [--nodes 10000] [--booting 100]
        [--db sqlite,postgres] [--repeat 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # lab/ is not installed

from fake_nodes import insert_nodes
from sqlalchemy import insert, select, text

from lab.local_postgres import running_postgres
from services.boot.desired import fingerprint, load_desired_boot
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.models import Node, Port

BOOT = {"mode": "ramdisk", "kernel": "http://192.168.100.1:8080/files/deploy.kernel",
        "ramdisk": "http://192.168.100.1:8080/files/deploy.initramfs",
        "kernel_params": "console=ttyS0", "boot_mode": "uefi"}


@contextmanager
def database_url(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'bench.sqlite'}"
        return
    with running_postgres() as url:
        yield url


def populate(db: Database, nodes: int, booting: int) -> None:
    insert_nodes(db, nodes)
    with db.session() as session:
        ids = list(session.scalars(select(Node.id).order_by(Node.id)))
        session.execute(insert(Port), [
            {"uuid": f"00000000-0000-4000-8000-{index:012x}", "node_id": node_id,
             "address": "52:54:" + ":".join(f"{(index >> s) & 0xFF:02x}" for s in (24, 16, 8, 0)),
             "local_link_connection": {}, "pxe_enabled": True, "is_smartnic": False,
             "extra": {}, "internal_info": {}}
            for index, node_id in enumerate(ids)])
        step = max(1, len(ids) // max(booting, 1))
        for node in session.scalars(select(Node).where(Node.id.in_(ids[::step][:booting]))):
            node.driver_internal_info = {**node.driver_internal_info, "boot": BOOT}
    if db.engine.dialect.name == "postgresql":
        # What autovacuum does to a live database: statistics and the visibility map, without
        # which the planner scans fresh tables instead of their indexes.
        with db.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE"))


def median_ms(call: Callable[[], Any], repeat: int) -> float:
    call()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(db: Database, repeat: int) -> tuple[float, float, float]:
    """Median ms of: the fingerprint, a load, a load with discovery."""
    return (median_ms(lambda: fingerprint(db), repeat * 4),
            median_ms(lambda: load_desired_boot(db, False), repeat),
            median_ms(lambda: load_desired_boot(db, True), repeat))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--booting", type=int, default=100)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    poll_s = Settings().boot.poll_interval_s
    print(f"{args.nodes} nodes, one port each, {args.booting} with a desired boot; "
          f"poll every {poll_s} s")
    print(f"{'database':<11}{'fingerprint':>13}{'load':>10}{'load+discovery':>16}"
          f"{'busy share':>13}")
    with tempfile.TemporaryDirectory(prefix="enclume-bench-") as tmp:
        for kind in args.db.split(","):
            with database_url(kind, Path(tmp)) as url:
                upgrade_schema(url)
                db = Database(url)
                try:
                    populate(db, args.nodes, args.booting)
                    assert len(load_desired_boot(db, False).entries) == args.booting
                    mark, load, discovery = measure(db, args.repeat)
                finally:
                    db.engine.dispose()
            share = mark / 1000 / poll_s * 100
            print(f"{kind:<11}{mark:>10.2f} ms{load:>7.2f} ms{discovery:>13.2f} ms"
                  f"{share:>11.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
