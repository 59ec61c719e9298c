"""The agent's lookup, heartbeats, token checks and its short commands and erasure."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_agent_harness import (
    MASK,
    POWER_ACTION_DELAY_S,
    FakeApi,
    MiB,
    RunningAgent,
    fake_api_fixture,  # noqa: F401 (the fake_api fixture)
    make_disk,
    run_tool,
    running_agent,
)
from tests.support.polling import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def disks(tmp_path: Path) -> list[Path]:
    return [make_disk(tmp_path / "disk-a.img", 48 * MiB), make_disk(tmp_path / "disk-b.img",
                                                                     32 * MiB)]


@pytest.fixture
def agent(fake_api: FakeApi, tmp_path: Path, disks: list[Path]) -> Iterator[RunningAgent]:
    with running_agent(fake_api, tmp_path, disks) as running:
        yield running


# --- lookup, heartbeat, token -------------------------------------------------------------


def test_lookup_gives_a_token_once_and_heartbeats_carry_it(agent: RunningAgent) -> None:
    assert len(agent.token) >= 32
    beat = agent.api.wait_heartbeat(agent.node)
    assert beat == {"callback_url": agent.url, "agent_token": agent.token,
                    "agent_version": beat["agent_version"]}
    count = len(agent.node.heartbeats)
    eventually(lambda: len(agent.node.heartbeats) >= count + 3, 30,
               "three more heartbeats (one every 0.2 s)")
    # a second lookup (anyone's) does not reveal the token
    url = f"{agent.api.url}/v1/lookup?addresses={agent.node.macs[0]}"
    with urllib.request.urlopen(url) as response:
        assert json.loads(response.read())["config"]["agent_token"] == MASK
    assert agent.token not in agent.logs()


def test_the_end_of_a_long_command_is_heartbeated_at_once(fake_api: FakeApi, tmp_path: Path,
                                                          disks: list[Path]) -> None:
    """As Ironic's agent, the end of a long command is told at once, not an interval later:
    with an hour between heartbeats, only that early heartbeat can arrive."""
    with running_agent(fake_api, tmp_path, disks,
                       extra=["--heartbeat-interval", "3600"]) as running:
        before = len(running.node.heartbeats)
        document = running.run("deploy.erase_devices_metadata")
        assert document["command_status"] == "SUCCEEDED", document
        eventually(lambda: len(running.node.heartbeats) > before,
                   what="a heartbeat after the command ended")


def test_commands_without_the_token_are_refused_and_do_nothing(agent: RunningAgent,
                                                                tmp_path: Path) -> None:
    status, answer = agent.command("standby.power_off", token=None)
    assert status == 401 and "X-Agent-Token" in answer["error"]
    status, answer = agent.command("standby.power_off", token="x" * 43)
    assert status == 403 and answer["error"] == "wrong agent token"
    status, answer = agent.request("GET", "/v1/commands/", token=None)
    assert status == 401
    status, answer = agent.request("GET", "/v1/commands/", token="")
    assert status == 401
    time.sleep(POWER_ACTION_DELAY_S + 0.5)
    assert not (tmp_path / "powered-off").exists()
    status, listing = agent.request("GET", "/v1/commands/")
    assert status == 200 and listing == {"commands": []}


def test_a_replayed_token_from_an_earlier_lookup_is_refused(agent: RunningAgent,
                                                            tmp_path: Path) -> None:
    old = agent.token
    agent.api.rotate(agent.node)  # the conductor prepared a new ramdisk boot
    # the agent's next heartbeat is refused (403), it looks up again and gets the new token
    deadline = time.monotonic() + 10
    while agent.node.token in (None, old) or not agent.node.heartbeats:
        assert time.monotonic() < deadline, agent.logs()
        time.sleep(0.05)
    assert 403 in agent.api.refused_heartbeats
    new = agent.node.token
    assert new != old
    status, answer = agent.command("standby.power_off", token=old)
    assert status == 403
    time.sleep(POWER_ACTION_DELAY_S + 0.5)
    assert not (tmp_path / "powered-off").exists()
    status, answer = agent.command("standby.sync", token=new)
    assert status == 200 and answer["command_status"] == "SUCCEEDED"


def test_an_agent_without_a_lookup_accepts_no_command(fake_api: FakeApi,
                                                      tmp_path: Path,
                                                      disks: list[Path]) -> None:
    with running_agent(fake_api, tmp_path, disks) as agent:
        agent.node.expecting_agent = False
        agent.api.rotate(agent.node)
        # refused heartbeat → new lookup → 404: the agent now holds no valid token
        deadline = time.monotonic() + 10
        while "lookup of" not in agent.logs():
            assert time.monotonic() < deadline, agent.logs()
            time.sleep(0.05)
        assert "no node in a state that expects an agent" in agent.logs()
        # the old token still is the agent's own until a new lookup succeeds; a random one is not
        status, _ = agent.command("standby.sync", token="y" * 43)
        assert status == 403


def test_a_lookup_that_found_nothing_is_retried(fake_api: FakeApi, tmp_path: Path,
                                                disks: list[Path]) -> None:
    # the node exists but is not yet waiting for an agent when the ramdisk boots
    original = fake_api.add_node

    def late_node(*macs: str):  # type: ignore[no-untyped-def]
        node = original(*macs)
        node.expecting_agent = False

        def wake() -> None:
            time.sleep(0.8)
            node.expecting_agent = True
        import threading
        threading.Thread(target=wake, daemon=True).start()
        return node

    fake_api.add_node = late_node  # type: ignore[method-assign]
    with running_agent(fake_api, tmp_path, disks) as agent:
        assert agent.node.lookups == 1
        assert "lookup of 52:54:00:12:34:56 failed: HTTP 404" in agent.logs()


def test_bad_requests_get_clear_errors(agent: RunningAgent) -> None:
    status, answer = agent.command("no.such_command")
    assert status == 400 and "unknown command 'no.such_command'" in answer["error"]
    assert "standby.write_image" in answer["error"]
    status, answer = agent.request("POST", "/v1/commands/", raw=b"{not json")
    assert status == 400 and answer["error"] == "the body is not valid JSON"
    status, answer = agent.request("POST", "/v1/commands/", body=[1, 2])
    assert status == 400
    status, answer = agent.request("POST", "/v1/commands/", body={"name": 5})
    assert status == 400
    status, answer = agent.request("GET", "/v1/commands/00000000-0000-0000-0000-000000000000")
    assert status == 404
    status, answer = agent.request("DELETE", "/v1/commands/")
    assert status == 405
    status, answer = agent.command("standby.sync", {"unexpected": 1})
    assert status == 400 and "takes no parameters" in answer["error"]


# --- short commands -----------------------------------------------------------------------


def test_inventory(agent: RunningAgent, disks: list[Path]) -> None:
    status, document = agent.command("inventory.get")
    assert status == 200 and document["command_status"] == "SUCCEEDED", document
    inventory = document["command_result"]["inventory"]
    assert inventory["cpu"]["count"] == os.cpu_count()
    assert inventory["cpu"]["architecture"] == "x86_64"
    assert inventory["cpu"]["model_name"]
    meminfo = Path("/proc/meminfo").read_text().split("\n")[0].split()
    assert inventory["memory"]["total_bytes"] == int(meminfo[1]) * 1024
    assert inventory["memory"]["physical_mb"] * MiB >= inventory["memory"]["total_bytes"]
    assert inventory["disks"] == [
        {"name": str(disks[0]), "size": 48 * MiB, "model": "file", "serial": None,
         "rotational": False},
        {"name": str(disks[1]), "size": 32 * MiB, "model": "file", "serial": None,
         "rotational": False}]
    names = {nic["name"]: nic for nic in inventory["interfaces"]}
    assert "lo" not in names
    for name, nic in names.items():
        assert nic["mac_address"] == Path(f"/sys/class/net/{name}/address").read_text().strip()
        assert isinstance(nic["has_carrier"], bool)
    assert inventory["boot"]["current_boot_mode"] in ("bios", "uefi")


def test_inspection_rules_run_on_the_agents_inventory(agent: RunningAgent, disks: list[Path],
                                                      tmp_path: Path) -> None:
    """The agent's real inventory, applied as an inspection applies it, with rules (API 1.96)
    reading it: a fake-hardware node on SQLite."""
    from services.common.db import Database, upgrade_schema
    from services.common.models import Node
    from services.common.rule_models import InspectionRule
    from services.conductor.task import Task
    from services.drivers.inspect import inventory as inspected

    status, document = agent.command("inventory.get")
    assert status == 200, document
    url = f"sqlite:///{tmp_path / 'rules.sqlite'}"
    upgrade_schema(url)
    db = Database(url)
    with db.session() as session:
        session.add_all([
            InspectionRule(priority=10, conditions=[
                {"op": "eq", "args": {"values": ["{inventory[cpu][count]}",
                                                 str(os.cpu_count())]}},
                {"op": "contains", "args": {"value": "{inventory[disks][0][model]}",
                                            "regex": "^fil"}},
                {"op": "is-false", "args": {"value": "{inventory[disks][1][rotational]}"}},
            ], actions=[
                {"op": "set-attribute", "args": {"path": "extra/first_disk",
                                                 "value": "{inventory[disks][0][name]}"}},
                {"op": "add-trait", "args": {"name": "CUSTOM_FILE_DISKS"}},
                # formatted twice in a loop: the item picks the disk
                {"op": "extend-attribute", "args": {
                    "path": "extra/sizes", "value": "{{inventory[disks][{item}][size]}}"},
                 "loop": [1, 0]}]),
            InspectionRule(priority=20, conditions=[
                {"op": "is-true", "args": {"value": "{inventory[disks][0][rotational]}"}}],
                actions=[{"op": "fail", "args": {"msg": "a spinning file"}}])])
        node = Node(driver="fake-hardware")
        session.add(node)
        session.flush()
        inspected.apply(Task(session, node, None, "c"),  # type: ignore[arg-type]
                        document["command_result"]["inventory"])
        assert node.extra == {"first_disk": str(disks[0]),
                              "sizes": [str(32 * MiB), str(48 * MiB)]}
        assert node.traits == ["CUSTOM_FILE_DISKS"]
        assert node.properties["cpus"] == os.cpu_count()


@pytest.mark.parametrize(("command", "marker"), [("standby.power_off", "powered-off"),
                                                 ("standby.reboot", "rebooted")])
def test_power_actions_run_after_the_answer(agent: RunningAgent, tmp_path: Path, command: str,
                                            marker: str) -> None:
    status, document = agent.command(command)
    assert status == 200 and document["command_status"] == "SUCCEEDED", document
    assert not (tmp_path / marker).exists(), "the machine must not go before it answered"
    deadline = time.monotonic() + 30
    while not (tmp_path / marker).exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_sync(agent: RunningAgent) -> None:
    status, document = agent.command("standby.sync")
    assert status == 200 and document["command_status"] == "SUCCEEDED"
    status, listing = agent.request("GET", "/v1/commands")
    assert [c["id"] for c in listing["commands"]] == [document["id"]]


def test_lockdown_answers_then_closes_the_api_stops_heartbeats_and_runs_its_command(
        agent: RunningAgent, tmp_path: Path) -> None:
    """Ironic's system.lockdown (a node with disable_power_off at the end of its deploy)."""
    status, document = agent.command("system.lockdown")
    assert status == 200 and document["command_status"] == "SUCCEEDED", document
    deadline = time.monotonic() + 30
    while not (tmp_path / "locked-down").exists():  # the harness's --lockdown-command
        assert time.monotonic() < deadline, agent.logs()
        time.sleep(0.05)
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        agent.request("GET", "/v1/commands/")
    beats = len(agent.node.heartbeats)
    time.sleep(1.0)  # five heartbeat intervals
    assert len(agent.node.heartbeats) == beats
    assert agent.process.poll() is None  # it stays until the machine reboots


