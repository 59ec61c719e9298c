"""The ipxe boot interface on a real SQLite database: what it commits, for machines with and
without boot device control, and that a conductor taking over prepares the boot again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.boot import ipxe
from services.common.bootconfig.entry import boot_entry
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.models import Node, Port
from services.conductor.manager import ConductorManager
from services.conductor.periodic import PeriodicTasks
from services.conductor.task import Task
from services.drivers.boot.ipxe import ipxe_boot
from services.drivers.fake import FakeManagement
from services.drivers.node_driver import NodeDriver
from services.drivers.noop import NoopManagement
from services.drivers.registry import FAKE_HARDWARE, Drivers
from tests.support.polling import eventually


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'boot.sqlite'}"
    upgrade_schema(url)
    return Database(url)


def add_node(db: Database, **values: Any) -> int:
    node = Node(driver="fake-hardware", boot_interface="ipxe", **values)
    with db.session() as session:
        session.add(node)
        session.flush()
        session.add(Port(address="52:54:00:aa:bb:01", node_id=node.id))
    return node.id


def committed_info(db: Database, node_id: int) -> dict[str, Any]:
    """driver_internal_info as another connection (the boot service) sees it now."""
    with db.session() as session:
        node = session.get(Node, node_id)
        assert node is not None
        return dict(node.driver_internal_info)


SETTINGS = Settings(
    boot={"public_url": "http://192.0.2.1:8080/"},
    deploy={"kernel": "vmlinuz", "ramdisk": "https://images.example/initrd.img", "agent_api_url": "http://192.0.2.1:6385"},
    drivers={"default_boot_mode": "bios"},
)


def test_machines_that_boot_from_the_network_first_are_told_to_boot_their_disk(
        db: Database) -> None:
    node_id = add_node(db)
    with db.session() as session:
        node = session.get(Node, node_id)
        assert node is not None
        driver = NodeDriver(FAKE_HARDWARE, {"management": NoopManagement(),
                                            "boot": ipxe_boot(SETTINGS)})
        task = Task(session, node, driver, "conductor-a")

        task.driver.boot.prepare_ramdisk(task)
        boot = committed_info(db, node_id)["boot"]  # visible before the machine powers on
        assert boot == {"mode": "ramdisk", "kernel": "http://192.0.2.1:8080/files/vmlinuz",
                        "ramdisk": "https://images.example/initrd.img",
                        "kernel_params": f"enclume.api_url=http://192.0.2.1:6385 "
                                         f"enclume.node={node.uuid}",
                        "boot_mode": "bios", "boot_loader": "ipxe"}

        task.driver.boot.clean_up_ramdisk(task)
        assert "boot" not in committed_info(db, node_id)
        task.driver.boot.prepare_instance(task)
        local = committed_info(db, node_id)["boot"]
        assert local == {"mode": "local", "boot_mode": "bios", "boot_loader": "ipxe"}
        entry = boot_entry("52:54:00:aa:bb:01", node.uuid, local)  # as the boot service reads
        assert "sanboot --no-describe --drive 0x80" in ipxe.script_for(entry, "node", "uefi")
        task.driver.boot.clean_up_instance(task)
        assert "boot" not in committed_info(db, node_id)


def test_machines_with_boot_device_control_boot_their_disk_without_network_answers(
        db: Database) -> None:
    node_id = add_node(db, driver_internal_info={"boot": {"mode": "ramdisk"}})
    with db.session() as session:
        node = session.get(Node, node_id)
        assert node is not None
        driver = NodeDriver(FAKE_HARDWARE, {"management": FakeManagement(),
                                            "boot": ipxe_boot(SETTINGS)})
        task = Task(session, node, driver, "conductor-a")
        task.driver.boot.prepare_instance(task)
        info = committed_info(db, node_id)
        assert "boot" not in info
        assert info["fake_boot_device"] == {"boot_device": "disk", "persistent": True}


def test_a_conductor_taking_over_an_active_node_prepares_its_boot_again(db: Database) -> None:
    settings = SETTINGS.model_copy(update={"conductor": SETTINGS.conductor.model_copy(
        update={"hostname": "conductor-b"})})
    stale = {"mode": "ramdisk", "kernel": "http://gone/k", "ramdisk": "http://gone/r"}
    node_id = add_node(db, provision_state="active", conductor_affinity="conductor-a",
                       driver_internal_info={"boot": stale})
    manager = ConductorManager(db, settings, Drivers(settings))
    manager.start()
    try:
        PeriodicTasks(manager).take_over()
        eventually(lambda: committed_info(db, node_id).get("fake_boot_device") is not None)
    finally:
        manager.stop()
    info = committed_info(db, node_id)
    assert "boot" not in info  # no stale ramdisk boot left behind
    assert info["fake_boot_device"] == {"boot_device": "disk", "persistent": True}
    with db.session() as session:
        node = session.get(Node, node_id)
        assert node is not None and node.conductor_affinity == "conductor-b"
