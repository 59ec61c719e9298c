"""Discovery of unknown machines with the real agent, end to end, through the real API.

The pieces, all real processes or real servers:
- ``enclume-aio`` on loopback with discovery on (``ENCLUME_BOOT_DISCOVERY``) and a rules file;
- the boot service's HTTP app on the same database, with discovery on: it answers an unknown
  MAC with the deploy ramdisk and ``enclume.discovery=1``;
- a "machine": a network namespace whose veth NIC gets the MAC under test. Its network boot
  does what iPXE does (the iPXE script for its MAC, the kernel URL) and starts the real agent
  (``python3 -m agent.main`` with Debian's python, the ramdisk's interpreter) inside the
  namespace with the script's kernel command line and a file-backed disk, so the inventory has
  exactly that NIC. The agent reaches the API through a forwarder on the veth's root address;
  its power-off command touches a file.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.boot.http import create_boot_app
from services.common.config import Settings
from services.common.db import Database
from services.common.models import Node, NodeHistory
from tests.support.aio import Server, running_aio
from tests.support.asgi import bound_socket, serving, url_of
from tests.support.deploy_lab import GiB, require_agent_python
from tests.support.netns import VethNamespace, ip, veth_namespace
from tests.support.procfs import stop_process
from tests.support.tcp_forward import TcpForwarder

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
RAMDISK_PYTHON = "/usr/bin/python3"
HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}
DISK_BYTES = 5 * GiB  # sparse: local_gb 4
KERNEL, RAMDISK = "deploy.kernel", "deploy.initramfs"
PASSWORD = "bmc-pw-from-rules-7Hq"
RUN_TIMEOUT_S = 30.0
SECOND_NIC, THIRD_NIC = "nic2", "nic3"  # a veth pair inside the machine's namespace
RULES = f"""
rules:
  - name: every machine
    set:
      labels: {{site: lab}}
  - name: classroom B12
    match:
      mac_prefix: "52:54:00:d1"
      memory_mb: {{min: 64}}
      interface_name: "v*"
    set:
      driver: wol
      driver_info: {{wol_host: "{{ipv4_address}}"}}
      labels: {{room: B12}}
      name: "b12-{{mac_hex}}"
  - name: servers
    match: {{mac_prefix: "52:54:00:d2"}}
    set:
      driver: ipmi
      driver_info: {{ipmi_address: "192.0.2.10", ipmi_username: admin,
                     ipmi_password: "{PASSWORD}"}}
      resource_class: server
"""


@dataclass
class AgentRun:
    process: subprocess.Popen[bytes]
    log: Path
    powered_off: Path  # touched by the agent's power-off command
    started: float

    def wait_powered_off(self) -> float:
        """Seconds from the agent's start until it powered the machine off."""
        deadline = self.started + RUN_TIMEOUT_S
        while not self.powered_off.exists():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"the agent did not power off:\n{self.text()}")
            time.sleep(0.05)
        return time.monotonic() - self.started

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process, 10)


