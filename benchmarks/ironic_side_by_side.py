#!/usr/bin/env python3
"""Side-by-side benchmark: OpenStack Ironic versus Enclume.

Starts each service all-in-one on 127.0.0.1 (one after the other, never both
at once), drives the same openstacksdk workload against it, times every phase
and samples the CPU time and peak memory of the server's process tree.

Usage::

    .venv/bin/python benchmarks/ironic_side_by_side.py [--nodes 100]
        [--only ironic|enclume] [--json FILE]

See benchmarks/README.md for what is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openstack.connection

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
IRONIC_VENV = BENCH_DIR / ".venv-ironic"
SETUP_IRONIC = BENCH_DIR / "setup_ironic.sh"
ENCLUME_AIO = REPO_ROOT / ".venv" / "bin" / "enclume-aio"

SERVERS = ("ironic", "enclume")
TITLES = {"ironic": "Ironic", "enclume": "Enclume"}
PHASES = ("enroll", "manage", "provide", "deploy", "list", "undeploy")
# Both servers are driven with the same pinned microversion, so the client
# sends the same requests to both (Enclume supports up to 1.73).
API_VERSION = "1.73"
POLL_INTERVAL = 0.05  # seconds between state polls while waiting
MEMORY_INTERVAL = 0.05  # seconds between memory samples
STARTUP_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0
LOG_TAIL_LINES = 40
FAILED_STATES = frozenset(
    {
        "clean failed",
        "deploy failed",
        "error",
        "inspect failed",
        "rescue failed",
        "service failed",
    }
)
LOOPBACK = "127.0.0.1"
MIB = 1024 * 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchmarkError(RuntimeError):
    """A server failed to start or the workload did not complete."""


# --------------------------------------------------------------------------
# Memory sampling
# --------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (all threads), read from /proc."""
    kids: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.scandir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                text = Path(task.path, "children").read_text()
                kids.extend(int(child) for child in text.split())
    return kids


def _memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in bytes; zeros if it has gone away.

    PSS splits pages shared between processes (e.g. after fork) evenly among
    them, so summing it over a tree does not count shared pages twice.
    """
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    values = dict.fromkeys(("Rss:", "Pss:"), 0)
    for line in rollup.splitlines():
        key, _, rest = line.partition(" ")
        if key in values:
            values[key] = int(rest.split()[0]) * 1024
    return values["Rss:"], values["Pss:"]


def _cpu_ticks(pid: int) -> int:
    """utime + stime of a process plus those of its reaped children."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat.rpartition(")")[2].split()
    return sum(int(value) for value in fields[11:15])


def process_tree(root: int) -> list[int]:
    """``root`` and all of its live descendants."""
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        if pid not in tree:
            tree.append(pid)
            pending.extend(_children(pid))
    return tree


def tree_memory(root: int, include_root: bool = True) -> tuple[int, int]:
    """(RSS, PSS) summed over a process tree, in bytes (the root left out on request)."""
    samples = [_memory(pid) for pid in process_tree(root) if include_root or pid != root]
    return sum(rss for rss, _ in samples), sum(pss for _, pss in samples)


def tree_cpu_seconds(root: int, include_root: bool = True) -> float:
    ticks = sum(_cpu_ticks(pid) for pid in process_tree(root) if include_root or pid != root)
    return ticks / CLOCK_TICKS


class MemorySampler(threading.Thread):
    """Samples a process tree's memory in the background; keeps the peaks."""

    def __init__(self, root_pid: int, interval: float = MEMORY_INTERVAL,
                 include_root: bool = True) -> None:
        super().__init__(name=f"mem-{root_pid}", daemon=True)
        self.root_pid = root_pid
        self.include_root = include_root
        self.interval = interval
        self.peak_rss = 0
        self.peak_pss = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def sample(self) -> tuple[int, int]:
        rss, pss = tree_memory(self.root_pid, self.include_root)
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        return rss, pss

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join()


# --------------------------------------------------------------------------
# Server processes
# --------------------------------------------------------------------------


@dataclass
class Server:
    """A running service under test."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    sampler: MemorySampler
    startup_seconds: float = 0.0
    idle_memory: tuple[int, int] = (0, 0)  # (RSS, PSS) once ready

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def spawn(argv: list[str], env: dict[str, str], workdir: Path,
          log_path: Path) -> subprocess.Popen[bytes]:
    """Start a server in its own session (process group), logging to a file."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_ok(url: str) -> bool:
    try:
        with _NO_PROXY_OPENER.open(url, timeout=2) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError):
        return False