def test_iscsi_export_refuses_bad_credentials_before_touching_the_kernel(
        agent: RunningAgent) -> None:
    status, answer = agent.command("iscsi.start_iscsi_target", {
        "iqn": "iqn.2024-01.org.enclume:node", "username": "u", "password": "short"})
    assert status == 400 and "password (CHAP)" in answer["error"]
    status, answer = agent.command("iscsi.start_iscsi_target", {
        "iqn": "not an iqn", "username": "u", "password": "p" * 16})
    assert status == 400 and "iqn must look like" in answer["error"]


# --- erasure ------------------------------------------------------------------------------


def _partitioned(disk: Path) -> None:
    run_tool("sfdisk", "--quiet", str(disk),
             stdin=b"label: gpt\nstart=2048, size=16384, type=L\nstart=18432, type=L\n")
    with disk.open("r+b") as handle:  # an ext4 superblock signature and data in each partition
        for start in (1 * MiB, 9 * MiB):
            handle.seek(start + 1024 + 0x38)
            handle.write(b"\x53\xef")
            handle.seek(start + 3 * MiB)
            handle.write(b"user data" * 1000)


def _read(disk: Path, offset: int, size: int) -> bytes:
    with disk.open("rb") as handle:
        handle.seek(offset)
        return handle.read(size)


