"""The desired boot read from the database, and the watcher that follows its changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from services.boot.desired import BootWatcher, fingerprint, load_desired_boot
from services.common.bootconfig.entry import BootEntry, DesiredBoot, boot_entry
from services.common.db import Database, upgrade_schema
from services.common.models import Node, Port

RAMDISK = {"mode": "ramdisk", "kernel": "http://boot/k", "ramdisk": "http://boot/r",
           "kernel_params": "console=ttyS0", "boot_mode": "uefi"}
LOCAL = {"mode": "local", "boot_mode": "bios"}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'desired.sqlite'}"
    upgrade_schema(url)
    database = Database(url)
    yield database
    database.engine.dispose()


def add_node(db: Database, *macs: str, boot: dict[str, Any] | None = None,
             pxe_enabled: bool = True) -> str:
    with db.session() as session:
        node = Node(driver="fake-hardware",
                    driver_internal_info={"boot": boot} if boot is not None else {})
        session.add(node)
        session.flush()
        for mac in macs:
            session.add(Port(address=mac, node_id=node.id, pxe_enabled=pxe_enabled))
        return node.uuid


def set_boot(db: Database, node_uuid: str, boot: dict[str, Any] | None) -> None:
    """As the conductor's boot interfaces do: a new dict on the node, through the ORM."""
    with db.session() as session:
        node = session.execute(select(Node).where(Node.uuid == node_uuid)).scalar_one()
        info = {k: v for k, v in node.driver_internal_info.items() if k != "boot"}
        node.driver_internal_info = {**info, "boot": boot} if boot is not None else info


def test_every_pxe_port_of_a_node_with_a_desired_boot_is_an_entry(db: Database) -> None:
    ramdisk_node = add_node(db, "52:54:00:00:01:01", "52:54:00:00:01:02", boot=RAMDISK)
    local_node = add_node(db, "52:54:00:00:02:01", boot=LOCAL)
    add_node(db, "52:54:00:00:03:01")  # no desired boot
    add_node(db, "52:54:00:00:04:01", boot=RAMDISK, pxe_enabled=False)
    desired = load_desired_boot(db, discovery=False)
    assert desired.entries == {
        "52:54:00:00:01:01": BootEntry("52:54:00:00:01:01", ramdisk_node, "ramdisk", "uefi",
                                       "http://boot/k", "http://boot/r", "console=ttyS0"),
        "52:54:00:00:01:02": BootEntry("52:54:00:00:01:02", ramdisk_node, "ramdisk", "uefi",
                                       "http://boot/k", "http://boot/r", "console=ttyS0"),
        "52:54:00:00:02:01": BootEntry("52:54:00:00:02:01", local_node, "local", "bios"),
    }
    assert desired.quiet_macs == frozenset()
    assert desired.answers("52:54:00:00:01:01")
    assert not desired.answers("52:54:00:00:03:01")
    assert not desired.answers("52:54:00:00:99:99")


def test_with_discovery_unknown_macs_are_answered_and_known_idle_ones_are_not(
        db: Database) -> None:
    add_node(db, "52:54:00:00:01:01", boot=RAMDISK)
    add_node(db, "52:54:00:00:03:01")
    desired = load_desired_boot(db, discovery=True)
    assert set(desired.entries) == {"52:54:00:00:01:01"}
    assert desired.quiet_macs == {"52:54:00:00:03:01"}
    assert desired.answers("52:54:00:00:01:01")
    assert desired.answers("52:54:00:00:99:99")
    assert not desired.answers("52:54:00:00:03:01")


