"""``make demo``: start enclume-aio on SQLite and take machines through their whole life.

Every step goes through the public Ironic API, the way a scheduler or an operator would drive it,
and the progress of each machine is shown as it happens. Until the virtual lab lands, the
machines are ``fake-hardware`` nodes whose interfaces take a realistic random time per step.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from services.cli.local_service import running_aio

HEADERS = {"X-OpenStack-Ironic-API-Version": "1.73"}
STEPS = (("manage", "manageable"), ("provide", "available"), ("active", "active"),
         ("deleted", "available"))
FAILED = {"deploy failed", "clean failed", "inspect failed", "error", "enroll"}


def say(text: str) -> None:
    print(text, flush=True)


def enroll(client: httpx.Client, count: int) -> list[str]:
    names = []
    for i in range(count):
        name = f"demo-{i + 1:02d}"
        response = client.post("/v1/nodes", json={
            "name": name, "driver": "fake-hardware", "resource_class": "demo",
            "driver_info": {"ipmi_address": f"10.0.0.{i + 10}", "ipmi_password": "demo-secret"},
            "properties": {"cpus": 4, "memory_mb": 8192, "local_gb": 100},
        })
        response.raise_for_status()
        client.post("/v1/ports", json={"node_uuid": response.json()["uuid"],
                                       "address": f"52:54:00:de:00:{i + 1:02x}"}
                    ).raise_for_status()
        names.append(name)
        say(f"  enrolled {name} (masked secret: "
            f"{response.json()['driver_info']['ipmi_password']})")
    return names


def run_step(client: httpx.Client, names: list[str], verb: str, wanted: str,
             timeout: float) -> dict[str, float]:
    started = time.monotonic()
    body: dict[str, Any] = {"target": verb}
    if verb == "active":
        body["configdrive"] = {"meta_data": {"hostname": "demo"}}
    for name in names:
        client.put(f"/v1/nodes/{name}/states/provision", json=body).raise_for_status()
    done: dict[str, float] = {}
    last_line = ""
    while len(done) < len(names):
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{verb}: not all nodes reached {wanted} within {timeout}s")
        states = {}
        for name in names:
            node = client.get(f"/v1/nodes/{name}", params={
                "fields": "provision_state,target_provision_state,last_error"}).json()
            states[name] = node["provision_state"]
            if node["provision_state"] == wanted and not node["target_provision_state"]:
                done.setdefault(name, time.monotonic() - started)
            elif node["provision_state"] in FAILED and node["provision_state"] != wanted:
                raise RuntimeError(f"{name} failed: {node['last_error']}")
        line = "  " + "  ".join(f"{n}: {s:<15}" for n, s in states.items())
        if line != last_line:
            say(line)
            last_line = line
        time.sleep(0.2)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)

    env = {"ENCLUME_ACCESS_LOG": "false", "ENCLUME_FAKE_DEPLOY_DELAY_S": "[1.0, 3.0]",
           "ENCLUME_FAKE_POWER_DELAY_S": "[0.2, 0.6]", "ENCLUME_FAKE_BOOT_DELAY_S": "[0.2, 0.5]"}
    with tempfile.TemporaryDirectory(prefix="enclume-demo-") as tmp:
        say("Starting enclume-aio (API + conductor, SQLite) ...")
        with running_aio(Path(tmp), env=env) as server:
            say(f"  serving the Ironic API at {server.url}")
            with httpx.Client(base_url=server.url, headers=HEADERS, timeout=10) as client:
                say(f"Enrolling {args.nodes} machines (fake-hardware) ...")
                names = enroll(client, args.nodes)
                timings: dict[str, dict[str, float]] = {}
                for verb, wanted in STEPS:
                    say(f"{verb} -> {wanted}")
                    timings[verb] = run_step(client, names, verb, wanted, args.timeout)
                say("\nSeconds each machine took per step:")
                say("  node     " + "".join(f"{verb:>10}" for verb, _ in STEPS))
                for name in names:
                    say(f"  {name:<8} " + "".join(f"{timings[v][name]:>10.2f}" for v, _ in STEPS))
                conductors = client.get("/v1/conductors").json()["conductors"]
                say(f"\nConductors: {', '.join(c['hostname'] for c in conductors)}; all "
                    f"{len(names)} machines deployed and torn down through the Ironic API.")
    say("Stopped enclume-aio and removed its data directory.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
