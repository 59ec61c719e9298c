"""Inspection rules (API 1.96) run when an inspection's inventory is applied, as Ironic's
engine runs them: on a fake-hardware node in a real SQLite database, through
``inventory.apply`` (what the agent inspect interface and discovery call). The rules are
rows as the API stores them (tests/unit/test_runbooks_inspection_rules.py checks the API)."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import delete, select

from services.common.db import Database, upgrade_schema
from services.common.inventory import GIB
from services.common.models import Node, NodeHistory, NodeInventory, Port
from services.common.rule_models import InspectionRule
from services.conductor.task import Task
from services.drivers.inspect import inventory
from services.drivers.inspect.rule_actions import RuleFailed
from services.drivers.inspect.rule_arguments import RuleExecutionError
from tests.support.json_http import send_json, serving

PORT_UUID = "6b3d4a8c-1111-4f5e-9a0b-00000000aa01"


def agent_inventory() -> dict[str, Any]:
    return {
        "cpu": {"count": 4, "architecture": "x86_64", "model_name": "QEMU"},
        "memory": {"total_bytes": 8 * GIB, "physical_mb": 8192},
        "disks": [{"name": "/dev/vda", "size": 50 * GIB}],
        "interfaces": [{"name": "eth0", "mac_address": "52:54:00:00:00:01",
                        "ipv4_address": "192.0.2.10"},
                       {"name": "eth1", "mac_address": "52:54:00:00:00:02"}],
        "bmc_address": "192.0.2.200", "bmc_password": "hunter2"}


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Database:
    url = f"sqlite:///{tmp_path_factory.mktemp('rules') / 'rules.sqlite'}"
    upgrade_schema(url)  # once: the migrations take seconds on a loaded machine
    return Database(url)


@pytest.fixture
def db(database: Database) -> Iterator[Database]:
    """The module's database, emptied of what a test wrote (rules apply to every node)."""
    yield database
    with database.session() as session:
        for model in (NodeHistory, NodeInventory, Port, Node, InspectionRule):
            session.execute(delete(model))


def inspect_with(db: Database, rules: list[dict[str, Any]],
                 found: dict[str, Any] | None = None) -> int:
    """Store the rules, then apply an inventory to a new fake-hardware node; its id."""
    with db.session() as session:
        for rule in rules:
            session.add(InspectionRule(**rule))
        node = Node(driver="fake-hardware", properties={"capabilities": "boot_mode:uefi"},
                    driver_info={"ipmi_address": "192.0.2.200"})
        session.add(node)
        session.flush()
        if session.scalar(select(Port).where(Port.uuid == PORT_UUID)) is None:
            session.add(Port(uuid=PORT_UUID, address="52:54:00:00:00:01", node_id=node.id))
            session.flush()
        inventory.apply(Task(session, node, None, "c"),  # type: ignore[arg-type]
                        found or agent_inventory())
        return node.id


def node_of(db: Database, node_id: int) -> Node:
    with db.session() as session:
        node = session.get(Node, node_id)
        assert node is not None
        session.expunge(node)
        return node


def test_rules_run_by_priority_when_their_conditions_hold(db: Database) -> None:
    def extend(word: str) -> dict[str, Any]:
        return {"op": "extend-attribute", "args": {"path": "extra/order", "value": word}}

    node_id = inspect_with(db, [
        {"priority": 10, "actions": [extend("low")]},
        {"priority": 90, "actions": [extend("high")], "conditions": [
            {"op": "eq", "args": {"values": ["{inventory[cpu][architecture]}", "x86_64"]}},
            {"op": "in-net", "args": {"address": "{inventory[bmc_address]}",
                                      "subnet": "192.0.2.0/24"}}]},
        {"priority": 50, "actions": [extend("never")], "conditions": [
            {"op": "!matches", "args": {"value": "{inventory[cpu][model_name]}",
                                        "regex": "Q.MU"}}]},
        {"priority": 50, "actions": [extend("middle")], "conditions": [
            {"op": "eq", "args": {"values": ["{inventory[cpu][count]}", "4"]}},
            {"op": "is-empty", "args": {"value": "{inventory[no_such_key]}"}}]},
        {"priority": 40, "actions": [extend("not-a-number")], "conditions": [
            # interpolated, it is a string: 4 is not "4" (Ironic's force_strings exists for it)
            {"op": "eq", "args": {"values": ["{inventory[cpu][count]}", 4]}}]},
    ])
    assert node_of(db, node_id).extra == {"order": ["high", "middle", "low"]}