@pytest.mark.parametrize("boot", [
    "ramdisk", ["ramdisk"], {"mode": "netboot"}, {"mode": "ramdisk", "kernel": "http://k"},
    {"mode": "ramdisk", "kernel": 3, "ramdisk": "http://r"},
    {"mode": "local", "boot_mode": "legacy"},
])
def test_an_unusable_desired_boot_gets_no_answers(boot: Any,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    assert boot_entry("52:54:00:00:00:01", "node-1", boot) is None
    assert "node-1" in caplog.text


def test_no_desired_boot_is_quietly_nothing(caplog: pytest.LogCaptureFixture) -> None:
    assert boot_entry("52:54:00:00:00:01", "node-1", None) is None
    assert caplog.text == ""


class Recorder:
    def __init__(self) -> None:
        self.calls: list[DesiredBoot] = []
        self.fail_next = False

    def __call__(self, desired: DesiredBoot) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("could not apply")
        self.calls.append(desired)


def watcher(db: Database, recorder: Recorder, resync_interval_s: float = 3600.0) -> BootWatcher:
    return BootWatcher(db, discovery=False, poll_interval_s=3600.0,
                       resync_interval_s=resync_interval_s, on_change=recorder)


def test_the_watcher_applies_at_start_and_after_each_change_only(db: Database) -> None:
    node = add_node(db, "52:54:00:00:01:01")
    recorder = Recorder()
    follower = watcher(db, recorder)
    follower.start()
    try:
        assert [set(d.entries) for d in recorder.calls] == [set()]
        assert follower.poll() is False  # nothing changed: one indexed query, no reload
        set_boot(db, node, RAMDISK)
        assert follower.poll() is True
        assert set(recorder.calls[-1].entries) == {"52:54:00:00:01:01"}
        with db.session() as session:  # a change that does not touch the desired boot
            session.execute(select(Node).where(Node.uuid == node)).scalar_one().power_state = "on"
        assert follower.poll() is False
        set_boot(db, node, None)
        assert follower.poll() is True
        assert recorder.calls[-1].entries == {}
        assert len(recorder.calls) == 3
    finally:
        follower.stop()


def test_a_failed_apply_is_tried_again(db: Database) -> None:
    node = add_node(db, "52:54:00:00:01:01")
    recorder = Recorder()
    follower = watcher(db, recorder)
    follower.poll()
    set_boot(db, node, LOCAL)
    recorder.fail_next = True
    with pytest.raises(RuntimeError):
        follower.poll()
    assert follower.poll() is True
    assert set(recorder.calls[-1].entries) == {"52:54:00:00:01:01"}


def test_ports_added_and_removed_are_followed(db: Database) -> None:
    node = add_node(db, "52:54:00:00:01:01", boot=RAMDISK)
    recorder = Recorder()
    follower = watcher(db, recorder)
    follower.poll()
    with db.session() as session:
        node_id = session.execute(select(Node.id).where(Node.uuid == node)).scalar_one()
        session.add(Port(address="52:54:00:00:01:02", node_id=node_id))
    assert follower.poll() is True
    assert set(recorder.calls[-1].entries) == {"52:54:00:00:01:01", "52:54:00:00:01:02"}
    with db.session() as session:
        session.delete(session.execute(select(Port).where(Port.address == "52:54:00:00:01:01"))
                       .scalar_one())
    assert follower.poll() is True
    assert set(recorder.calls[-1].entries) == {"52:54:00:00:01:02"}


def test_an_unchanged_fingerprint_still_reloads_at_the_resync_interval(db: Database) -> None:
    node = add_node(db, "52:54:00:00:01:01")
    recorder = Recorder()
    follower = watcher(db, recorder, resync_interval_s=0.0)
    follower.poll()
    # A write stamped by a conductor whose clock is behind: the newest update time stays.
    before = fingerprint(db)
    with db.session() as session:
        row = session.execute(select(Node).where(Node.uuid == node)).scalar_one()
        stamp = row.updated_at
        row.driver_internal_info = {"boot": RAMDISK}
        session.flush()
        row.updated_at = stamp
    assert fingerprint(db) == before
    assert follower.poll() is True
    assert set(recorder.calls[-1].entries) == {"52:54:00:00:01:01"}
