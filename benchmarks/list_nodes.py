#!/usr/bin/env python3
"""Listing 10,000 nodes with details through the API of a real ``enclume-aio``, 1,000 a page.

What is measured: the wall-clock time a client needs to read every node with details:
``GET /v1/nodes/detail?limit=1000``, then the ``next`` link of each page until a page has none
(10 requests for 10,000 nodes), at microversion 1.73, each response parsed as JSON. The target
from the issue is under 2 s for the whole listing.

How: ``enclume-aio`` is started on 127.0.0.1 (``lab/local_service.running_aio``) in a
temp dir, on its own SQLite database, or on a throw-away PostgreSQL
(``lab/local_postgres.running_postgres``) through ENCLUME_DATABASE_URL. Once it answers,
the nodes are inserted directly into its database in bulk with SQLAlchemy (``fake_nodes.py``:
the rows the API would write); the server reads the database on every request. Its power sync is
pushed out of the way (ENCLUME_POWER_SYNC_INTERVAL_S) so that it does not run during the
measurement; everything else keeps its defaults.

Two clients, one after the other, each with one untimed warm-up listing and then ``--runs``
timed listings (median and min reported):

- ``httpx``: one keep-alive ``httpx.Client``; also reports the time per page and the bytes
  received;
- ``openstacksdk``: ``list(conn.baremetal.nodes(details=True, limit=1000))``, which follows the
  same links and turns every node into a resource object; the difference to httpx is the
  client's own overhead.

For every listing the CPU time of the client thread and of the server process are recorded, so
it shows who spends the time (PostgreSQL's own CPU is not counted).

Usage::

    .venv/bin/python benchmarks/list_nodes.py [--nodes 10000] [--db sqlite,postgres]
        [--runs 5] [--limit 1000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # lab/ is not installed

import httpx
import openstack.connection
import requests
from fake_nodes import insert_nodes

from lab.local_postgres import running_postgres
from lab.local_service import Server, running_aio
from services.common.db import Database

DATABASES = ("sqlite", "postgres")
CLIENTS = ("httpx", "openstacksdk")
API_VERSION = "1.73"
TARGET_S = 2.0
LOOPBACK = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MB = 1_000_000
# Keep the server's periodic power sync (10,000 nodes) out of the measurement.
SERVER_ENV = {"ENCLUME_POWER_SYNC_INTERVAL_S": "86400"}


@dataclass
class Listing:
    seconds: float
    nodes: int
    requests: int  # the last page is empty: Ironic links a next page after every full one
    pages: list[float]  # seconds per request including JSON parsing, httpx only
    body_bytes: int  # response bodies
    wire_bytes: int  # as received (Content-Length for openstacksdk)
    client_cpu_s: float
    server_cpu_s: float


@dataclass
class Result:
    db: str
    client: str
    nodes: int
    limit: int
    warmup: Listing
    runs: list[Listing] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def min_s(self) -> float:
        return min(r.seconds for r in self.runs)

    @property
    def requests(self) -> int:
        return self.runs[0].requests

    @property
    def page_ms(self) -> float:
        """Mean time per request (page) in the median listing."""
        return self.median_s / self.requests * 1000

    @property
    def client_cpu_s(self) -> float:
        return statistics.median(r.client_cpu_s for r in self.runs)

    @property
    def server_cpu_s(self) -> float:
        return statistics.median(r.server_cpu_s for r in self.runs)

    def summary(self) -> dict[str, Any]:
        return {**asdict(self), "median_s": self.median_s, "min_s": self.min_s,
                "requests": self.requests, "page_ms": self.page_ms,
                "client_cpu_s": self.client_cpu_s, "server_cpu_s": self.server_cpu_s,
                "target_s": TARGET_S, "target_met": self.median_s < TARGET_S}


# -- clients -------------------------------------------------------------------------------


@dataclass
class Pages:
    nodes: int = 0
    requests: int = 0
    pages: list[float] = field(default_factory=list)  # seconds per request (httpx only)
    body_bytes: int = 0
    wire_bytes: int = 0


def list_httpx(client: httpx.Client, limit: int) -> Pages:
    """Every node with details, following ``next`` until the last page."""
    result = Pages()
    url: str | None = f"/v1/nodes/detail?limit={limit}"
    while url:
        started = time.monotonic()
        response = client.get(url)
        response.raise_for_status()
        document = response.json()
        result.pages.append(time.monotonic() - started)
        result.requests += 1
        result.nodes += len(document["nodes"])
        result.body_bytes += len(response.content)
        result.wire_bytes += response.num_bytes_downloaded
        url = document.get("next")
    return result


def list_sdk(conn: openstack.connection.Connection, limit: int) -> Pages:
    """The same listing through openstacksdk; requests and bytes counted by a requests hook."""
    result = Pages()

    def count(response: requests.Response, *_args: Any, **_kwargs: Any) -> None:
        result.requests += 1
        result.body_bytes += len(response.content)
        result.wire_bytes += int(response.headers.get("Content-Length", len(response.content)))

    hooks = conn.session.session.hooks["response"]
    hooks.append(count)
    try:
        result.nodes = len(list(conn.baremetal.nodes(details=True, limit=limit)))
    finally:
        hooks.remove(count)
    return result


def httpx_client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, trust_env=False, timeout=60,
                        headers={"X-OpenStack-Ironic-API-Version": API_VERSION})


def sdk_connection(url: str) -> openstack.connection.Connection:
    return openstack.connection.Connection(auth_type="none", baremetal_endpoint_override=url,
                                           baremetal_api_version=API_VERSION)


def bypass_proxies() -> None:
    """openstacksdk (requests) reads the proxy variables: never use one for loopback."""
    for key in ("no_proxy", "NO_PROXY"):
        os.environ[key] = ",".join(filter(None, (os.environ.get(key), LOOPBACK, "localhost")))


# -- measuring -----------------------------------------------------------------------------


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def timed_listing(lister: Callable[[], Pages], server_pid: int, expected: int) -> Listing:
    server_before, client_before = process_cpu_s(server_pid), time.thread_time()
    started = time.monotonic()
    pages = lister()
    seconds = time.monotonic() - started
    listing = Listing(seconds, pages.nodes, pages.requests, pages.pages, pages.body_bytes,
                      pages.wire_bytes, time.thread_time() - client_before,
                      process_cpu_s(server_pid) - server_before)
    if listing.nodes != expected:
        raise RuntimeError(f"the listing returned {listing.nodes} nodes, expected {expected}")
    return listing


def measure(db: str, client: str, lister: Callable[[], Pages], server: Server,
            args: argparse.Namespace) -> Result:
    pid = server.process.pid
    result = Result(db, client, args.nodes, args.limit, timed_listing(lister, pid, args.nodes))
    for _ in range(args.runs):
        result.runs.append(timed_listing(lister, pid, args.nodes))
    print(f"  {db} {client}: median {result.median_s:.3f} s, min {result.min_s:.3f} s "
          f"(warm-up {result.warmup.seconds:.3f} s)", flush=True)
    return result


def measure_clients(db: str, server: Server, args: argparse.Namespace) -> list[Result]:
    with httpx_client(server.url) as client:
        results = [measure(db, "httpx", lambda: list_httpx(client, args.limit), server, args)]
    conn = sdk_connection(server.url)
    try:
        results.append(measure(db, "openstacksdk", lambda: list_sdk(conn, args.limit), server,
                               args))
    finally:
        conn.close()
    return results


# -- servers -------------------------------------------------------------------------------


@contextmanager
def database_url(kind: str, workdir: Path) -> Iterator[str]:
    """Where the server keeps its data: its own SQLite file, or a throw-away PostgreSQL."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'enclume.sqlite'}"  # enclume-aio's default in its data dir
        return
    with running_postgres() as url:
        yield url