@dataclass
class Lab:
    aio: Server
    api: httpx.Client
    boot_url: str
    link: VethNamespace
    api_for_machines: str  # the forwarder's URL, on the veth's root address
    workdir: Path
    runs: int = 0

    def network_boot(self, mac: str, api_url: str | None = None, retry_max: float = 1.0,
                     second_nic: str | None = None) -> AgentRun:
        """Give the machine's boot NIC ``mac`` (and a second NIC ``second_nic``, with a third
        as its peer), then boot it from the network: iPXE script, kernel, agent."""
        ip("-n", self.link.name, "link", "set", "dev", self.link.namespace_interface, "address",
           mac)
        ip("-n", self.link.name, "link", "del", SECOND_NIC, check=False)
        if second_nic:
            ip("-n", self.link.name, "link", "add", SECOND_NIC, "address", second_nic, "type",
               "veth", "peer", "name", THIRD_NIC)
        script = httpx.get(f"{self.boot_url}/boot.ipxe", params={"mac": mac}).text
        kernel_line = next(line for line in script.splitlines() if line.startswith("kernel "))
        words = kernel_line.split(" || ")[0].split()
        assert httpx.get(words[1]).status_code == 200  # the deploy kernel is served
        params = " ".join(words[2:]).replace("${netX/mac}", mac)
        if api_url is not None:
            params = params.replace(f"enclume.api_url={self.api_for_machines}",
                                    f"enclume.api_url={api_url}")
        self.runs += 1
        run_dir = self.workdir / f"run-{self.runs}"
        run_dir.mkdir()
        (run_dir / "cmdline").write_text(params + "\n")
        disk = run_dir / "disk.img"
        with disk.open("wb") as handle:
            handle.truncate(DISK_BYTES)
        powered_off = run_dir / "powered-off"
        log = run_dir / "agent.log"
        argv = self.link.exec_argv(
            RAMDISK_PYTHON, "-m", "agent.main", "--cmdline-file", str(run_dir / "cmdline"),
            "--disk", str(disk), "--poweroff-command", f"touch {powered_off}",
            "--power-action-delay", "0.1", "--lookup-retry", "0.2",
            "--discovery-retry-max", str(retry_max))
        with log.open("wb") as out:
            process = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                       env={**os.environ, "PYTHONPATH": str(REPO)})
        return AgentRun(process, log, powered_off, time.monotonic())

    def discover(self, mac: str, second_nic: str | None = None) -> tuple[AgentRun, float]:
        run = self.network_boot(mac, second_nic=second_nic)
        try:
            return run, run.wait_powered_off()
        finally:
            run.stop()

    def node(self, ident: str) -> dict[str, Any]:
        response = self.api.get(f"/v1/nodes/{ident}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def nodes(self) -> list[dict[str, Any]]:
        return list(self.api.get("/v1/nodes/detail").json()["nodes"])

    def ports(self, uuid: str) -> dict[str, bool]:
        found = self.api.get(f"/v1/nodes/{uuid}/ports/detail").json()["ports"]
        return {port["address"]: port["pxe_enabled"] for port in found}

    def settle(self, uuid: str, state: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            node = self.node(uuid)
            if node["provision_state"] == state and node["target_provision_state"] is None:
                return node
            time.sleep(0.1)
        raise AssertionError(f"node {uuid} is {node['provision_state']}, not {state}")

    def create_node(self, mac: str, **fields: Any) -> str:
        created = self.api.post("/v1/nodes", json={"driver": "fake-hardware", **fields})
        assert created.status_code == 201, created.text
        uuid = str(created.json()["uuid"])
        port = self.api.post("/v1/ports", json={"node_uuid": uuid, "address": mac})
        assert port.status_code == 201, port.text
        return uuid


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_agent_python()
    base = tmp_path_factory.mktemp("discovery")
    rules = base / "rules.yaml"
    rules.write_text(RULES)
    rules.chmod(0o600)
    files = base / "boot-files"
    files.mkdir()
    (files / KERNEL).write_bytes(b"kernel")
    (files / RAMDISK).write_bytes(b"ramdisk")
    env = {"ENCLUME_BOOT_DISCOVERY": "true", "ENCLUME_DISCOVERY_RULES_FILE": str(rules),
           "ENCLUME_LOG_LEVEL": "DEBUG"}
    with veth_namespace("discovery") as link, \
            running_aio(base / "aio", env=env) as aio, \
            TcpForwarder(link.root_address, ("127.0.0.1", aio.port)) as forwarder:
        db = Database(f"sqlite:///{base / 'aio' / 'enclume.sqlite'}")
        boot_socket = bound_socket()
        settings = Settings(
            process={"data_dir": base / "boot"},
            boot={"files_dir": files, "public_url": url_of(boot_socket)},
            discovery={"enabled": True},
            deploy={"kernel": KERNEL, "ramdisk": RAMDISK, "agent_api_url": forwarder.url},
            images={"cache_dir": base / "cache"},
        )
        with serving(create_boot_app(settings, db), boot_socket) as boot_url, \
                httpx.Client(base_url=aio.url, headers=HEADERS, timeout=30) as api:
            yield Lab(aio, api, boot_url, link, forwarder.url, base)


def history(lab: Lab, uuid: str) -> list[tuple[str, str]]:
    """The node's history (event type, event), oldest first, read from the database."""
    db = Database(f"sqlite:///{lab.workdir / 'aio' / 'enclume.sqlite'}")
    with db.session() as session:
        rows = session.execute(select(NodeHistory.event_type, NodeHistory.event).join(Node)
                               .where(Node.uuid == uuid).order_by(NodeHistory.id))
        return [(row.event_type, row.event) for row in rows]


def test_an_unknown_machine_enrolls_itself_with_the_rules_and_powers_off(
        lab: Lab, record_property: Any) -> None:
    mac = "52:54:00:d1:00:01"
    before = {node["uuid"] for node in lab.nodes()}
    run, seconds = lab.discover(mac)
    record_property("discovery_seconds", round(seconds, 2))
    print(f"\nnetwork boot -> node enrolled -> powered off: {seconds:.2f} s")

    cmdline = (lab.workdir / f"run-{lab.runs}" / "cmdline").read_text()
    assert "enclume.discovery=1" in cmdline and f"BOOTIF={mac}" in cmdline
    [node] = [n for n in lab.nodes() if n["uuid"] not in before]
    log = run.text()
    assert f"this machine is enrolled as node {node['uuid']} (enroll)" in log, log
    assert node["provision_state"] == "enroll" and node["target_provision_state"] is None
    assert node["driver"] == "wol" and node["name"] == "b12-525400d10001"
    assert node["driver_info"] == {"wol_host": lab.link.namespace_address}
    assert node["extra"] == {"labels": {"site": "lab", "room": "B12"}}
    properties = node["properties"]
    assert properties["cpus"] == os.cpu_count() and properties["cpu_arch"] == os.uname().machine
    assert properties["local_gb"] == DISK_BYTES // GiB - 1 and properties["memory_mb"] > 64
    assert lab.ports(node["uuid"]) == {mac: True}  # the only NIC, the one it booted from
    stored = lab.api.get(f"/v1/nodes/{node['uuid']}/inventory").json()["inventory"]
    assert [i["mac_address"] for i in stored["interfaces"]] == [mac]
    assert stored["boot"]["pxe_interface"] == mac
    assert [d["size"] for d in stored["disks"]] == [DISK_BYTES]
    assert "system_vendor" in stored
    events = history(lab, node["uuid"])
    assert [event_type for event_type, _ in events] == ["introspection", "discovered"]
    assert "rules applied: every machine, classroom B12; driver wol" in events[-1][1]
    # Enrolled, the machine is known: the boot service no longer gives it the ramdisk.
    script = httpx.get(f"{lab.boot_url}/boot.ipxe", params={"mac": mac}).text
    assert "kernel " not in script and "exit" in script


def test_bmc_passwords_from_rules_are_masked_and_never_logged(lab: Lab) -> None:
    mac = "52:54:00:d2:00:01"
    run, _ = lab.discover(mac)
    [node] = [n for n in lab.nodes() if mac in lab.ports(n["uuid"])]
    assert node["driver"] == "ipmi" and node["resource_class"] == "server"
    assert node["driver_info"] == {"ipmi_address": "192.0.2.10", "ipmi_username": "admin",
                                   "ipmi_password": "******"}
    assert node["extra"] == {"labels": {"site": "lab"}} and node["name"] is None
    for text in (lab.aio.log_text(), run.text(), lab.api.get("/v1/nodes/detail").text):
        assert PASSWORD not in text


def test_a_known_mac_of_an_operators_node_is_refused_and_makes_no_duplicate(lab: Lab) -> None:
    """The machine boots from a NIC no port has (so the boot service gives it the discovery
    ramdisk); its second NIC is the port of a node enrolled by hand. An anonymous inventory does
    not rewrite an operator's node (re-inspect it with `enclume node inspect`): 409, nothing
    changes, and no second node is made."""
    boot_mac, known = "52:54:00:d1:00:02", "52:54:00:e0:00:02"  # the boot NIC would match the
    uuid = lab.create_node(known, name="enrolled-by-hand",  # classroom rule: not applied
                           properties={"cpus": 99})
    count = len(lab.nodes())
    run, _ = lab.discover(boot_mac, second_nic=known)
    log = run.text()
    assert "the API refused this machine's inventory: HTTP 409" in log, log
    assert "already known as a node that discovery does not change" in log, log
    assert uuid not in log, log
    assert len(lab.nodes()) == count
    node = lab.node(uuid)
    assert node["properties"] == {"cpus": 99} and node["name"] == "enrolled-by-hand"
    assert lab.ports(uuid) == {known: True}
    assert lab.api.get(f"/v1/nodes/{uuid}/inventory").status_code == 404


def test_a_busy_node_refuses_with_409_and_nothing_changes(lab: Lab) -> None:
    boot_mac, mac = "52:54:00:d1:00:03", "52:54:00:e0:00:03"
    uuid = lab.create_node(mac, properties={"cpus": 99})
    for target, state in (("manage", "manageable"), ("provide", "available"),
                          ("active", "active")):
        answer = lab.api.put(f"/v1/nodes/{uuid}/states/provision", json={"target": target})
        assert answer.status_code == 202, answer.text
        lab.settle(uuid, state)
    count = len(lab.nodes())
    run, _ = lab.discover(boot_mac, second_nic=mac)  # refused; it powers off all the same
    log = run.text()
    assert "the API refused this machine's inventory: HTTP 409" in log, log
    assert "discovery does not change" in log and uuid not in log, log
    node = lab.node(uuid)
    assert node["provision_state"] == "active" and node["properties"] == {"cpus": 99}
    assert lab.ports(uuid) == {mac: True} and len(lab.nodes()) == count
    assert lab.api.get(f"/v1/nodes/{uuid}/inventory").status_code == 404


@pytest.mark.parametrize("body", [
    {"inventory": {"cpu": {"count": 1, "architecture": "x86_64"}}},
    {"inventory": {"cpu": {"count": "two", "architecture": "x86_64"},
                   "memory": {"physical_mb": 1}, "disks": [],
                   "interfaces": [{"mac_address": "52:54:00:d1:00:09"}]}},
    {"hello": "world"},
])
def test_a_malformed_inventory_is_400_and_nothing_is_written(lab: Lab, body: Any) -> None:
    nodes, ports = len(lab.nodes()), len(lab.api.get("/v1/ports").json()["ports"])
    answer = httpx.post(f"{lab.aio.url}/v1/continue_inspection", json=body)
    assert answer.status_code == 400, answer.text
    assert "inventory" in answer.text
    assert len(lab.nodes()) == nodes
    assert len(lab.api.get("/v1/ports").json()["ports"]) == ports


def test_the_agent_retries_with_back_off_until_the_api_answers(lab: Lab) -> None:
    with TcpForwarder(lab.link.root_address, ("127.0.0.1", lab.aio.port)) as probe:
        port = probe.port  # free again once closed: nothing listens there for a while
    url = f"http://{lab.link.root_address}:{port}"
    run = lab.network_boot("52:54:00:d1:00:04", api_url=url, retry_max=0.8)
    try:
        time.sleep(2.0)
        assert not run.powered_off.exists()
        with TcpForwarder(lab.link.root_address, ("127.0.0.1", lab.aio.port), port=port):
            run.wait_powered_off()
    finally:
        run.stop()
    log = run.text()
    assert "trying again in 0.2 s" in log and "trying again in 0.4 s" in log
    assert "trying again in 0.8 s" in log and "trying again in 1.6 s" not in log
    assert "this machine is enrolled as node" in log


def test_with_discovery_off_the_api_refuses_and_the_machine_powers_off(
        lab: Lab, aio: Server) -> None:
    """``aio`` (tests/integration/conftest.py) runs with the default: discovery off."""
    with TcpForwarder(lab.link.root_address, ("127.0.0.1", aio.port)) as forwarder:
        run = lab.network_boot("52:54:00:d1:00:05", api_url=forwarder.url)
        try:
            run.wait_powered_off()
        finally:
            run.stop()
    assert "refused this machine's inventory: HTTP 403" in run.text()
    assert "Discovery is off" in run.text()
    assert httpx.get(f"{aio.url}/v1/nodes").json()["nodes"] == []


def test_the_api_refuses_to_start_with_a_bad_rules_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: lab\n    match: {memory_mb: {min: 9, max: 1}}\n"
                     "    set: {driver: wol}\n")
    with pytest.raises(RuntimeError) as failed, running_aio(tmp_path / "aio", env={
            "ENCLUME_BOOT_DISCOVERY": "true", "ENCLUME_DISCOVERY_RULES_FILE": str(rules)}):
        pass
    message = str(failed.value)
    assert "exited with 2" in message
    assert (f"refusing to start: {rules}, rule 1 ('lab'), line 3: match.memory_mb: min (9) "
            f"is greater than max (1)") in message
