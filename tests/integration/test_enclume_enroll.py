"""`enclume enroll` (the real console script) against enclume-aio: 500 nodes from YAML and from
CSV (timed), re-runs that change nothing, one edit giving one update, broken inventories
rejected with their line numbers and nothing written, --dry-run, failures of single nodes,
--then manage --wait."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.cli.enclume import enroll as enroll_command
from services.cli.enclume.client import ApiClient
from services.cli.enclume.config import load_config
from services.cli.enclume.inventory import report
from services.cli.enclume.inventory.apply import SECRETS_RESENT, apply_changes
from services.cli.enclume.inventory.read import read_inventory
from tests.support.aio import Server, running_aio

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ENCLUME = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "enclume"
VERSION = {"X-OpenStack-Ironic-API-Version": "1.73"}
PASSWORD = "Tr0ub4dor&3-bmc"
FLEET = 500
SLOW_S = 6  # fake cleaning and inspection take this long: nodes that stay busy a while


@pytest.fixture(scope="module")
def aio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """enclume-aio as conftest's, with the power sync out of the way (it would record the
    power state of new nodes between two runs and so move their updated_at) and slow fake
    cleaning and inspection (for nodes that are busy while enroll runs)."""
    env = {"ENCLUME_POWER_SYNC_INTERVAL_S": "86400",
           "ENCLUME_FAKE_DEPLOY_DELAY_S": f"[{SLOW_S}, {SLOW_S}]"}
    with running_aio(tmp_path_factory.mktemp("aio"), env=env) as server:
        yield server


@pytest.fixture(scope="module")
def cli_env(aio: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLUME_")}
    return {**env, "ENCLUME_URL": aio.url, "XDG_CONFIG_HOME": str(home), "HOME": str(home)}


def enroll(env: dict[str, str], *args: str | Path) -> tuple[subprocess.CompletedProcess[str],
                                                             float]:
    assert ENCLUME.exists(), f"{ENCLUME} is missing: run `make deps` (pip install -e .)"
    started = time.monotonic()
    done = subprocess.run([str(ENCLUME), "enroll", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300)
    return done, time.monotonic() - started


# -- reading the API directly ------------------------------------------------------------


def api_list(server: Server, path: str, key: str, fields: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, str] | None = {"fields": fields}
    url = server.url + path
    while True:
        page = httpx.get(url, params=params, headers=VERSION, timeout=30).json()
        items.extend(page[key])
        if not page.get("next"):
            return items
        url, params = page["next"], None


def nodes_named(server: Server, prefix: str, fields: str = "uuid,name,updated_at"
                ) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in api_list(server, "/v1/nodes", "nodes", f"name,{fields}")
            if (n["name"] or "").startswith(prefix)}


def snapshot(server: Server, prefix: str) -> dict[str, Any]:
    """updated_at of each node of ``prefix`` and of each of their ports."""
    nodes = nodes_named(server, prefix)
    uuids = {node["uuid"] for node in nodes.values()}
    ports = api_list(server, "/v1/ports", "ports", "address,node_uuid,updated_at")
    return {"nodes": {name: node["updated_at"] for name, node in nodes.items()},
            "ports": {p["address"]: p["updated_at"] for p in ports if p["node_uuid"] in uuids}}


def counts(server: Server) -> tuple[int, int]:
    return (len(api_list(server, "/v1/nodes", "nodes", "uuid")),
            len(api_list(server, "/v1/ports", "ports", "uuid")))


def node(server: Server, name: str) -> dict[str, Any]:
    return httpx.get(f"{server.url}/v1/nodes/{name}", headers=VERSION, timeout=10).json()


def node_ports(server: Server, name: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{server.url}/v1/nodes/{name}/ports/detail", headers=VERSION,
                       timeout=10).json()
    return sorted(answer["ports"], key=lambda port: port["address"])


# -- inventories --------------------------------------------------------------------------


def mac(kind: int, index: int, nic: int) -> str:
    return f"52:54:{kind:02x}:{index >> 8:02x}:{index & 255:02x}:{nic:02x}"


def yaml_fleet(prefix: str, count: int, kind: int) -> dict[str, Any]:
    """IPMI machines with two NICs each, in the `defaults` + `nodes` form."""
    return {
        "defaults": {
            "driver": "ipmi",
            "driver_info": {"ipmi_username": "admin", "ipmi_password": PASSWORD},
            "vlans": {"provisioning": 100, "tenant": 200},
            "properties": {"cpus": 8, "memory_mb": 16384, "local_gb": 100,
                           "cpu_arch": "x86_64"},
            "resource_class": "baremetal",
        },
        "nodes": [{
            "name": f"{prefix}-{i:03d}",
            "driver_info": {"ipmi_address": "127.0.0.1", "ipmi_port": 20000 + i},
            "macs": [mac(kind, i, 1), mac(kind, i, 2)],
            "local_link_connection": {"switch_info": f"tor-{i // 48}",
                                      "port_id": f"GigabitEthernet1/0/{i % 48 + 1}"},
            "room": f"R{i // 40}",
            "labels": {"rack": f"rack-{i // 20}"},
        } for i in range(count)],
    }


def write_yaml(path: Path, inventory: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


CSV_COLUMNS = ["name", "driver", "driver_info.redfish_address", "driver_info.redfish_username",
               "driver_info.redfish_password", "driver_info.redfish_system_id", "macs",
               "local_link_connection.switch_info", "local_link_connection.port_id",
               "vlans.provisioning", "vlans.tenant", "properties.cpus",
               "properties.memory_mb", "room", "labels", "resource_class"]


def csv_fleet(prefix: str, count: int, kind: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for i in range(count):
        writer.writerow([
            f"{prefix}-{i:03d}", "redfish", f"http://127.0.0.1:{30000 + i}", "root", PASSWORD,
            "/redfish/v1/Systems/1", f"{mac(kind, i, 1)};{mac(kind, i, 2)}", f"tor-{i // 48}",
            f"Ethernet{i % 48 + 1}", "100", "200", "16", "65536", f"C{i // 40}",
            f"rack=rack-{i // 20};row={i // 100}", "baremetal-large"])
    return out.getvalue()


# -- 500 nodes ---------------------------------------------------------------------------


def test_500_nodes_from_yaml_then_reruns(aio: Server, cli_env: dict[str, str],
                                         tmp_path: Path) -> None:
    inventory = yaml_fleet("yaml", FLEET, kind=1)
    path = write_yaml(tmp_path / "fleet.yaml", inventory)

    done, created_s = enroll(cli_env, path)
    print(f"\nenroll {FLEET} nodes (1000 ports) from YAML: {created_s:.2f} s")
    assert done.returncode == 0, done.stderr
    assert f"{FLEET} created, 0 updated, 0 unchanged, 0 failed" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr

    assert len(nodes_named(aio, "yaml-")) == FLEET
    sample = node(aio, "yaml-123")
    assert sample["driver"] == "ipmi" and sample["resource_class"] == "baremetal"
    assert sample["driver_info"] == {
        "ipmi_username": "admin", "ipmi_password": "******", "ipmi_address": "127.0.0.1",
        "ipmi_port": 20123, "provisioning_vlan": 100, "tenant_vlan": 200}
    assert sample["properties"] == {"cpus": 8, "memory_mb": 16384, "local_gb": 100,
                                    "cpu_arch": "x86_64"}
    assert sample["extra"] == {"labels": {"rack": "rack-6", "room": "R3"}}
    first, second = node_ports(aio, "yaml-123")
    assert (first["address"], first["pxe_enabled"]) == (mac(1, 123, 1), True)
    assert first["local_link_connection"] == {"switch_info": "tor-2",
                                              "port_id": "GigabitEthernet1/0/28"}
    assert (second["address"], second["pxe_enabled"]) == (mac(1, 123, 2), False)
    assert second["local_link_connection"] == {}

    # The same file again: nothing changes, and the API's updated_at says so.
    before = snapshot(aio, "yaml-")
    assert len(before["ports"]) == 2 * FLEET
    done, rerun_s = enroll(cli_env, path)
    print(f"re-run of the same {FLEET} nodes (nothing to change): {rerun_s:.2f} s")
    assert done.returncode == 0, done.stderr
    assert (f"0 created, 0 updated, {FLEET} unchanged, 0 failed, secrets of {FLEET} unchanged "
            "node(s) re-sent (the API applies those that differ) in ") in done.stdout
    assert snapshot(aio, "yaml-") == before

    # One address changed in the file: exactly one node updated.
    inventory["nodes"][42]["driver_info"]["ipmi_address"] = "127.0.0.42"
    write_yaml(path, inventory)
    done, _ = enroll(cli_env, path)
    assert done.returncode == 0, done.stderr
    assert f"0 created, 1 updated, {FLEET - 1} unchanged, 0 failed" in done.stdout
    after = snapshot(aio, "yaml-")
    moved = [name for name in before["nodes"] if after["nodes"][name] != before["nodes"][name]]
    assert moved == ["yaml-042"]
    assert after["ports"] == before["ports"]
    assert node(aio, "yaml-042")["driver_info"]["ipmi_address"] == "127.0.0.42"

    # A new password (which the API never shows): the API compares it and writes only that
    # one. It never says whether a secret differed, so the report claims no update.
    inventory["nodes"][7]["driver_info"]["ipmi_password"] = "a-new-one"
    write_yaml(path, inventory)
    done, _ = enroll(cli_env, path)
    assert done.returncode == 0, done.stderr
    assert f"0 created, 0 updated, {FLEET} unchanged, 0 failed, secrets of {FLEET}" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr and "a-new-one" not in done.stdout
    again = snapshot(aio, "yaml-")
    assert [n for n in after["nodes"] if again["nodes"][n] != after["nodes"][n]] == ["yaml-007"]
    done, _ = enroll(cli_env, path)
    assert f"0 created, 0 updated, {FLEET} unchanged, 0 failed" in done.stdout
    assert snapshot(aio, "yaml-") == again


def test_500_nodes_from_csv(aio: Server, cli_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "fleet.csv"
    path.write_text(csv_fleet("csv", FLEET, kind=2))

    done, created_s = enroll(cli_env, path)
    print(f"\nenroll {FLEET} nodes (1000 ports) from CSV: {created_s:.2f} s")
    assert done.returncode == 0, done.stderr
    assert f"{FLEET} created, 0 updated, 0 unchanged, 0 failed" in done.stdout
    assert len(nodes_named(aio, "csv-")) == FLEET
    sample = node(aio, "csv-321")
    assert sample["driver"] == "redfish" and sample["resource_class"] == "baremetal-large"
    assert sample["driver_info"] == {
        "redfish_address": "http://127.0.0.1:30321", "redfish_username": "root",
        "redfish_password": "******", "redfish_system_id": "/redfish/v1/Systems/1",
        "provisioning_vlan": 100, "tenant_vlan": 200}
    assert sample["properties"] == {"cpus": 16, "memory_mb": 65536}
    assert sample["extra"] == {"labels": {"rack": "rack-16", "row": "3", "room": "C8"}}
    ports = node_ports(aio, "csv-321")
    assert [(p["address"], p["pxe_enabled"], p["local_link_connection"]) for p in ports] == [
        (mac(2, 321, 1), True, {"switch_info": "tor-6", "port_id": "Ethernet34"}),
        (mac(2, 321, 2), False, {}),
    ]

    before = snapshot(aio, "csv-")
    done, rerun_s = enroll(cli_env, path)
    print(f"re-run of the same {FLEET} nodes from CSV: {rerun_s:.2f} s")
    assert f"0 created, 0 updated, {FLEET} unchanged, 0 failed" in done.stdout
    assert snapshot(aio, "csv-") == before


# -- nothing written ---------------------------------------------------------------------


def test_a_broken_yaml_inventory_is_rejected_with_its_lines_and_nothing_written(
        aio: Server, cli_env: dict[str, str], tmp_path: Path) -> None:
    holder = write_yaml(tmp_path / "holder.yaml", {"nodes": [
        {"name": "holder-1", "driver": "fake-hardware", "macs": [mac(3, 0, 1)]}]})
    assert enroll(cli_env, holder)[0].returncode == 0

    path = tmp_path / "broken.yaml"
    path.write_text(f"""\
