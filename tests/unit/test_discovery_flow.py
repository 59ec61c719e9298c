"""POST /v1/continue_inspection and the conductor's side of discovery, on a real SQLite database
and a real API served by uvicorn on loopback, in process and over the conductor RPC.

The real agent in discovery mode against enclume-aio is in tests/integration/test_discovery.py;
a QEMU machine discovered in the virtual lab in tests/lab/test_discovery_lab.py.
"""

from __future__ import annotations

import copy
import logging
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.api.app import create_app
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.membership import Membership
from services.common.models import Node, NodeHistory, NodeInventory, Port
from services.conductor import locks
from services.conductor.manager import ConductorManager
from services.conductor.periodic import PeriodicTasks
from services.conductor.rpc import RpcClient, server_app
from services.discovery.rules import RulesError
from services.drivers.registry import Drivers
from tests.support.aio import write_htpasswd
from tests.support.api_stack import faultstring as fault
from tests.support.api_stack import served_api
from tests.support.asgi import bound_socket, serving, url_of
from tests.support.settings import Sections, merged_settings

GiB = 1024**3
HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}
BOOT_MAC, OTHER_MAC = "52:54:00:12:34:56", "aa:bb:cc:00:00:01"
PASSWORD = "rule-password-f9q2"
RULES = f"""
rules:
  - name: classroom B12
    match: {{mac_prefix: "52:54:00:12"}}
    set:
      driver: ipmi
      driver_info: {{ipmi_address: "10.0.0.9", ipmi_username: admin,
                     ipmi_password: "{PASSWORD}"}}
      labels: {{room: B12}}
      properties: {{capabilities: "boot_mode:bios"}}
      resource_class: classroom-pc
      name: "b12-{{mac_hex}}"
"""
INVENTORY: dict[str, Any] = {
    "cpu": {"count": 2, "architecture": "x86_64"},
    "memory": {"total_bytes": 4 * GiB, "physical_mb": 4096},
    "disks": [{"name": "/dev/vda", "size": 10 * GiB}],
    "interfaces": [{"name": "eth0", "mac_address": BOOT_MAC},
                   {"name": "eth1", "mac_address": OTHER_MAC}],
    "boot": {"current_boot_mode": "bios", "pxe_interface": BOOT_MAC},
}


@dataclass
class Stack:
    api: httpx.Client
    db: Database
    manager: ConductorManager | None = None


def settings_for(tmp_path: Path, **sections: dict[str, Any]) -> Settings:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    rules.chmod(0o600)
    defaults: Sections = {"process": {"data_dir": tmp_path},
                          "conductor": {"hostname": "conductor-1"},
                          "discovery": {"enabled": True, "rules_file": rules}}
    return merged_settings(defaults, **sections)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'discovery.sqlite'}"
    upgrade_schema(url)
    return Database(url)


def serve(tmp_path: Path, db: Database, **values: Any) -> Iterator[Stack]:
    with served_api(settings_for(tmp_path, **values), db) as served:
        yield Stack(served.client, db, served.manager)


@pytest.fixture
def stack(tmp_path: Path, db: Database) -> Iterator[Stack]:
    yield from serve(tmp_path, db)


