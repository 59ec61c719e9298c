"""Periodic conductor tasks on a real SQLite database: ownership, takeover, timeouts, power."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.exceptions import TemporaryFailure
from services.common.models import Conductor, Node, NodeHistory, utcnow
from services.common.ring import ConductorRing
from services.conductor.manager import ConductorManager
from services.conductor.periodic import PeriodicTasks
from services.drivers.registry import Drivers
from tests.support.polling import eventually
from tests.support.ring_owned import uuids_owned_by

ME, OTHER = "conductor-me", "conductor-other"


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'periodic.sqlite'}"
    upgrade_schema(url)
    return Database(url)


@pytest.fixture
def manager(db: Database) -> Iterator[ConductorManager]:
    settings = Settings(
        conductor={"hostname": ME, "callback_timeout_s": 60, "power_sync_workers": 4,
                   "max_concurrent_deploys": 1},
        fake={"deploy_delay_s": (0.3, 0.3)},
    )
    with db.session() as session:  # a second live conductor shares the ring
        session.add(Conductor(hostname=OTHER, hardware_types=["fake-hardware"]))
    conductor = ConductorManager(db, settings, Drivers(settings))
    conductor.start()
    yield conductor
    conductor.stop()


def add_nodes(db: Database, count: int, **values: Any) -> list[Node]:
    nodes = [Node(driver="fake-hardware", **values) for _ in range(count)]
    with db.session() as session:
        session.add_all(nodes)
    return nodes


def mine(nodes: list[Node]) -> list[Node]:
    ring = ConductorRing([ME, OTHER])
    return [n for n in nodes if ring.owner(n.uuid) == ME]


def node(db: Database, node_id: int) -> Node:
    with db.session() as session:
        found = session.get(Node, node_id)
        assert found is not None
        return found


def test_power_sync_reads_only_owned_nodes_and_sees_out_of_band_changes(
        db: Database, manager: ConductorManager) -> None:
    nodes = add_nodes(db, 40, provision_state="available", power_state="power off")
    owned = mine(nodes)
    assert 0 < len(owned) < len(nodes)
    with db.session() as session:  # someone pressed the power button of one machine
        pressed = session.get(Node, owned[0].id)
        assert pressed is not None
        pressed.driver_internal_info = {"fake_power_state": "power on"}
    report = PeriodicTasks(manager).sync_power_states()
    assert (report.nodes, report.changed, report.failed) == (len(owned), 1, 0)
    assert node(db, owned[0].id).power_state == "power on"
    with db.session() as session:
        events = session.query(NodeHistory).filter_by(node_id=owned[0].id).all()
    assert any("out of band" in e.event for e in events)


def test_power_sync_leaves_out_the_states_ironic_leaves_out(
        db: Database, manager: ConductorManager) -> None:
    """Ironic's SYNC_EXCLUDED_STATES, a power change under way, and (recovery) enroll."""
    failed = {"maintenance": True, "fault": "power failure", "maintenance_reason": "BMC gone"}
    states: list[dict[str, Any]] = [
        {"provision_state": "available"}, {"provision_state": "clean wait", **failed},
        *({"provision_state": state} for state in
          ("enroll", "wait call-back", "clean wait", "adopt failed")),
        {"provision_state": "manageable", "target_power_state": "power on"},
        {"provision_state": "enroll", **failed}]
    owned = uuids_owned_by(ME, [ME, OTHER], "power-sync")
    pressed = {"fake_power_state": "power on"}  # a read would see the machine on
    synced, recovered, *left_out = [
        Node(driver="fake-hardware", uuid=next(owned), power_state="power off",
             driver_internal_info=pressed, **values) for values in states]
    with db.session() as session:
        session.add_all([synced, recovered, *left_out])
    report = PeriodicTasks(manager).sync_power_states()
    assert report.nodes == 2
    assert node(db, synced.id).power_state == "power on"
    assert node(db, recovered.id).power_state == "power on"
    assert not node(db, recovered.id).maintenance
    assert [node(db, n.id).power_state for n in left_out] == ["power off"] * len(left_out)


def test_cut_off_work_fails_cleanly_and_live_work_is_left_alone(
        db: Database, manager: ConductorManager) -> None:
    expired = utcnow() - timedelta(seconds=5)
    dead = mine(add_nodes(db, 30, provision_state="deploying", target_provision_state="active",
                          reservation="dead-conductor", reservation_expires_at=expired))
    live = mine(add_nodes(db, 30, provision_state="cleaning",
                          target_provision_state="available", reservation="busy-conductor",
                          reservation_expires_at=utcnow() + timedelta(seconds=60)))
    PeriodicTasks(manager).take_over()
    eventually(lambda: all(node(db, n.id).provision_state == "deploy failed" for n in dead))
    failed = node(db, dead[0].id)
    assert "dead-conductor stopped" in (failed.last_error or "")
    assert failed.target_provision_state == "active" and failed.reservation is None
    assert all(node(db, n.id).provision_state == "cleaning" for n in live)


def test_active_nodes_of_another_conductor_are_prepared_again(
        db: Database, manager: ConductorManager) -> None:
    nodes = mine(add_nodes(db, 20, provision_state="active", conductor_affinity="gone"))
    PeriodicTasks(manager).take_over()
    eventually(lambda: all(node(db, n.id).conductor_affinity == ME for n in nodes))


def test_callback_timeout_fails_waiting_nodes(db: Database, manager: ConductorManager) -> None:
    old = utcnow() - timedelta(seconds=120)
    stale = mine(add_nodes(db, 20, provision_state="wait call-back",
                           target_provision_state="active", provision_updated_at=old))
    fresh = mine(add_nodes(db, 20, provision_state="wait call-back",
                           target_provision_state="active", provision_updated_at=utcnow()))
    PeriodicTasks(manager).fail_callback_timeouts()
    eventually(lambda: all(node(db, n.id).provision_state == "deploy failed" for n in stale))
    assert "Timeout reached while waiting for callback" in (node(db, stale[0].id).last_error
                                                             or "")
    assert all(node(db, n.id).provision_state == "wait call-back" for n in fresh)


def test_concurrent_deploy_limit_answers_503(db: Database, manager: ConductorManager) -> None:
    first, second = add_nodes(db, 2, provision_state="available")
    manager.do_provisioning_action(first.uuid, "active")
    with pytest.raises(TemporaryFailure, match="Too many nodes are deploying") as refused:
        manager.do_provisioning_action(second.uuid, "active")
    assert refused.value.code == 503
    assert node(db, second.id).provision_state == "available"