def wait_until_ready(server: Server, timeout: float = STARTUP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise BenchmarkError(
                f"{server.name} exited with code {server.proc.returncode} "
                "during startup"
            )
        if http_ok(server.url + "/"):
            return
        time.sleep(0.1)
    raise BenchmarkError(
        f"{server.name} did not answer GET / within {timeout:.0f}s")


def stop_process_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL it if it lingers."""
    for sig, grace in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    # Children may outlive the leader; make sure the group is gone too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def bypass_proxies(env: dict[str, str] | os._Environ[str]) -> None:
    """Make sure no HTTP proxy is used for loopback traffic."""
    for key in ("no_proxy", "NO_PROXY"):
        env[key] = ",".join(filter(None, (env.get(key), LOOPBACK, "localhost")))


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra or {})
    return env


# --------------------------------------------------------------------------
# OpenStack Ironic
# --------------------------------------------------------------------------


def ensure_ironic_venv(venv: Path = IRONIC_VENV) -> None:
    if (venv / "bin" / "ironic").exists():
        return
    print(f"Ironic venv missing, running {SETUP_IRONIC}", file=sys.stderr)
    setup = subprocess.run(["bash", str(SETUP_IRONIC), str(venv)],
                           stdout=sys.stderr, check=False)
    if setup.returncode != 0:
        raise BenchmarkError(f"{SETUP_IRONIC} failed ({setup.returncode})")


def ironic_config(workdir: Path, port: int, nodes: int) -> str:
    """Ironic all-in-one with fake hardware, noauth and no RPC bus."""
    interfaces = {
        "bios": "no-bios",
        "boot": "fake",
        "console": "no-console",
        "deploy": "fake",
        "firmware": "no-firmware",
        "inspect": "fake,no-inspect",
        "management": "fake",
        "network": "noop",
        "power": "fake",
        "raid": "no-raid",
        "rescue": "no-rescue",
        "storage": "noop",
        "vendor": "no-vendor",
    }
    enabled = "\n".join(
        f"enabled_{kind}_interfaces = {names}"
        for kind, names in interfaces.items()
    )
    return f"""\
[DEFAULT]
auth_strategy = noauth
rpc_transport = none
host = bench-ironic
state_path = {workdir}
enabled_hardware_types = fake-hardware
{enabled}

[api]
host_ip = {LOOPBACK}
port = {port}

[conductor]
automated_clean = True
# Admission limits (defaults 50 / 250) would reject part of a burst of
# {nodes} provide/deploy requests with HTTP 503; the client would then retry
# with back-off, so the benchmark would time the retry schedule instead.
max_concurrent_clean = {max(50, nodes)}
max_concurrent_deploy = {max(250, nodes)}

[database]
connection = sqlite:///{workdir / "ironic.sqlite"}

[dhcp]
dhcp_provider = none

[oslo_concurrency]
lock_path = {workdir / "locks"}
"""


def start_ironic(workdir: Path, nodes: int) -> Server:
    port = free_port()
    config = workdir / "ironic.conf"
    config.write_text(ironic_config(workdir, port, nodes))
    log_path = workdir / "ironic.log"
    env = server_env()
    dbsync = subprocess.run(
        [str(IRONIC_VENV / "bin" / "ironic-dbsync"), "--config-file",
         str(config), "create_schema"],
        cwd=workdir, env=env, capture_output=True, text=True, check=False,
    )
    if dbsync.returncode != 0:
        raise BenchmarkError(
            f"ironic-dbsync create_schema failed:\n{dbsync.stderr[-4000:]}"
        )
    proc = spawn([str(IRONIC_VENV / "bin" / "ironic"), "--config-file",
                  str(config)], env, workdir, log_path)
    return Server("ironic", port, proc, log_path, MemorySampler(proc.pid))


# --------------------------------------------------------------------------
# Enclume
# --------------------------------------------------------------------------


def start_enclume(workdir: Path, nodes: int) -> Server:
    del nodes  # Enclume needs no size-dependent tuning.
    if not ENCLUME_AIO.exists():
        raise BenchmarkError(f"{ENCLUME_AIO} does not exist (not installed?)")
    port = free_port()
    log_path = workdir / "enclume.log"
    env = server_env({
        "ENCLUME_DATA_DIR": str(workdir),
        "ENCLUME_API_HOST": LOOPBACK,
        "ENCLUME_API_PORT": str(port),
    })
    proc = spawn([str(ENCLUME_AIO)], env, workdir, log_path)
    return Server("enclume", port, proc, log_path, MemorySampler(proc.pid))


def start_enclume_cluster(workdir: Path, nodes: int) -> Server:
    """PostgreSQL, 3 enclume-conductors and one enclume-api, under one launcher process.

    The launcher (lab/local_cluster.py) only starts and stops them: its own memory and
    CPU are left out; PostgreSQL's are counted.
    """
    del nodes
    port = free_port()
    log_path = workdir / "enclume-cluster.log"
    python = REPO_ROOT / ".venv" / "bin" / "python"
    proc = spawn([str(python), "-m", "lab.local_cluster", "--conductors", "3",
                  "--apis", "1", "--api-port", str(port)],
                 {**server_env(), "PYTHONPATH": str(REPO_ROOT)}, workdir, log_path)  # lab/
    return Server("enclume", port, proc, log_path, MemorySampler(proc.pid, include_root=False))


STARTERS: dict[str, Callable[[Path, int], Server]] = {
    "ironic": start_ironic,
    "enclume": start_enclume,
}


def package_version(python: Path, package: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    result = subprocess.run([str(python), "-c", code], capture_output=True,
                            text=True, check=False)
    return result.stdout.strip() or "unknown"


def server_version(name: str) -> str:
    if name == "ironic":
        return package_version(IRONIC_VENV / "bin" / "python", "ironic")
    return package_version(REPO_ROOT / ".venv" / "bin" / "python", "enclume")


@contextlib.contextmanager
def running_server(name: str, nodes: int, keep_tmp: bool) -> Iterator[Server]:
    """Start a server in a fresh temp dir; always stop it and clean up."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    server: Server | None = None
    try:
        started = time.perf_counter()
        server = STARTERS[name](workdir, nodes)
        server.sampler.start()
        wait_until_ready(server)
        server.startup_seconds = time.perf_counter() - started
        server.idle_memory = server.sampler.sample()
        yield server
    except Exception:
        if server is not None:
            print(f"--- {name} log tail ({server.log_path.name}) ---\n"
                  f"{log_tail(server.log_path)}\n---", file=sys.stderr)
        raise
    finally:
        if server is not None:
            server.sampler.stop()
            stopping = time.perf_counter()
            stop_process_group(server.proc)
            print(f"  stopped in {time.perf_counter() - stopping:.1f}s",
                  file=sys.stderr)
        if keep_tmp:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------
# Workload
# --------------------------------------------------------------------------


def connect(url: str) -> openstack.connection.Connection:
    return openstack.connection.Connection(
        auth_type="none",
        baremetal_endpoint_override=url,
        baremetal_api_version=API_VERSION,
    )


def mac_address(index: int) -> str:
    octets = [(index >> shift) & 0xFF for shift in (16, 8, 0)]
    return "52:54:00:" + ":".join(f"{octet:02x}" for octet in octets)


def is_failed(state: str, last_error: str | None) -> bool:
    # A failed verification ("manage") drops the node back into enroll.
    return state in FAILED_STATES or (state == "enroll" and bool(last_error))


def wait_for_state(conn: openstack.connection.Connection, uuids: list[str],
                   target: str, timeout: float) -> None:
    """Poll one node list per interval until every node reaches ``target``."""
    pending = set(uuids)
    deadline = time.monotonic() + timeout
    while True:
        listing = conn.baremetal.nodes(
            fields=["uuid", "provision_state", "last_error"])
        for node in listing:
            if node.id not in pending:
                continue
            if node.provision_state == target:
                pending.discard(node.id)
            elif is_failed(node.provision_state, node.last_error):
                raise BenchmarkError(
                    f"node {node.id} went to {node.provision_state!r} instead"
                    f" of {target!r}: {node.last_error}")
        if not pending:
            return
        if time.monotonic() > deadline:
            raise BenchmarkError(
                f"{len(pending)} nodes did not reach {target!r} in {timeout}s")
        time.sleep(POLL_INTERVAL)


def enroll(conn: openstack.connection.Connection, count: int) -> list[str]:
    uuids: list[str] = []
    for index in range(count):
        node = conn.baremetal.create_node(
            driver="fake-hardware", name=f"bench-{index:05d}",
            provision_state="enroll")
        if node.provision_state != "enroll":
            raise BenchmarkError(
                f"new node {node.id} is {node.provision_state!r}, not enroll")
        conn.baremetal.create_port(node_uuid=node.id,
                                   address=mac_address(index))
        uuids.append(node.id)
    return uuids


def transition(conn: openstack.connection.Connection, uuids: list[str],
               action: str, target: str, timeout: float) -> None:
    """Request ``action`` on every node, then wait for all to reach target."""
    for uuid in uuids:
        conn.baremetal.set_node_provision_state(uuid, action)
    wait_for_state(conn, uuids, target, timeout)


def deploy(conn: openstack.connection.Connection, uuids: list[str],
           timeout: float) -> None:
    for index, uuid in enumerate(uuids):
        conn.baremetal.update_node(uuid, instance_info={
            "image_source": f"http://{LOOPBACK}:9/images/bench.qcow2",
            "image_checksum": f"{index:032x}",
            "root_gb": 10,
        })
        conn.baremetal.set_node_provision_state(uuid, "active")
    wait_for_state(conn, uuids, "active", timeout)


def list_details(conn: openstack.connection.Connection, expected: int,
                 repeats: int) -> None:
    for _ in range(repeats):
        nodes = list(conn.baremetal.nodes(details=True))
        if len(nodes) != expected:
            raise BenchmarkError(
                f"listing returned {len(nodes)} nodes, expected {expected}")
        if any(node.provision_state != "active" for node in nodes):
            raise BenchmarkError("listing shows nodes that are not active")


@dataclass
class Timings:
    """Wall-clock and client CPU seconds per phase."""

    wall: dict[str, float] = field(default_factory=dict)
    client_cpu: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        print(f"  {name} ...", end="", flush=True, file=sys.stderr)
        cpu_started = time.thread_time()
        started = time.perf_counter()
        yield
        self.wall[name] = time.perf_counter() - started
        self.client_cpu[name] = time.thread_time() - cpu_started
        print(f" {self.wall[name]:.2f}s", file=sys.stderr)


def run_workload(url: str, nodes: int, list_repeats: int,
                 timeout: float) -> Timings:
    conn = connect(url)
    timings = Timings()
    with timings.phase("enroll"):
        uuids = enroll(conn, nodes)
    with timings.phase("manage"):
        transition(conn, uuids, "manage", "manageable", timeout)
    with timings.phase("provide"):
        transition(conn, uuids, "provide", "available", timeout)
    with timings.phase("deploy"):
        deploy(conn, uuids, timeout)
    with timings.phase("list"):
        list_details(conn, nodes, list_repeats)
    with timings.phase("undeploy"):
        transition(conn, uuids, "deleted", "available", timeout)
    return timings


# --------------------------------------------------------------------------
# Orchestration and reporting
# --------------------------------------------------------------------------


def mib(value: int) -> float:
    return round(value / MIB, 1)


def rounded(values: dict[str, float], digits: int) -> dict[str, float]:
    return {key: round(value, digits) for key, value in values.items()}


def benchmark_server(name: str, args: argparse.Namespace) -> dict[str, Any]:
    print(f"{TITLES[name]}:", file=sys.stderr)
    with running_server(name, args.nodes, args.keep_tmp) as server:
        print(f"  up on {server.url} in {server.startup_seconds:.1f}s",
              file=sys.stderr)
        include_root = server.sampler.include_root
        server_cpu = tree_cpu_seconds(server.proc.pid, include_root)
        timings = run_workload(server.url, args.nodes, args.list_repeats,
                               args.timeout)
        server_cpu = tree_cpu_seconds(server.proc.pid, include_root) - server_cpu
        server.sampler.sample()
        return {
            "version": server_version(name),
            "startup_seconds": round(server.startup_seconds, 3),
            "phases": rounded(timings.wall, 3),
            "client_cpu_phases": rounded(timings.client_cpu, 3),
            "total_seconds": round(sum(timings.wall.values()), 3),
            "server_cpu_seconds": round(server_cpu, 2),
            "client_cpu_seconds": round(sum(timings.client_cpu.values()), 2),
            "idle_rss_mib": mib(server.idle_memory[0]),
            "idle_pss_mib": mib(server.idle_memory[1]),
            "peak_rss_mib": mib(server.sampler.peak_rss),
            "peak_pss_mib": mib(server.sampler.peak_pss),
        }


# Rows of the summary below the phases: (label, result key).
SUMMARY_ROWS = (
    ("total (s)", "total_seconds"),
    ("server CPU (s)", "server_cpu_seconds"),
    ("client CPU (s)", "client_cpu_seconds"),
    ("startup (s, not in total)", "startup_seconds"),
    ("idle RSS (MiB)", "idle_rss_mib"),
    ("peak RSS (MiB)", "peak_rss_mib"),
    ("peak PSS (MiB)", "peak_pss_mib"),
)


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 2) if denominator else None