- name: broken-ok
  driver: fake-hardware
  macs: [{mac(3, 1, 1)}]
- name: broken-typo
  drvier: ipmi
- name: broken-ok
  driver: fake-hardware
- name: broken-bmc
  driver: ipmi
  driver_info:
    ipmi_adress: 127.0.0.1
    ipmi_password: "{PASSWORD}"
  properties: {{cpus: many}}
- name: broken-mac
  driver: fake-hardware
  macs: [{mac(3, 2, 1)}, "52:54:zz:00:00:01", {mac(3, 0, 1)}]
- name: broken-driver
  driver: fake-hardwre
""")
    nodes_before, ports_before = counts(aio)
    done, _ = enroll(cli_env, path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"Error: {path}: 9 problems, nothing was written:",
        f"  {path}:4: node broken-typo: driver is required",
        f"  {path}:5: node broken-typo: drvier: unknown field (did you mean driver?)",
        f"  {path}:6: node broken-ok: name: the name is already used on line 1",
        f"  {path}:10: node broken-bmc: driver_info: ipmi_address is required by driver ipmi",
        f"  {path}:11: node broken-bmc: driver_info.ipmi_adress: unknown key for driver ipmi "
        "(did you mean ipmi_address?)",
        f"  {path}:13: node broken-bmc: properties.cpus: expected a whole number (0 or more), "
        "not 'many'",
        f"  {path}:16: node broken-mac: macs[1]: '52:54:zz:00:00:01' is not a MAC address",
        f"  {path}:16: node broken-mac: macs[2]: MAC {mac(3, 0, 1)} is a port of another "
        "node, holder-1: delete that port first",
        f"  {path}:18: node broken-driver: driver: unknown driver 'fake-hardwre'; the server "
        "has fake-hardware, ipmi, redfish, wol (did you mean fake-hardware?)",
    ]
    assert counts(aio) == (nodes_before, ports_before)
    assert nodes_named(aio, "broken-") == {}


def test_a_broken_csv_inventory_is_rejected_with_its_lines_and_nothing_written(
        aio: Server, cli_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text(
        "name,driver,driver_info.ipmi_address,driver_info.ipmi_password,macs,vlans.tenant\n"
        f"csvbroken-1,ipmi,127.0.0.1,{PASSWORD},{mac(4, 1, 1)},200\n"
        f"csvbroken-2,ipmi,,{PASSWORD},{mac(4, 2, 1)},200\n"
        "\n"
        f"csvbroken-3,ipmi,127.0.0.1,{PASSWORD},{mac(4, 1, 1)},4095\n")
    nodes_before, ports_before = counts(aio)
    done, _ = enroll(cli_env, path)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"Error: {path}: 3 problems, nothing was written:",
        f"  {path}:3: node csvbroken-2: driver_info: ipmi_address is required by driver ipmi",
        f"  {path}:5: node csvbroken-3: macs[0]: MAC {mac(4, 1, 1)} is also given for node "
        "csvbroken-1 on line 2",
        f"  {path}:5: node csvbroken-3: vlans.tenant: expected a VLAN id between 1 and 4094, "
        "not '4095'",
    ]
    assert PASSWORD not in done.stderr
    assert counts(aio) == (nodes_before, ports_before)


def test_dry_run_shows_the_plan_and_writes_nothing(aio: Server, cli_env: dict[str, str],
                                                   tmp_path: Path) -> None:
    inventory = yaml_fleet("dry", 3, kind=5)
    path = write_yaml(tmp_path / "dry.yaml", inventory)
    assert enroll(cli_env, path)[0].returncode == 0
    inventory["nodes"][1]["driver_info"]["ipmi_port"] = 623
    inventory["nodes"][2]["macs"].append(mac(5, 2, 3))
    inventory["nodes"].append({"name": "dry-new", "macs": [mac(5, 9, 1)],
                               "driver_info": {"ipmi_address": "127.0.0.1"}})
    write_yaml(path, inventory)
    before, totals = snapshot(aio, "dry-"), counts(aio)

    done, _ = enroll(cli_env, path, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"Plan for {path}: 1 to create, 2 to update, 1 unchanged.",
        "  update  dry-001: driver_info.ipmi_port",
        f"  update  dry-002: port {mac(5, 2, 3)} added",
        "  create  dry-new: 1 port",
        "Secrets of 3 existing node(s) cannot be compared here (the API shows them as ******): "
        "the API compares them when enrolling.",
        "Dry run: nothing was written.",
    ]
    assert snapshot(aio, "dry-") == before and counts(aio) == totals

    done, _ = enroll(cli_env, path, "--dry-run", "-f", "json")
    assert '"create": 1' in done.stdout and '"dry-new"' in done.stdout
    assert counts(aio) == totals
    done, _ = enroll(cli_env, path)
    assert "1 created, 2 updated, 1 unchanged, 0 failed" in done.stdout
    assert [p["address"] for p in node_ports(aio, "dry-002")] == [
        mac(5, 2, 1), mac(5, 2, 2), mac(5, 2, 3)]

    # A MAC taken out of the file: its port is deleted.
    inventory["nodes"][2]["macs"] = [mac(5, 2, 1), mac(5, 2, 3)]
    write_yaml(path, inventory)
    done, _ = enroll(cli_env, path)
    assert "0 created, 1 updated, 3 unchanged, 0 failed" in done.stdout, done.stderr
    assert [p["address"] for p in node_ports(aio, "dry-002")] == [mac(5, 2, 1), mac(5, 2, 3)]


def test_a_write_between_listing_and_patch_is_no_reported_change(
        aio: Server, cli_env: dict[str, str], tmp_path: Path) -> None:
    """A power sync or heartbeat moves updated_at between enroll's listing and its patch of
    secrets: the node, whose secrets are only re-sent, is still reported unchanged."""
    path = write_yaml(tmp_path / "race.yaml", yaml_fleet("race", 2, kind=10))
    assert enroll(cli_env, path)[0].returncode == 0
    with ApiClient(load_config(url=aio.url, api_version="1.73")) as client:
        _specs, plan = enroll_command._plan(client, read_inventory(path))
        assert [(c.name, c.kind, bool(c.secret_ops)) for c in plan.changes] == [
            ("race-000", "unchanged", True), ("race-001", "unchanged", True)]
        listed = node(aio, "race-000")["updated_at"]
        client.put("/v1/nodes/race-000/maintenance", {"reason": "another writer"})
        client.delete("/v1/nodes/race-000/maintenance")
        assert node(aio, "race-000")["updated_at"] != listed
        results = apply_changes(client, plan.changes, concurrency=2)
    assert [(r.name, r.outcome, r.detail) for r in results] == [
        ("race-000", "unchanged", SECRETS_RESENT), ("race-001", "unchanged", SECRETS_RESENT)]
    assert report.summary_counts(results, unchanged=0) == {
        "created": 0, "updated": 0, "unchanged": 2, "failed": 0, "secrets_resent": 2}


def test_a_failing_node_is_reported_and_the_others_go_on(aio: Server, cli_env: dict[str, str],
                                                         tmp_path: Path) -> None:
    inventory = {"nodes": [{"name": f"busy-{i}", "driver": "fake-hardware",
                            "macs": [mac(6, i, 1)], "labels": {"batch": "1"}}
                           for i in range(5)]}
    path = write_yaml(tmp_path / "busy.yaml", inventory)
    assert enroll(cli_env, path)[0].returncode == 0
    # busy-2 is cleaned (slow fake cleaning): it is locked while enroll runs.
    put = f"{aio.url}/v1/nodes/busy-2/states/provision"
    assert httpx.put(put, json={"target": "manage"}, headers=VERSION).status_code == 202
    _until(aio, "busy-2", "manageable")
    assert httpx.put(put, json={"target": "provide"}, headers=VERSION).status_code == 202
    _until(aio, "busy-2", "cleaning")

    for entry in inventory["nodes"]:
        entry["labels"]["batch"] = "2"
    write_yaml(path, inventory)
    done, _ = enroll(cli_env, path, "--concurrency", "2")
    assert done.returncode == 1
    assert "0 created, 4 updated, 0 unchanged, 1 failed" in done.stdout
    (failure,) = [line for line in done.stderr.splitlines() if line.startswith("FAILED")]
    assert failure.startswith("FAILED busy-2: ") and "(HTTP 409)" in failure
    labels = {name: n["extra"]["labels"]["batch"]
              for name, n in nodes_named(aio, "busy-", "extra").items()}
    assert labels == {"busy-0": "2", "busy-1": "2", "busy-2": "1", "busy-3": "2", "busy-4": "2"}


def _until(server: Server, name: str, state: str, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while node(server, name)["provision_state"] != state:
        assert time.monotonic() < deadline, f"{name} never reached {state}"
        time.sleep(0.1)


# -- then ---------------------------------------------------------------------------------


def test_then_manage_wait(aio: Server, cli_env: dict[str, str], tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "manage.yaml", {
        "defaults": {"driver": "fake-hardware", "room": "lab"},
        "nodes": [{"name": f"managed-{i:02d}", "macs": [mac(7, i, 1)]} for i in range(20)]})
    done, took = enroll(cli_env, path, "--then", "manage", "--wait", "--timeout", "120")
    print(f"\nenroll + manage --wait of 20 fake nodes: {took:.2f} s")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "20 created, 0 updated, 0 unchanged, 0 failed" in done.stdout
    assert "20 of 20 node(s) done" in done.stdout
    states = {n["provision_state"] for n in
              nodes_named(aio, "managed-", "provision_state").values()}
    assert states == {"manageable"}

    # Again: nothing to enroll, nothing to manage; manageable nodes are left as they are.
    done, _ = enroll(cli_env, path, "--then", "manage", "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 created, 0 updated, 20 unchanged, 0 failed" in done.stdout
    assert "manage: 20 node(s) left as they are (manageable 20)" in done.stdout


def test_then_provide_wait_and_then_inspect(aio: Server, cli_env: dict[str, str],
                                            tmp_path: Path) -> None:
    provided = write_yaml(tmp_path / "provide.yaml", {
        "defaults": {"driver": "fake-hardware", "automated_clean": False},
        "nodes": [{"name": f"provided-{i}", "macs": [mac(8, i, 1)]} for i in range(5)]})
    done, _ = enroll(cli_env, provided, "--then", "provide", "--wait", "--timeout", "120")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "manage: waiting for 5 node(s)" in done.stderr + done.stdout
    assert "provide: waiting for 5 node(s)" in done.stdout
    assert {n["provision_state"] for n in
            nodes_named(aio, "provided-", "provision_state").values()} == {"available"}

    # inspect: managed first (waited for), then inspection asked for and not waited for.
    inspected = write_yaml(tmp_path / "inspect.yaml", {
        "defaults": {"driver": "fake-hardware", "inspect_interface": "fake"},
        "nodes": [{"name": f"inspected-{i}", "macs": [mac(9, i, 1)]} for i in range(3)]})
    done, took = enroll(cli_env, inspected, "--then", "inspect")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "inspect: requested for 3 node(s)" in done.stdout
    assert took < SLOW_S  # did not wait for the (slow) inspection
    assert {n["provision_state"] for n in nodes_named(
        aio, "inspected-", "provision_state").values()} <= {"inspecting", "inspect wait"}
