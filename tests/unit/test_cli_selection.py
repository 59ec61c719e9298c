"""Selecting nodes by label (the pure parts), ``node set`` on selected nodes, ``node wait``'s
judge and the ``node inventory`` summary."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from services.cli.enclume import selection
from services.cli.enclume.node_inventory import summary
from services.cli.enclume.nodes import changed_fields, changed_rows
from services.cli.enclume.patches import set_operations
from services.cli.enclume.progress import settled_judge


def test_a_selector_reads_like_the_command_line() -> None:
    chosen = selection.selector(["room=B12", "rack=a=b"], None)
    assert chosen.labels == {"room": "B12", "rack": "a=b"}
    assert str(chosen) == "--label room=B12 --label rack=a=b"
    assert str(selection.selector(["room=B12"], "deploy failed", "--match-label")) == \
        "--match-label room=B12 --provision-state 'deploy failed'"
    assert not selection.selector(None, None)
    assert selection.describe_selection(chosen, ["pc-01", "pc-02"]) == \
        "Selected 2 node(s) with --label room=B12 --label rack=a=b: pc-01, pc-02"


@pytest.mark.parametrize(("labels", "state", "message"), [
    (["room"], None, "KEY=VALUE"),
    (None, "active", "--provision-state narrows a selection by --label"),
])
def test_a_bad_selector_is_a_usage_error(labels: list[str] | None, state: str | None,
                                         message: str) -> None:
    with pytest.raises(typer.BadParameter, match=message):
        selection.selector(labels, state)


def test_names_or_a_selector_not_both_nor_neither() -> None:
    room = selection.selector(["room=B12"], None)
    selection.check_exclusive(["pc-01"], selection.Selector())
    selection.check_exclusive(None, room)
    with pytest.raises(typer.BadParameter, match="not both"):
        selection.check_exclusive(["pc-01"], room)
    with pytest.raises(typer.BadParameter, match="give node names, or --label"):
        selection.check_exclusive([], selection.Selector())


def test_resolve_refuses_usage_errors_before_reading_the_configuration() -> None:
    from services.cli.enclume.context import Cli

    state = Cli(flags={"cli_config": "/nonexistent/cli.yaml"})  # reading it would fail
    with pytest.raises(typer.BadParameter):
        selection.resolve(state, ["pc-01"], ["room=B12"], None)
    assert selection.resolve(state, ["pc-01", "pc-02"], None, None) == ["pc-01", "pc-02"]
    assert state._client is None and state._config is None


def test_settled_judge_waits_for_busy_nodes_only() -> None:
    judge = settled_judge()

    def node(state: str, target: str | None) -> dict[str, Any]:
        return {"provision_state": state, "target_provision_state": target}

    assert judge(node("deploying", "active")) is None
    assert judge(node("wait call-back", "active")) is None
    assert judge(node("clean wait", "available")) is None
    assert judge(node("active", None)) is True
    assert judge(node("enroll", None)) is True
    assert judge(node("deploy failed", "active")) is False
    assert judge(node("error", None)) is False


def test_node_set_on_selected_nodes_shows_the_fields_it_changed() -> None:
    operations = set_operations({"owner": "lab"}, {"instance_info": {"image_source": "u",
                                                                     "image_checksum": "c"}})
    assert changed_fields(operations) == ["owner", "instance_info"]
    nodes = [{"uuid": "u1", "name": "pc-01", "owner": "lab", "instance_info": {"a": 1}},
             {"uuid": "u2", "name": None, "owner": "lab", "instance_info": {}}]
    assert changed_rows(nodes, ["instance_info"]) == [
        {"node": "pc-01", "instance_info": {"a": 1}}, {"node": "u2", "instance_info": {}}]


def test_inventory_summary() -> None:
    inventory = {
        "cpu": {"count": 2, "architecture": "x86_64", "model_name": None},
        "memory": {"total_bytes": 4 * 1024**3},
        "disks": [{"name": "/dev/vda", "size": 20 * 1024**3}, {"name": "/dev/vdb"}],
        "interfaces": [{"name": "eth0", "mac_address": "52:54:00:00:00:01"},
                       {"name": "eth1", "mac_address": "52:54:00:00:00:02",
                        "ipv4_address": "10.0.0.2"}],
        "system_vendor": {"manufacturer": None, "product_name": None, "serial_number": None},
    }
    assert summary(inventory) == {
        "cpus": "2 x86_64", "memory": "4096 MiB",
        "disks": "/dev/vda 20 GiB; /dev/vdb size unknown",
        "interfaces": "eth0 52:54:00:00:00:01; eth1 52:54:00:00:00:02 10.0.0.2",
        "system": "unknown", "boot": "unknown"}
    assert summary({}) == {"cpus": "unknown", "memory": "unknown", "disks": "none",
                           "interfaces": "none", "system": "unknown", "boot": "unknown"}