def test_actions_change_the_node_its_ports_and_the_plugin_data(db: Database) -> None:
    node_id = inspect_with(db, [{"priority": 1, "actions": [
        {"op": "set-attribute", "args": {"path": "properties.cpu_model",
                                         "value": "{inventory[cpu][model_name]}"}},
        {"op": "set-attribute", "args": {"path": "driver_info/bmc_seen",
                                         "value": "{node.driver_info[ipmi_address]}"}},
        {"op": "del-attribute", "args": {"path": "driver_info/ipmi_address"}},
        {"op": "set-capability", "args": {"name": "cpu_vt", "value": "true"}},
        {"op": "add-trait", "args": {"name": "CUSTOM_INSPECTED"}},
        {"op": "add-trait", "args": ["CUSTOM_GONE"]},  # the deprecated list form
        {"op": "remove-trait", "args": {"name": "CUSTOM_GONE"}},
        {"op": "set-port-attribute", "args": {"port_id": PORT_UUID,
                                              "path": "physical_network", "value": "lab"}},
        {"op": "set-port-attribute", "args": {
            "port_id": PORT_UUID, "path": "local_link_connection/switch_id",
            "value": "aa:bb:cc:dd:ee:ff"}},
        {"op": "set-plugin-data", "args": {"path": "seen.bmc",
                                           "value": "{inventory[bmc_password]}"}},
        {"op": "extend-plugin-data", "args": {"path": "tags", "value": "a", "unique": True}},
        {"op": "extend-plugin-data", "args": {"path": "tags", "value": "a", "unique": True}},
        {"op": "log", "args": {"msg": "inspected {node.uuid}", "level": "warning"}},
    ]}])
    node = node_of(db, node_id)
    assert node.properties["cpu_model"] == "QEMU" and node.properties["cpus"] == 4
    assert node.driver_info == {"bmc_seen": "192.0.2.200"}
    assert node.properties["capabilities"] == "boot_mode:uefi,cpu_vt:true"
    assert node.traits == ["CUSTOM_INSPECTED"]
    with db.session() as session:
        port = session.scalar(select(Port).where(Port.uuid == PORT_UUID))
        assert port is not None and port.physical_network == "lab"
        assert port.local_link_connection == {"switch_id": "aa:bb:cc:dd:ee:ff"}
        kept = session.scalar(select(NodeInventory).where(NodeInventory.node_id == node_id))
        assert kept is not None
        # Rules see the BMC password masked; the stored inventory keeps what the agent sent.
        assert kept.plugin_data == {"seen": {"bmc": "***"}, "tags": ["a"]}
        assert kept.inventory_data["bmc_password"] == "hunter2"


def test_loops_over_items_in_conditions_and_actions(db: Database) -> None:
    names = [{"name": "eth0"}, {"name": "eth1"}, {"name": "ib0"}]

    def looped(multiple: str) -> dict[str, Any]:
        return {"op": "matches", "args": {"value": "{item[name]}", "regex": "eth."},
                "loop": names, "multiple": multiple}

    node_id = inspect_with(db, [
        {"priority": 5, "conditions": [looped("any"), looped("first")], "actions": [
            {"op": "set-attribute", "args": {"path": "{item[path]}", "value": "{item[value]}"},
             "loop": [{"path": "extra/cpus", "value": "{inventory[cpu][count]}"},
                      {"path": "extra/arch", "value": "{inventory[cpu][architecture]}"}]}]},
        {"priority": 4, "conditions": [looped("all")], "actions": [
            {"op": "set-attribute", "args": {"path": "extra/all", "value": True}}]},
        {"priority": 3, "conditions": [looped("last")], "actions": [
            {"op": "set-attribute", "args": {"path": "extra/last", "value": True}}]},
        {"priority": 2, "conditions": [
            {"op": "eq", "args": {"values": ["{item}", 4]}, "loop": [4]}], "actions": [
            # in a loop, numbers compare as strings
            {"op": "set-attribute", "args": {"path": "extra/forced", "value": True}}]},
    ])
    assert node_of(db, node_id).extra == {"cpus": "4", "arch": "x86_64", "forced": True}


def test_a_fail_action_fails_the_inspection_with_its_message(db: Database) -> None:
    # fail's message is not interpolated (Ironic's FailAction formats nothing)
    with pytest.raises(RuleFailed, match=r"Reason: no BMC on \{inventory\[bmc_address\]\}$"):
        inspect_with(db, [{"priority": 1, "actions": [
            {"op": "fail", "args": {"msg": "no BMC on {inventory[bmc_address]}"}}]}])


@pytest.mark.parametrize("action", [
    {"op": "set-attribute", "args": {"path": "provision_state", "value": "active"}},
    {"op": "set-attribute", "args": {"path": "properties", "value": "not an object"}},
    {"op": "extend-attribute", "args": {"path": "properties/cpus", "value": 1}},
    {"op": "set-port-attribute", "args": {"port_id": "no-such-port", "path": "extra/x",
                                          "value": 1}},
    {"op": "log", "args": {"msg": "x", "level": "loud"}},
    {"op": "add-trait", "args": {"name": "not a trait"}},
], ids=["state", "not-object", "not-list", "no-port", "log-level", "bad-trait"])
def test_an_action_that_cannot_run_fails_naming_its_rule(db: Database,
                                                          action: dict[str, Any]) -> None:
    rule = {"uuid": "0c4f3a3e-2222-4f5e-9a0b-000000000001", "priority": 1, "actions": [action]}
    with pytest.raises(RuleExecutionError, match=f"Failed to apply rule {rule['uuid']}"):
        inspect_with(db, [rule])


def test_api_call_gets_its_url_and_fails_on_an_error(db: Database) -> None:
    paths: list[str] = []

    class Hook(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            send_json(self, 200 if self.path.startswith("/hook/") else 404, {})

        def log_message(self, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    with serving(server):
        node_id = inspect_with(db, [{"priority": 1, "actions": [
            {"op": "api-call", "args": {"url": url + "/hook/{node.uuid}", "timeout": 5,
                                        "retries": 0}}]}])
        assert paths == [f"/hook/{node_of(db, node_id).uuid}"]
        with pytest.raises(RuleExecutionError, match=r"Request to .* failed"):
            inspect_with(db, [{"priority": 1, "actions": [
                {"op": "api-call", "args": {"url": f"{url}/missing", "retries": 0}}]}])