def populate(url: str, nodes: int) -> None:
    """Insert the nodes behind the running server's back, in bulk."""
    db = Database(url)
    try:
        seconds = insert_nodes(db, nodes)
    finally:
        db.engine.dispose()
    print(f"  inserted {nodes} nodes in {seconds:.2f} s", flush=True)


def run_database(kind: str, args: argparse.Namespace) -> list[Result]:
    print(f"{kind}: starting enclume-aio", flush=True)
    with tempfile.TemporaryDirectory(prefix="enclume-list-") as tmp, \
            database_url(kind, Path(tmp)) as url:
        env = {**SERVER_ENV, **({"ENCLUME_DATABASE_URL": url} if kind == "postgres" else {})}
        with running_aio(Path(tmp), env=env) as server:
            try:
                populate(url, args.nodes)
                return measure_clients(kind, server, args)
            except Exception:
                print(f"--- tail of {server.log} ---\n{server.log_text()[-4000:]}",
                      file=sys.stderr)
                raise


# -- output --------------------------------------------------------------------------------


COLUMNS = ("db", "client", "nodes", "requests", "median s", "min s", "ms/request", "MB",
           "client CPU s", "server CPU s", f"< {TARGET_S:.0f} s")


def table_row(result: Result) -> list[str]:
    first = result.runs[0]
    return [result.db, result.client, str(result.nodes), str(result.requests),
            f"{result.median_s:.3f}", f"{result.min_s:.3f}", f"{result.page_ms:.0f}",
            f"{first.body_bytes / MB:.1f}",
            f"{result.client_cpu_s:.2f}", f"{result.server_cpu_s:.2f}",
            "yes" if result.median_s < TARGET_S else "NO"]


def print_table(results: list[Result]) -> None:
    print()
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for result in results:
        print("| " + " | ".join(table_row(result)) + " |")


def write_json(path: Path, args: argparse.Namespace, results: list[Result]) -> None:
    document = {"benchmark": "list_nodes", "nodes": args.nodes, "limit": args.limit,
                "runs": args.runs, "api_version": API_VERSION,
                "results": [r.summary() for r in results]}
    path.write_text(json.dumps(document, indent=2) + "\n")


# -- command line --------------------------------------------------------------------------


def db_list(text: str) -> list[str]:
    values = [part.strip() for part in text.split(",") if part.strip()]
    if not values or any(v not in DATABASES for v in values):
        raise argparse.ArgumentTypeError(f"expected some of {', '.join(DATABASES)}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10_000, help="nodes (default 10000)")
    parser.add_argument("--db", type=db_list, default=list(DATABASES),
                        help="databases, comma separated (default sqlite,postgres)")
    parser.add_argument("--runs", type=int, default=5,
                        help="timed listings per client, after one warm-up (default 5)")
    parser.add_argument("--limit", type=int, default=1000, help="page size (default 1000)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.limit < 1 or args.nodes < 1:
        parser.error("--nodes, --runs and --limit must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bypass_proxies()
    results = [result for kind in args.db for result in run_database(kind, args)]
    print_table(results)
    if args.json:
        write_json(args.json, args, results)
    return 0 if all(r.median_s < TARGET_S for r in results if r.client == "httpx") else 1


if __name__ == "__main__":
    sys.exit(main())
