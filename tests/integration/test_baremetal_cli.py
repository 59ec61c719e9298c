"""The real ``baremetal`` CLI (python-ironicclient) drives enclume-aio, one process per command.

Each CLI process costs about a second, so every test walks one node through many operations
and runs independent read-only commands side by side.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.aio import Server
from tests.support.polling import eventually

BAREMETAL = Path(sys.executable).parent / "baremetal"
COMMAND_TIMEOUT = 60.0
WAIT = "30"  # seconds for --wait, so a stuck state fails the test instead of hanging it


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def random_mac() -> str:
    return "52:54:00:" + ":".join(f"{random.randrange(256):02x}" for _ in range(3))


class Cli:
    """Runs ``baremetal`` against one server, with no OS_* settings leaking in from outside."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        self.prefix = [str(BAREMETAL), "--os-endpoint", server.url, "--os-auth-type", "none",
                       "--os-baremetal-api-version", "latest"]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*self.prefix, *args], env=self.env, capture_output=True,
                                text=True, timeout=COMMAND_TIMEOUT, check=False)
        if check and result.returncode != 0:
            pytest.fail(f"baremetal {' '.join(args)} exited with {result.returncode}:\n"
                        f"stdout: {result.stdout}\nstderr: {result.stderr}\n"
                        f"server log tail:\n{self.server.log_text()[-3000:]}")
        return result

    def json(self, *args: str) -> Any:
        output = self.run(*args, "-f", "json").stdout
        try:
            return json.loads(output)
        except json.JSONDecodeError:
            pytest.fail(f"baremetal {' '.join(args)} printed no JSON: {output!r}")

    def parallel_json(self, *commands: tuple[str, ...]) -> list[Any]:
        """Independent read-only commands at once; results in the order given."""
        with ThreadPoolExecutor(len(commands)) as pool:
            return list(pool.map(lambda command: self.json(*command), commands))

    def show(self, node: str, *fields: str) -> dict[str, Any]:
        return self.json("node", "show", node, *(["--fields", *fields] if fields else []))

    def wait_for(self, node: str, timeout: float = 60.0, **expected: Any) -> dict[str, Any]:
        """``node show`` until the given fields hold the given values (usually the first one)."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.show(node, *expected)
            if shown == expected or time.monotonic() > deadline:
                assert shown == expected
                return shown
            time.sleep(0.2)


@pytest.fixture(scope="module")
def cli(aio: Server) -> Cli:
    return Cli(aio)


def assert_no_tracebacks(server: Server) -> None:
    assert "Traceback" not in server.log_text(), server.log_text()[-5000:]


def test_node_and_port_records_through_the_cli(cli: Cli, aio: Server) -> None:
    name, resource_class, mac = unique("cli-enroll"), unique("CLI-RC"), random_mac()
    created = cli.json("node", "create", "--driver", "fake-hardware", "--name", name,
                       "--driver-info", "ipmi_address=192.0.2.10",
                       "--driver-info", "ipmi_password=hunter2",
                       "--resource-class", resource_class, "--property", "cpus=8",
                       "--property", "cpu_arch=x86_64")
    node = created["uuid"]
    assert created["name"] == name
    assert created["driver"] == "fake-hardware"
    assert created["provision_state"] == "enroll"
    assert created["resource_class"] == resource_class
    assert created["properties"] == {"cpus": 8, "cpu_arch": "x86_64"}
    assert created["driver_info"] == {"ipmi_address": "192.0.2.10", "ipmi_password": "******"}

    port = cli.json("port", "create", mac.upper(), "--node", node)
    assert port["address"] == mac
    assert port["node_uuid"] == node

    ports, listed, long_listed, with_fields, by_name, by_uuid = cli.parallel_json(
        ("port", "list", "--node", name),
        ("node", "list"),
        ("node", "list", "--long"),
        ("node", "list", "--fields", "uuid", "name", "resource_class", "driver"),
        ("node", "show", name),
        ("node", "show", node),
    )
    assert ports == [{"uuid": port["uuid"], "address": mac}]
    mine = [n for n in listed if n["uuid"] == node]
    assert mine == [{"uuid": node, "name": name, "instance_uuid": None, "power_state": None,
                     "provision_state": "enroll", "maintenance": False}]
    long_mine = [n for n in long_listed if n["uuid"] == node]
    assert len(long_mine) == 1
    assert long_mine[0]["resource_class"] == resource_class
    assert long_mine[0]["driver_info"]["ipmi_password"] == "******"
    assert {"uuid": node, "name": name, "resource_class": resource_class,
            "driver": "fake-hardware"} in with_fields
    assert all(set(n) == {"uuid", "name", "resource_class", "driver"} for n in with_fields)
    assert by_name == by_uuid
    assert by_name["uuid"] == node and by_name["name"] == name
    assert by_name["driver_info"]["ipmi_password"] == "******"
    assert "hunter2" not in json.dumps([listed, long_listed, by_name])

    renamed = unique("cli-renamed")
    cli.run("node", "set", node, "--name", renamed, "--extra", "rack=r12",
            "--extra", "owner_team=infra", "--driver-info", "ipmi_username=admin",
            "--driver-info", "ipmi_password=correct-horse")
    shown = cli.show(renamed, "uuid", "name", "extra", "driver_info")
    assert shown == {"uuid": node, "name": renamed,
                     "extra": {"rack": "r12", "owner_team": "infra"},
                     "driver_info": {"ipmi_address": "192.0.2.10", "ipmi_username": "admin",
                                     "ipmi_password": "******"}}

    cli.run("node", "unset", renamed, "--extra", "rack", "--driver-info", "ipmi_username",
            "--name")
    shown = cli.show(node, "name", "extra", "driver_info")
    assert shown == {"name": None, "extra": {"owner_team": "infra"},
                     "driver_info": {"ipmi_address": "192.0.2.10", "ipmi_password": "******"}}

    cli.run("port", "delete", port["uuid"])
    assert cli.json("port", "list", "--node", node) == []
    cli.run("node", "delete", node)
    gone = cli.run("node", "show", node, check=False)
    assert gone.returncode != 0
    assert "could not be found" in gone.stderr
    assert_no_tracebacks(aio)


def test_node_life_with_allocation_deploy_power_and_maintenance(cli: Cli, aio: Server) -> None:
    name, resource_class = unique("cli-life"), unique("CLI-RC")
    trait = f"CUSTOM_Y_{uuid.uuid4().hex[:8].upper()}"
    node = cli.json("node", "create", "--driver", "fake-hardware", "--name", name,
                    "--resource-class", resource_class,
                    "--driver-info", "ipmi_password=hunter2")["uuid"]

    cli.run("node", "manage", name)
    cli.wait_for(name, provision_state="manageable", target_provision_state=None,
                 power_state="power off", last_error=None)
    cli.run("node", "provide", name)
    cli.wait_for(name, provision_state="available", target_provision_state=None,
                 last_error=None)

    with ThreadPoolExecutor(1) as pool:
        validating = pool.submit(cli.json, "node", "validate", name)
        # The node gets two traits, loses one, and is then allocated by the one it kept.
        cli.run("node", "add", "trait", name, "CUSTOM_GONE", trait)
        cli.run("node", "remove", "trait", name, "CUSTOM_GONE")
        assert cli.json("node", "trait", "list", name) == [{"traits": trait}]
    validation = {row["Interface"]: row for row in validating.result()}
    for interface in ("boot", "deploy", "management", "network", "power"):
        assert validation[interface]["Result"] is True, validation[interface]

    cli.run("node", "boot", "device", "set", name, "pxe", "--persistent")
    assert cli.json("node", "boot", "device", "show", name) == {"boot_device": "pxe",
                                                                "persistent": True}

    allocation_name = unique("cli-alloc")
    allocation = cli.json("allocation", "create", "--resource-class", resource_class,
                          "--trait", trait, "--name", allocation_name, "--wait", WAIT)
    assert allocation["state"] == "active"
    assert allocation["node_uuid"] == node
    assert allocation["traits"] == [trait]
    shown_allocation, allocated = cli.parallel_json(
        ("allocation", "show", allocation_name),
        ("node", "show", node, "--fields", "allocation_uuid", "instance_uuid"),
    )
    assert shown_allocation["uuid"] == allocation["uuid"]
    assert shown_allocation["node_uuid"] == node
    assert shown_allocation["resource_class"] == resource_class
    assert allocated == {"allocation_uuid": allocation["uuid"],
                         "instance_uuid": allocation["uuid"]}
    cli.run("allocation", "delete", allocation_name)
    with ThreadPoolExecutor(1) as pool:
        looking = pool.submit(cli.run, "allocation", "show", allocation["uuid"], check=False)
        cli.run("node", "deploy", name, "--wait", WAIT)
    gone = looking.result()
    assert gone.returncode != 0 and "could not be found" in gone.stderr
    deployed = cli.show(node, "provision_state", "target_provision_state", "power_state",
                        "allocation_uuid", "instance_uuid", "last_error")
    assert deployed == {"provision_state": "active", "target_provision_state": None,
                        "power_state": "power on", "allocation_uuid": None,
                        "instance_uuid": None, "last_error": None}

    cli.run("node", "power", "off", name)
    cli.wait_for(name, power_state="power off", target_power_state=None)
    cli.run("node", "power", "on", name, "--power-timeout", "30")
    cli.wait_for(name, power_state="power on", target_power_state=None)

    cli.run("node", "maintenance", "set", name, "--reason", "disk swap")
    assert cli.show(name, "maintenance", "maintenance_reason", "provision_state") == {
        "maintenance": True, "maintenance_reason": "disk swap", "provision_state": "active"}
    cli.run("node", "maintenance", "unset", name)
    with ThreadPoolExecutor(1) as pool:
        showing = pool.submit(cli.show, name, "maintenance", "maintenance_reason")
        cli.run("node", "undeploy", name, "--wait", WAIT)
    assert showing.result() == {"maintenance": False, "maintenance_reason": None}
    undeployed = cli.show(name, "provision_state", "target_provision_state", "power_state",
                          "instance_info", "last_error")
    assert undeployed == {"provision_state": "available", "target_provision_state": None,
                          "power_state": "power off", "instance_info": {}, "last_error": None}

    cli.run("node", "delete", name)
    gone = cli.run("node", "show", node, check=False)
    assert gone.returncode != 0 and "could not be found" in gone.stderr
    assert_no_tracebacks(aio)


def test_drivers_conductors_and_unknown_node(cli: Cli, aio: Server) -> None:
    missing = unique("cli-missing")
    with ThreadPoolExecutor(4) as pool:
        drivers_future = pool.submit(cli.json, "driver", "list")
        conductors_future = pool.submit(cli.json, "conductor", "list")
        long_future = pool.submit(cli.json, "conductor", "list", "--long")
        manage_future = pool.submit(cli.run, "node", "manage", missing, check=False)
    drivers, conductors, long_conductors, manage = (
        drivers_future.result(), conductors_future.result(), long_future.result(),
        manage_future.result())

    alive = [c for c in conductors if c["alive"]]
    assert alive, conductors
    assert all(set(c) == {"hostname", "conductor_group", "alive"} for c in conductors)
    long_alive = [c for c in long_conductors if c["alive"]]
    assert [c["hostname"] for c in long_alive] == [c["hostname"] for c in alive]
    assert all("fake-hardware" in c["drivers"] for c in long_alive)
    by_name = {d["name"]: d for d in drivers}
    assert set(by_name) == {"fake-hardware", "ipmi", "redfish", "wol"}
    hosts = {h.strip() for h in by_name["fake-hardware"]["hosts"].split(",")}
    assert hosts == {c["hostname"] for c in alive}

    assert manage.returncode != 0
    assert f"Node {missing} could not be found" in manage.stderr, manage.stderr
    assert manage.stdout == ""
    assert_no_tracebacks(aio)


def test_bios_settings_through_the_cli(cli: Cli, aio: Server) -> None:
    """The node is prepared through the API (the CLI's --wait polls every 2 s); the bios
    commands are the CLI's."""
    name = unique("cli-bios")
    with httpx.Client(base_url=aio.url, headers={"X-OpenStack-Ironic-API-Version": "1.73"},
                      timeout=30) as api:
        assert api.post("/v1/nodes", json={"driver": "fake-hardware", "name": name,
                                           "bios_interface": "fake"}).status_code == 201
        for target, body in (("manage", {}), ("clean", {"clean_steps": [{
                "interface": "bios", "step": "apply_configuration", "args": {"settings": [
                    {"name": "HyperThreading", "value": "Disabled"}]}}]})):
            response = api.put(f"/v1/nodes/{name}/states/provision",
                               json={"target": target, **body})
            assert response.status_code == 202, response.text
            eventually(lambda: api.get(f"/v1/nodes/{name}").json()["provision_state"]
                       == "manageable", 20, f"{target} done")
    detailed, shown = cli.parallel_json(
        ("node", "bios", "setting", "list", name, "--long"),
        ("node", "bios", "setting", "show", name, "SerialNumber"))
    assert {s["name"]: s["value"] for s in detailed}["HyperThreading"] == "Disabled"
    serial = next(s for s in detailed if s["name"] == "SerialNumber")
    assert serial["read_only"] is True and serial["attribute_type"] == "String"
    assert shown["value"] == "FAKE-0001" and shown["name"] == "SerialNumber"
    assert_no_tracebacks(aio)