def inventory(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(INVENTORY)
    document.update(changes)
    return document


def post(stack: Stack, document: Any) -> httpx.Response:
    return stack.api.post("/v1/continue_inspection", json=document)


def counts(db: Database) -> tuple[int, int, int, int]:
    with db.session() as session:
        return tuple(session.scalar(select(func.count()).select_from(table))  # type: ignore[return-value]
                     for table in (Node, Port, NodeInventory, NodeHistory))


def add_node(db: Database, state: str, mac: str = BOOT_MAC, **values: Any) -> Node:
    values.setdefault("driver", "fake-hardware")
    node = Node(provision_state=state, properties={"cpus": 99, "memory_mb": 1}, **values)
    with db.session() as session:
        session.add(node)
        session.flush()
        session.add(Port(address=mac, node_id=node.id, pxe_enabled=True))
    return node


def show(stack: Stack, uuid: str) -> dict[str, Any]:
    response = stack.api.get(f"/v1/nodes/{uuid}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def history(db: Database, uuid: str) -> list[tuple[str, str, str]]:
    with db.session() as session:
        rows = session.execute(select(NodeHistory.event_type, NodeHistory.severity,
                                      NodeHistory.event).join(Node)
                               .where(Node.uuid == uuid).order_by(NodeHistory.id))
        return [tuple(row) for row in rows]  # type: ignore[misc]


# -- an unknown machine --------------------------------------------------------------------


def test_an_unknown_machine_becomes_a_node_in_enroll_shaped_by_the_rules(
        stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    answer = post(stack, {"inventory": inventory(), "logs": "ignored plugin data"})
    assert answer.status_code == 202, answer.text
    created = answer.json()
    assert set(created) == {"uuid", "created", "provision_state"}
    assert created["created"] is True and created["provision_state"] == "enroll"

    node = show(stack, created["uuid"])
    assert node["provision_state"] == "enroll" and node["target_provision_state"] is None
    assert node["name"] == "b12-525400123456" and node["driver"] == "ipmi"
    assert node["resource_class"] == "classroom-pc"
    assert node["extra"] == {"labels": {"room": "B12"}}
    assert node["driver_info"] == {"ipmi_address": "10.0.0.9", "ipmi_username": "admin",
                                   "ipmi_password": "******"}
    assert node["properties"] == {"capabilities": "boot_mode:bios", "cpus": 2,
                                  "cpu_arch": "x86_64", "memory_mb": 4096, "local_gb": 9}
    assert node["power_interface"] == "ipmi" and node["deploy_interface"] == "direct"
    ports = stack.api.get(f"/v1/nodes/{created['uuid']}/ports/detail").json()["ports"]
    assert {p["address"]: p["pxe_enabled"] for p in ports} == {BOOT_MAC: True, OTHER_MAC: False}
    stored = stack.api.get(f"/v1/nodes/{created['uuid']}/inventory").json()
    assert stored == {"inventory": inventory(), "plugin_data": {}}
    events = history(stack.db, created["uuid"])
    assert [event_type for event_type, _, _ in events] == ["introspection", "discovered"]
    assert "rules applied: classroom B12; driver ipmi" in events[-1][2]
    assert PASSWORD not in caplog.text and PASSWORD not in answer.text


def test_the_same_machine_again_updates_its_node_and_makes_no_second_one(stack: Stack) -> None:
    first = post(stack, {"inventory": inventory()}).json()
    before = counts(stack.db)
    again = post(stack, {"inventory": inventory(cpu={"count": 8, "architecture": "x86_64"})})
    assert again.status_code == 202, again.text
    assert again.json() == {"uuid": first["uuid"], "created": False,
                            "provision_state": "enroll"}
    nodes, ports, inventories, _ = counts(stack.db)
    assert (nodes, ports, inventories) == before[:3]
    assert show(stack, first["uuid"])["properties"]["cpus"] == 8
    assert history(stack.db, first["uuid"])[-1][2].startswith("Discovered again")


def test_repeating_the_same_inventory_records_nothing_more(stack: Stack) -> None:
    assert post(stack, {"inventory": inventory()}).status_code == 202
    before = counts(stack.db)
    for _ in range(5):
        assert post(stack, {"inventory": inventory()}).status_code == 202
    assert counts(stack.db) == before  # no history event per post: no growth without bound


@pytest.mark.parametrize("state", ["enroll", "manageable", "available", "inspect failed"])
def test_a_known_mac_of_an_operators_node_is_refused_and_changes_nothing(
        stack: Stack, state: str, caplog: pytest.LogCaptureFixture) -> None:
    # Knowing a MAC must not let an anonymous caller rewrite an operator's node (only nodes in
    # inspect wait, or enrolled by discovery and never managed, take an inventory).
    node = add_node(stack.db, state, mac=OTHER_MAC, driver_info={"keep": "me"})
    before = counts(stack.db)
    answer = post(stack, {"inventory": inventory()})
    assert answer.status_code == 409, answer.text
    assert "already known as a node that discovery does not change" in fault(answer)
    assert node.uuid not in answer.text and state not in fault(answer)
    assert counts(stack.db) == before
    shown = show(stack, node.uuid)
    assert shown["properties"] == {"cpus": 99, "memory_mb": 1}
    assert shown["driver_info"] == {"keep": "me"}
    assert node.uuid in caplog.text  # the detail is logged


def test_a_discovered_node_is_left_alone_once_an_operator_managed_it(stack: Stack) -> None:
    created = post(stack, {"inventory": inventory(interfaces=[
        {"name": "eth0", "mac_address": "aa:bb:cc:00:00:07"}], boot={})}).json()
    uuid = created["uuid"]
    assert show(stack, uuid)["driver_internal_info"] == {"discovered": True}
    managed = stack.api.put(f"/v1/nodes/{uuid}/states/provision", json={"target": "manage"})
    assert managed.status_code == 202, managed.text
    wait_for_state(stack, uuid, "manageable")
    assert "discovered" not in show(stack, uuid)["driver_internal_info"]
    answer = post(stack, {"inventory": inventory(interfaces=[
        {"name": "eth0", "mac_address": "aa:bb:cc:00:00:07"}], boot={},
        cpu={"count": 64, "architecture": "x86_64"})})
    assert answer.status_code == 409, answer.text
    assert show(stack, uuid)["properties"]["cpus"] == 2


def wait_for_state(stack: Stack, uuid: str, state: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while show(stack, uuid)["provision_state"] != state:
        assert time.monotonic() < deadline, show(stack, uuid)
        time.sleep(0.05)


def test_power_sync_leaves_discovered_nodes_alone_until_managed(stack: Stack) -> None:
    # fake-hardware (no rule matches this MAC): nothing leaves the machine even if it fails.
    created = post(stack, {"inventory": inventory(interfaces=[
        {"name": "eth0", "mac_address": "aa:bb:cc:00:00:08"}], boot={})}).json()
    operators = add_node(stack.db, "enroll", mac="aa:bb:cc:00:00:09")
    assert stack.manager is not None
    periodic = PeriodicTasks(stack.manager)
    # No node in enroll is read (Ironic's SYNC_EXCLUDED_STATES): the operator's is read once
    # it is managed, as the discovered one.
    assert periodic.sync_power_states().nodes == 0
    assert show(stack, created["uuid"])["power_state"] is None
    stack.api.put(f"/v1/nodes/{created['uuid']}/states/provision", json={"target": "manage"})
    wait_for_state(stack, created["uuid"], "manageable")
    assert periodic.sync_power_states().nodes == 1
    stack.api.put(f"/v1/nodes/{operators.uuid}/states/provision", json={"target": "manage"})
    wait_for_state(stack, operators.uuid, "manageable")
    assert periodic.sync_power_states().nodes == 2


def test_a_known_bmc_address_finds_its_node_only_in_inspect_wait(stack: Stack) -> None:
    node = add_node(stack.db, "inspect wait", mac="52:54:00:99:99:99", driver="redfish",
                    driver_info={"redfish_address": "https://[FD00::9]:8000"})
    answer = post(stack, {"inventory": inventory(bmc_address="fd00::9")})
    assert answer.status_code == 202, answer.text
    assert answer.json()["uuid"] == node.uuid and answer.json()["created"] is False
    assert answer.json()["provision_state"] == "manageable"


def test_a_bmc_address_of_an_idle_node_is_not_a_match(stack: Stack) -> None:
    node = add_node(stack.db, "manageable", mac="52:54:00:99:99:99", driver="redfish",
                    driver_info={"redfish_address": "https://10.9.9.9:8000"})
    answer = post(stack, {"inventory": inventory(bmc_address="10.9.9.9")})
    assert answer.status_code == 202, answer.text
    assert answer.json()["uuid"] != node.uuid and answer.json()["created"] is True
    assert show(stack, node.uuid)["properties"] == {"cpus": 99, "memory_mb": 1}


def test_an_inventory_in_inspect_wait_ends_the_inspection(stack: Stack) -> None:
    node = add_node(stack.db, "inspect wait", driver_internal_info={
        "agent_secret_token": "t" * 43, "agent_url": "http://192.0.2.7:9999"})
    answer = post(stack, {"inventory": inventory()})
    assert answer.status_code == 202, answer.text
    assert answer.json()["provision_state"] == "manageable"
    shown = show(stack, node.uuid)
    assert shown["provision_state"] == "manageable" and shown["target_provision_state"] is None
    assert shown["inspection_finished_at"] is not None
    assert "agent_url" not in shown["driver_internal_info"]
    assert "agent_secret_token" not in shown["driver_internal_info"]


@pytest.mark.parametrize("state", ["active", "deploying", "wait call-back", "clean wait",
                                   "cleaning", "verifying", "deploy failed", "rescue"])
def test_a_busy_or_deployed_node_refuses_with_409_and_nothing_changes(
        stack: Stack, state: str) -> None:
    node = add_node(stack.db, state)
    before = counts(stack.db)
    answer = post(stack, {"inventory": inventory()})
    assert answer.status_code == 409, answer.text
    assert "discovery does not change" in fault(answer) and state not in fault(answer)
    assert counts(stack.db) == before
    assert show(stack, node.uuid)["properties"] == {"cpus": 99, "memory_mb": 1}


def test_a_locked_node_is_503_so_that_the_agent_retries(stack: Stack,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    node = add_node(stack.db, "inspect wait")
    locks.acquire(stack.db, node.id, node.uuid, "another-conductor", 60)
    answer = post(stack, {"inventory": inventory()})
    assert answer.status_code == 503, answer.text
    assert "another-conductor" not in answer.text and node.uuid not in answer.text
    assert "retry later" in fault(answer)
    assert "locked by host another-conductor" in caplog.text  # for the operator
    locks.release(stack.db, node.id, "another-conductor")
    assert post(stack, {"inventory": inventory()}).status_code == 202


def test_macs_of_two_nodes_are_a_conflict(stack: Stack) -> None:
    first = add_node(stack.db, "enroll", mac=BOOT_MAC)
    second = add_node(stack.db, "enroll", mac=OTHER_MAC)
    answer = post(stack, {"inventory": inventory()})
    assert answer.status_code == 409
    assert first.uuid not in answer.text and second.uuid not in answer.text
    assert "belong to several nodes" in fault(answer)


def test_a_name_the_rules_give_that_is_taken_is_dropped_with_a_warning(stack: Stack) -> None:
    add_node(stack.db, "enroll", mac="52:54:00:99:99:99", name="b12-525400123456")
    answer = post(stack, {"inventory": inventory()})
    assert answer.status_code == 202, answer.text
    assert show(stack, answer.json()["uuid"])["name"] is None
    assert history(stack.db, answer.json()["uuid"])[-1][:2] == ("discovered", "WARNING")


# -- refusals: nothing written --------------------------------------------------------------

DEEP: dict[str, Any] = {}
_level = DEEP
for _ in range(70):
    _level["x"] = {}
    _level = _level["x"]


@pytest.mark.parametrize(("document", "message"), [
    ({"cpu": {}}, 'expected {"inventory": {...}}'),
    ({"inventory": "text"}, "the agent's inventory is malformed: expected an object"),
    ({"inventory": inventory(cpu={"count": -1, "architecture": "x86_64"})},
     "cpu.count must be a whole number"),
    ({"inventory": inventory(disks=[{"name": "/dev/vda"}])}, "size of disk /dev/vda"),
    ({"inventory": inventory(interfaces="eth0")}, '"interfaces" must be a list'),
    ({"inventory": inventory(interfaces=[{"name": "eth0"}])}, "no interface with a MAC"),
    ({"inventory": inventory(interfaces=[{"mac_address": f"52:54:00:00:{i >> 8:02x}:"
                                                         f"{i & 255:02x}"}
                                         for i in range(129)])}, "at most 128"),
    ({"inventory": inventory(extra=DEEP)}, "nested more than 64 levels"),
    ({"inventory": inventory(disks=[{"name": f"/dev/sd{i}", "size": GiB}
                                    for i in range(257)])}, "257 disks; at most 256"),
])
def test_a_malformed_inventory_is_400_with_the_reason_and_writes_nothing(
        stack: Stack, document: Any, message: str) -> None:
    before = counts(stack.db)
    answer = post(stack, document)
    assert answer.status_code == 400, answer.text
    assert message in fault(answer), answer.text
    assert counts(stack.db) == before == (0, 0, 0, 0)


def test_with_discovery_off_inventories_are_refused(tmp_path: Path, db: Database) -> None:
    for stack in serve(tmp_path, db, discovery={"enabled": False}):
        answer = post(stack, {"inventory": inventory()})
        assert answer.status_code == 403 and "Discovery is off" in answer.text
        assert counts(db) == (0, 0, 0, 0)


def test_an_inventory_over_the_body_limit_is_413(tmp_path: Path, db: Database) -> None:
    for stack in serve(tmp_path, db, api={"max_request_body_bytes": 4096}):
        padded = inventory(padding="x" * 5000)
        answer = post(stack, {"inventory": padded})
        assert answer.status_code == 413 and counts(db) == (0, 0, 0, 0)
        assert post(stack, {"inventory": inventory()}).status_code == 202


def test_the_endpoint_is_public_under_http_basic(tmp_path: Path, db: Database) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"admin": "pw"})
    for stack in serve(
        tmp_path,
        db,
        auth={"strategy": "http_basic", "htpasswd_file": htpasswd},
    ):
        assert stack.api.get("/v1/nodes").status_code == 401
        answer = post(stack, {"inventory": inventory()})
        assert answer.status_code == 202, answer.text


# -- checked at start -----------------------------------------------------------------------


def test_the_api_refuses_to_start_with_bad_rules_or_a_disabled_default_driver(
        tmp_path: Path, db: Database) -> None:
    settings = settings_for(tmp_path)
    assert settings.discovery.rules_file is not None
    settings.discovery.rules_file.write_text("rules:\n  - set: {driver: idrac}\n")
    drivers = Drivers(settings)
    with pytest.raises(RulesError, match=r"rules\.yaml, rule 1, line 2: set\.driver"):
        create_app(settings, db, ConductorManager(db, settings, drivers), Membership(
            db, settings))
    settings = settings_for(
        tmp_path,
        discovery={"driver": "wol"},
        drivers={"enabled_hardware_types": ["fake-hardware", "ipmi"]},
    )
    drivers = Drivers(settings)
    with pytest.raises(RulesError, match="ENCLUME_DISCOVERY_DRIVER 'wol' is not an enabled"):
        create_app(settings, db, ConductorManager(db, settings, drivers), Membership(
            db, settings))


def test_a_rules_file_with_passwords_readable_by_others_is_warned_about(
        tmp_path: Path, db: Database, caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_for(tmp_path)
    assert settings.discovery.rules_file is not None
    settings.discovery.rules_file.chmod(0o644)
    drivers = Drivers(settings)
    create_app(settings, db, ConductorManager(db, settings, drivers), Membership(db, settings))
    assert "holds secrets (ipmi_password)" in caplog.text and "chmod 600" in caplog.text
    assert PASSWORD not in caplog.text
    assert not settings.discovery.rules_file.stat().st_mode & stat.S_IWOTH


# -- over RPC (cluster mode) ---------------------------------------------------------------


def test_discovery_over_rpc_enrolls_at_the_owner_of_the_new_uuid(tmp_path: Path,
                                                                 db: Database) -> None:
    settings = settings_for(tmp_path, rpc={"secret": "rpc-secret-for-tests"})
    drivers = Drivers(settings)
    sock = bound_socket()
    manager = ConductorManager(db, settings, drivers, Membership(db, settings),
                               rpc_address=url_of(sock))
    with serving(server_app(manager, "rpc-secret-for-tests", services=[manager]), sock):
        membership = Membership(db, settings)
        client = RpcClient(db, settings, membership)
        app = create_app(settings, db, client, membership)
        try:
            with serving(app) as url, httpx.Client(base_url=url, timeout=10,
                                                   headers=HEADERS) as api:
                stack = Stack(api, db)
                created = post(stack, {"inventory": inventory()})
                assert created.status_code == 202, created.text
                assert created.json()["created"] is True
                updated = post(stack, {"inventory": inventory()})
                assert updated.json() == {**created.json(), "created": False}
                busy = add_node(db, "active", mac="52:54:00:77:77:77")
                refused = post(stack, {"inventory": inventory(interfaces=[
                    {"name": "eth0", "mac_address": "52:54:00:77:77:77"}])})
                assert refused.status_code == 409 and busy.uuid not in refused.text
        finally:
            client.close()
    with db.session() as session:
        conductor = session.scalar(select(NodeHistory.conductor)
                                   .where(NodeHistory.event_type == "discovered"))
    assert conductor == "conductor-1"


def test_discovered_nodes_waiting_in_enroll_are_capped(tmp_path: Path, db: Database,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    for stack in serve(tmp_path, db, discovery={"max_enroll_nodes": 2}):
        for last in range(2):
            created = post(stack, {"inventory": inventory(interfaces=[
                {"name": "eth0", "mac_address": f"aa:bb:cc:00:01:0{last}"}], boot={})})
            assert created.status_code == 202, created.text
        before = counts(db)
        third = post(stack, {"inventory": inventory(interfaces=[
            {"name": "eth0", "mac_address": "aa:bb:cc:00:01:09"}], boot={})})
        assert third.status_code == 503, third.text
        assert "ENCLUME_DISCOVERY_MAX_ENROLL_NODES" in fault(third)
        assert counts(db) == before
        assert "2 discovered nodes wait in enroll" in caplog.text
        # Known machines are still updated; once an operator takes one on, room again.
        again = post(stack, {"inventory": inventory(interfaces=[
            {"name": "eth0", "mac_address": "aa:bb:cc:00:01:00"}], boot={},
            cpu={"count": 4, "architecture": "x86_64"})})
        assert again.status_code == 202, again.text
        uuid = again.json()["uuid"]
        stack.api.put(f"/v1/nodes/{uuid}/states/provision", json={"target": "manage"})
        wait_for_state(stack, uuid, "manageable")
        assert post(stack, {"inventory": inventory(interfaces=[
            {"name": "eth0", "mac_address": "aa:bb:cc:00:01:09"}], boot={})}).status_code == 202


# -- inspection rules (API 1.96) -------------------------------------------------------------


def add_failing_rule(db: Database) -> None:
    from services.common.rule_models import InspectionRule

    with db.session() as session:
        session.add(InspectionRule(priority=5, conditions=[
            {"op": "is-true", "args": {"value": True}}], actions=[
            {"op": "fail", "args": {"msg": "not in this room"}}]))


def test_a_failing_inspection_rule_fails_the_waiting_inspection(stack: Stack) -> None:
    node = add_node(stack.db, "inspect wait")
    add_failing_rule(stack.db)
    answer = post(stack, {"inventory": inventory()})
    assert answer.status_code == 202, answer.text
    shown = show(stack, node.uuid)
    assert shown["provision_state"] == "inspect failed"
    assert "Failed to inspect hardware. Reason: not in this room" in shown["last_error"]


def test_a_failing_inspection_rule_enrolls_nothing(stack: Stack) -> None:
    add_failing_rule(stack.db)
    before = counts(stack.db)
    assert post(stack, {"inventory": inventory()}).status_code == 409
    assert counts(stack.db) == before
