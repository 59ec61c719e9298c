"""The session service's pieces: tokens and the power state they imply (on a real database),
a room's Wake-on-LAN address checks, and the script's own parts (stdlib only, efibootmgr)."""

from __future__ import annotations

import ast
import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

from services.classroom import fields
from services.common import session_service as ss
from services.common.db import Database, upgrade_schema
from services.common.exceptions import Invalid
from services.common.models import Node
from tests.support.session_service import SCRIPT, fake_efibootmgr, recorded

T0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
TIMEOUT = timedelta(seconds=60)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade_schema(url)
    return Database(url)


@pytest.fixture
def node_id(db: Database) -> int:
    with db.session() as session:
        node = Node(driver="wol", name="pc1")
        session.add(node)
        session.flush()
        return node.id


def test_only_the_last_token_is_taken_and_only_its_hash_is_kept(db: Database,
                                                                node_id: int) -> None:
    with db.session() as session:
        first = ss.issue_token(session, node_id, T0)
    with db.session() as session:
        row = ss.authenticate(session, node_id, first)
        assert row.token_hash == ss.token_hash(first) and first not in row.token_hash
        second = ss.issue_token(session, node_id, T0 + timedelta(hours=1))
    assert second != first and len(second) >= 40
    with db.session() as session:
        for wrong in (first, second + "x", ""):
            with pytest.raises(ss.BadToken):
                ss.authenticate(session, node_id, wrong)
        with pytest.raises(ss.BadToken):
            ss.authenticate(session, node_id + 1, second)
        assert ss.authenticate(session, node_id, second).node_id == node_id


def test_the_power_state_follows_heartbeats_and_delivered_commands(db: Database,
                                                                   node_id: int) -> None:
    with db.session() as session:
        ss.issue_token(session, node_id, T0)
        row = ss.find(session, node_id)
        assert row is not None and ss.status(row, T0, TIMEOUT) is None  # never heard of
        ss.heartbeat(row, T0 - timedelta(hours=2), T0)
        assert ss.status(row, T0 + timedelta(seconds=59), TIMEOUT) == ss.UP
        assert ss.status(row, T0 + timedelta(seconds=61), TIMEOUT) is None  # fell silent
        assert ss.take_command(row, T0) is None
        ss.request_command(row, ss.POWER_OFF, T0)
        ss.request_command(row, ss.REBOOT_TO_NETWORK, T0)  # replaces the unfetched one
        assert not ss.delivered(row, ss.REBOOT_TO_NETWORK, None)
        delivered_at = T0 + timedelta(seconds=1)
        assert ss.take_command(row, delivered_at) == ss.REBOOT_TO_NETWORK
        assert ss.take_command(row, delivered_at) is None  # once
        assert ss.delivered(row, ss.REBOOT_TO_NETWORK, None)
        assert not ss.delivered(row, ss.POWER_OFF, None)
        assert not ss.delivered(row, ss.REBOOT_TO_NETWORK, delivered_at)  # an earlier one
        assert ss.status(row, delivered_at, TIMEOUT) is None  # rebooting: unknown
        ss.heartbeat(row, T0, T0 + timedelta(seconds=30))  # back up
        assert ss.status(row, T0 + timedelta(seconds=30), TIMEOUT) == ss.UP
        ss.request_command(row, ss.POWER_OFF, T0 + timedelta(seconds=31))
        ss.take_command(row, T0 + timedelta(seconds=32))
        assert ss.status(row, T0 + timedelta(hours=5), TIMEOUT) == ss.OFF
        with pytest.raises(ValueError):
            ss.request_command(row, "format-disk", T0)


def test_a_rooms_wol_broadcast_lies_in_its_subnet() -> None:
    network = fields.subnet("10.12.0.0/16")
    assert str(network) == "10.12.0.0/16" and fields.subnet(None) is None
    assert fields.wol_broadcast("10.12.255.255", network) == "10.12.255.255"
    assert fields.wol_broadcast("10.12.3.255", network) == "10.12.3.255"  # a /24 of it
    assert fields.wol_broadcast(None, network) is None
    for bad in ("10.12.0.1/16", "10.12.0.0/31", "127.0.0.0/8", "224.0.0.0/4", "nope", 12,
                "fe80::/64"):
        with pytest.raises(Invalid, match="Invalid subnet"):
            fields.subnet(bad)
    for bad in ("10.13.255.255", "10.12.3.254", "10.12.0.0", "nope", 1):
        with pytest.raises(Invalid, match="Invalid wol_broadcast"):
            fields.wol_broadcast(bad, network)
    with pytest.raises(Invalid, match="needs its subnet"):
        fields.wol_broadcast("10.12.255.255", None)


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("enclume_session_service", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_script_imports_the_standard_library_only() -> None:
    tree = ast.parse(SCRIPT.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported and imported <= set(sys.stdlib_module_names) | {"__future__"}


def test_the_script_finds_the_network_boot_entry_and_sets_it_next(tmp_path: Path) -> None:
    script = _script()
    log = tmp_path / "calls.log"
    tool = fake_efibootmgr(tmp_path, log)
    assert script.network_boot_entry(str(tool)) == "0003"
    assert script.set_next_boot_to_network(str(tool)) is True
    assert recorded(log) == [["efibootmgr", "--bootnext", "0003"]]
    assert script.set_next_boot_to_network(str(tmp_path / "no-efibootmgr")) is False


def test_the_script_reads_its_kept_settings_and_refuses_incomplete_ones(tmp_path: Path
                                                                        ) -> None:
    script = _script()
    kept = tmp_path / "session-service.json"
    kept.write_text('{"api_url": "http://api:6385", "node": "pc1", "token": "t"}')
    assert script.load_config(kept, "/nonexistent")["node"] == "pc1"
    kept.write_text('{"api_url": "http://api:6385", "node": "pc1"}')
    with pytest.raises(ValueError, match="token"):
        script.load_config(kept, "/nonexistent")
    booted = script.boot_time()
    assert booted is not None and datetime.fromisoformat(booted) < datetime.now(UTC)