def test_erase_metadata_wipes_tables_and_signatures_only(agent: RunningAgent,
                                                         disks: list[Path]) -> None:
    for disk in disks:
        _partitioned(disk)
    document = agent.run("deploy.erase_devices_metadata")
    assert document["command_status"] == "SUCCEEDED", document
    assert document["command_result"]["erased"] == {str(d): {"partitions": 2} for d in disks}
    for disk in disks:
        size = disk.stat().st_size
        assert _read(disk, 0, MiB) == bytes(MiB)  # MBR + primary GPT
        assert _read(disk, size - MiB, MiB) == bytes(MiB)  # backup GPT
        assert _read(disk, 9 * MiB, MiB) == bytes(MiB)  # second partition's superblock
        assert _read(disk, 4 * MiB, 9) == b"user data"  # the rest is left: fast, not secure
        assert _read(disk, 12 * MiB, 9) == b"user data"
        assert subprocess.run(["sfdisk", "--dump", str(disk)], capture_output=True).returncode


def test_erase_metadata_of_one_named_disk(agent: RunningAgent, disks: list[Path]) -> None:
    for disk in disks:
        _partitioned(disk)
    document = agent.run("deploy.erase_devices_metadata", {"disks": [str(disks[1])]})
    assert document["command_status"] == "SUCCEEDED", document
    assert _read(disks[0], 512, 8) == b"EFI PART"
    assert _read(disks[1], 512, 8) == bytes(8)


def test_full_erase_zeroes_every_byte(agent: RunningAgent, disks: list[Path]) -> None:
    for disk in disks:
        _partitioned(disk)
    document = agent.run("deploy.erase_devices")
    assert document["command_status"] == "SUCCEEDED", document
    total = sum(d.stat().st_size for d in disks)
    assert document["progress"] == {"done_bytes": total, "total_bytes": total}
    for disk in disks:
        assert disk.read_bytes() == bytes(disk.stat().st_size)
