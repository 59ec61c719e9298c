"""Bulk enrollment: `enclume enroll` and OpenStack's `baremetal create`, on Ironic and Enclume.

The same inventory (N fake-hardware nodes with two ports each, in the `baremetal create`
format, which `enclume enroll` reads too) is enrolled on each server, one after the other,
both all-in-one on 127.0.0.1 with SQLite (servers started as in ironic_side_by_side.py):

- `baremetal create FILE` (python-ironicclient: one request after the other);
- `enclume enroll FILE` into an empty server (checks, then --concurrency requests at a time);
- `enclume enroll FILE` again: nothing to change (Ironic's `baremetal create` has no
  equivalent: run again, it fails on the names it created).

Each run uses its own node names and MACs, so the three runs of one server do not collide.

    .venv/bin/python benchmarks/bulk_enroll.py                 # 500 nodes, both servers
    .venv/bin/python benchmarks/bulk_enroll.py --nodes 100 --only enclume --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from ironic_side_by_side import REPO_ROOT, SERVERS, TITLES, running_server, server_version

BAREMETAL = REPO_ROOT / ".venv" / "bin" / "baremetal"
ENCLUME = REPO_ROOT / ".venv" / "bin" / "enclume"
RUNS = ("baremetal create", "enclume enroll", "enclume enroll (again)")


def inventory(prefix: str, kind: int, count: int) -> dict[str, Any]:
    """``count`` fake-hardware nodes with two ports each, the first PXE-enabled."""
    def mac(index: int, nic: int) -> str:
        return f"52:54:{kind:02x}:{index >> 8:02x}:{index & 255:02x}:{nic:02x}"

    return {"nodes": [{
        "name": f"{prefix}-{i:04d}",
        "driver": "fake-hardware",
        "properties": {"cpus": 8, "memory_mb": 16384, "local_gb": 100, "cpu_arch": "x86_64"},
        "extra": {"rack": f"rack-{i // 20}"},
        "ports": [
            {"address": mac(i, 1), "pxe_enabled": True,
             # Ironic wants switch_id (a MAC) and port_id; Enclume also takes switch_info.
             "local_link_connection": {"switch_id": f"00:1c:73:00:00:{i // 48:02x}",
                                       "switch_info": f"tor-{i // 48}",
                                       "port_id": f"Ethernet{i % 48 + 1}"}},
            {"address": mac(i, 2), "pxe_enabled": False},
        ],
    } for i in range(count)]}


def timed(argv: list[str], env: dict[str, str], expect: str = "") -> float:
    """Seconds ``argv`` took; RuntimeError if it failed or did not print ``expect``."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    if done.returncode != 0 or expect not in done.stdout:
        raise RuntimeError(f"{' '.join(argv[:2])} exited {done.returncode}:\n"
                           f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return took


def count_nodes(url: str, env: dict[str, str]) -> int:
    done = subprocess.run([str(ENCLUME), "--url", url, "node", "list", "-f", "json",
                           "--fields", "uuid"], env=env, capture_output=True, text=True,
                          check=True)
    return len(json.loads(done.stdout))


def benchmark(name: str, count: int, concurrency: int, workdir: Path) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OS_", "ENCLUME_"))}
    env["XDG_CONFIG_HOME"] = str(workdir)  # no CLI configuration file from the user
    with running_server(name, count, keep_tmp=False) as server:
        url = server.url
        files = {}
        for run, (prefix, kind) in zip(RUNS[:2], (("bmc", 1), ("enr", 2)), strict=True):
            files[run] = workdir / f"{name}-{prefix}.yaml"
            files[run].write_text(yaml.safe_dump(inventory(prefix, kind, count)))
        times = {
            "baremetal create": timed(
                [str(BAREMETAL), "--os-endpoint", url, "--os-auth-type", "none",
                 "--os-baremetal-api-version", "latest", "create",
                 str(files["baremetal create"])], env),
            "enclume enroll": timed(
                [str(ENCLUME), "--url", url, "enroll", str(files["enclume enroll"]),
                 "--concurrency", str(concurrency)], env, expect=f"{count} created"),
            "enclume enroll (again)": timed(
                [str(ENCLUME), "--url", url, "enroll", str(files["enclume enroll"]),
                 "--concurrency", str(concurrency)], env, expect=f"{count} unchanged"),
        }
        found = count_nodes(url, env)
        if found != 2 * count:
            raise RuntimeError(f"{name}: {found} nodes after the runs, expected {2 * count}")
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--only", choices=SERVERS)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bulk-enroll-") as tmp:
        for name in [args.only] if args.only else SERVERS:
            print(f"{TITLES[name]} {server_version(name)}: {args.nodes} nodes, "
                  f"{2 * args.nodes} ports ...", file=sys.stderr)
            results[name] = benchmark(name, args.nodes, args.concurrency, Path(tmp))
    names = list(results)
    print(f"\n{args.nodes} fake-hardware nodes, {2 * args.nodes} ports (seconds)")
    print("| client | " + " | ".join(TITLES[n] for n in names) + " |")
    print("|---|" + "---:|" * len(names))
    for run in RUNS:
        print(f"| `{run}` | " + " | ".join(f"{results[n][run]:.2f}" for n in names) + " |")
    if args.json:
        args.json.write_text(json.dumps({"nodes": args.nodes, "concurrency": args.concurrency,
                                         "seconds": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