def compute_ratios(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Ironic/Enclume ratios (>1 means Enclume is faster or smaller)."""
    ironic, enclume = results["ironic"], results["enclume"]
    ratios: dict[str, Any] = {
        phase: ratio(ironic["phases"][phase], enclume["phases"][phase])
        for phase in PHASES
    }
    for _, key in SUMMARY_ROWS:
        ratios[key] = ratio(ironic[key], enclume[key])
    return ratios


def fmt(value: float | None, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:.2f}{suffix}"


def table_rows(results: dict[str, dict[str, Any]]) -> Iterator[list[str]]:
    names = [name for name in SERVERS if name in results]
    ratios = compute_ratios(results) if len(names) == len(SERVERS) else {}

    def row(label: str, values: list[float], key: str) -> list[str]:
        cells = [label, *(fmt(value) for value in values)]
        return cells + ([fmt(ratios[key], "x")] if ratios else [])

    yield ["phase (s)", *(TITLES[name] for name in names)] + (
        ["Ironic/Enclume"] if ratios else [])
    for phase in PHASES:
        yield row(phase, [results[n]["phases"][phase] for n in names], phase)
    for label, key in SUMMARY_ROWS:
        yield row(label, [results[n][key] for n in names], key)


def print_table(results: dict[str, dict[str, Any]],
                args: argparse.Namespace) -> None:
    rows = list(table_rows(results))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    versions = ", ".join(
        f"{TITLES[name]} {result['version']}" for name, result in results.items())
    medians = f", median of {args.repeat} runs" if args.repeat > 1 else ""
    print(f"\n{args.nodes} nodes, API {API_VERSION}, fake hardware, "
          f"{os.cpu_count()} CPUs{medians} ({versions})")
    for index, cells in enumerate(rows):
        line = "  ".join(
            cell.ljust(width) if col == 0 else cell.rjust(width)
            for col, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )
        if index == 1 + len(PHASES):
            print("-" * len(line))
        print(line)
        if index == 0:
            print("-" * len(line))


def median_result(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-field median over repeated runs of one server."""
    merged: dict[str, Any] = {}
    for key, first in runs[0].items():
        values = [run[key] for run in runs]
        if isinstance(first, dict):
            merged[key] = median_result(values)
        elif isinstance(first, float | int):
            merged[key] = round(statistics.median(values), 3)
        else:
            merged[key] = first
    return merged


def write_json(args: argparse.Namespace, results: dict[str, dict[str, Any]],
               runs: dict[str, list[dict[str, Any]]]) -> None:
    report: dict[str, Any] = {
        "nodes": args.nodes,
        "repeat": args.repeat,
        "api_version": API_VERSION,
        "list_repeats": args.list_repeats,
        "cpus": os.cpu_count(),
        "openstacksdk": importlib.metadata.version("openstacksdk"),
        "servers": results,
    }
    if len(results) == len(SERVERS):
        report["ratios_ironic_over_enclume"] = compute_ratios(results)
    if args.repeat > 1:
        report["runs"] = runs
    args.json.write_text(json.dumps(report, indent=2) + "\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100,
                        help="number of nodes (default: 100)")
    parser.add_argument("--only", choices=SERVERS,
                        help="benchmark only one of the servers")
    parser.add_argument("--json", type=Path, metavar="FILE",
                        help="also write the results to FILE as JSON")
    parser.add_argument("--list-repeats", type=int, default=10,
                        help="detailed listings in the list phase (default 10)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds to wait for a state change (default 600)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run everything R times (servers alternating) "
                        "and report per-figure medians (default 1)")
    parser.add_argument("--enclume-topology", choices=("aio", "cluster"), default="aio",
                        help="Enclume as enclume-aio on SQLite (default) or as 3 conductors "
                             "and an API on PostgreSQL")
    parser.add_argument("--keep-tmp", action="store_true",
                        help="keep the servers' temp dirs (config, db, logs)")
    args = parser.parse_args(argv)
    if min(args.nodes, args.list_repeats, args.repeat) < 1:
        parser.error("--nodes, --list-repeats and --repeat must be positive")
    return args


def raise_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt so the servers get cleaned up."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_on_sigterm()
    bypass_proxies(os.environ)  # openstacksdk (requests) reads it per request
    names = [args.only] if args.only else list(SERVERS)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    if args.enclume_topology == "cluster":
        STARTERS["enclume"] = start_enclume_cluster
        TITLES["enclume"] = "Enclume x3"
    try:
        if "ironic" in names:
            ensure_ironic_venv()
        for repeat in range(args.repeat):
            if args.repeat > 1:
                print(f"== run {repeat + 1}/{args.repeat}", file=sys.stderr)
            for name in names:
                runs[name].append(benchmark_server(name, args))
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    results = {name: median_result(name_runs)
               for name, name_runs in runs.items()}
    print_table(results, args)
    if args.json:
        write_json(args, results, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
