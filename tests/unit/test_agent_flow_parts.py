"""The pieces of the conductor's agent work: image parameters, clean steps, iSCSI portals and
credentials, inventories applied to a real SQLite database, and which interfaces real hardware
types offer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.models import Node, NodeHistory, NodeInventory, Port
from services.conductor.task import Task
from services.drivers.base import DriverError
from services.drivers.deploy import cleaning, image
from services.drivers.deploy.iscsi import IscsiWriter, chap_credentials, portal_of
from services.drivers.deploy.qemu_img import IscsiTarget
from services.drivers.inspect import inventory
from services.drivers.registry import HARDWARE_TYPES, Drivers

SETTINGS = Settings(
    boot={"public_url": "http://192.0.2.1:8080/"},
    drivers={"default_boot_mode": "uefi"},
)
SHA256 = "a" * 64
GIB = 1024**3


def node_with(instance_info: dict[str, Any], **values: Any) -> Node:
    return Node(driver="ipmi", instance_info=instance_info, **values)


# -- image parameters ----------------------------------------------------------------------


def test_write_image_params_from_instance_info() -> None:
    node = node_with({"image_source": "https://user:pw@images.example/os.qcow2",
                      "image_os_hash_algo": "sha256", "image_os_hash_value": SHA256.upper(),
                      "image_disk_format": "qcow2", "configdrive": "H4sI"},
                     properties={"root_device": {"name": "/dev/sdb"},
                                 "capabilities": "boot_mode:bios"})
    params = image.write_image_params(node, SETTINGS)
    assert params == {
        "image_url": f"http://192.0.2.1:8080/images/{node.uuid}",  # the boot service's cache
        "image_os_hash_algo": "sha256", "image_os_hash_value": SHA256,
        "image_disk_format": "qcow2", "image_type": "whole-disk", "root_mb": 0, "swap_mb": 0,
        "configdrive": "H4sI", "target_disk": "/dev/sdb", "boot_mode": "bios"}
    direct = node_with({**node.instance_info, "image_download_source": "http"})
    assert image.write_image_params(direct, SETTINGS)["image_url"] == (
        "https://user:pw@images.example/os.qcow2")
    by_setting = SETTINGS.model_copy(update={"deploy": SETTINGS.deploy.model_copy(
        update={"image_download_source": "http"})})
    assert image.write_image_params(node_with(dict(node.instance_info)), by_setting)[
        "image_url"].startswith("https://")


@pytest.mark.parametrize(("checksum", "algorithm"), [
    ("d41d8cd98f00b204e9800998ecf8427e", "md5"),
    (f"sha256:{SHA256}", "sha256"),
    ("b" * 128, "sha512"),
])
def test_checksums_are_normalised(checksum: str, algorithm: str) -> None:
    node = node_with({"image_source": "http://h/i.raw", "image_checksum": checksum})
    params = image.write_image_params(node, SETTINGS)
    assert params["image_os_hash_algo"] == algorithm
    assert params["image_os_hash_value"] == checksum.rpartition(":")[2]
    assert params["image_disk_format"] is None  # the agent goes by the header
    assert params["boot_mode"] == "uefi"


def test_partition_images_need_a_root_size_and_take_it_from_root_gb() -> None:
    partition = {"image_source": "http://h/p.raw", "image_checksum": SHA256,
                 "kernel": "http://h/k", "ramdisk": "http://h/r"}
    with pytest.raises(DriverError, match="root_gb"):
        image.deploy_image(node_with(partition))
    params = image.write_image_params(node_with({**partition, "root_gb": 10, "swap_mb": 512}),
                                      SETTINGS)
    assert (params["image_type"], params["root_mb"], params["swap_mb"]) == (
        "partition", 10240, 512)


@pytest.mark.parametrize(("instance_info", "message"), [
    ({}, "has no instance_info/image_source"),
    ({"image_source": "http://h/i"}, "has no checksum"),
    ({"image_source": "file:///i", "image_checksum": SHA256}, "http:// or https://"),
    ({"image_source": "http://h/i", "image_checksum": "xyz"}, "hexadecimal"),
    ({"image_source": "http://h/i", "image_checksum": SHA256, "image_disk_format": "vmdk"},
     "image_disk_format must be one of raw, qcow2"),
    ({"image_source": "http://h/i", "image_checksum": SHA256, "configdrive": {"meta_data": {}}},
     "JSON is not supported"),
    ({"image_source": "http://h/i", "image_checksum": SHA256, "root_gb": -1},
     "must not be negative"),
    ({"image_source": "http://h/i", "image_checksum": SHA256,
      "image_download_source": "swift"}, "image_download_source must be one of"),
])
def test_unusable_images_are_refused_clearly(instance_info: dict[str, Any],
                                             message: str) -> None:
    with pytest.raises(DriverError, match=message):
        image.write_image_params(node_with(instance_info), SETTINGS)


def test_iscsi_writes_whole_disk_images_without_config_drive() -> None:
    writer = IscsiWriter(SETTINGS)
    base = {"image_source": "http://h/i", "image_checksum": SHA256}
    node = node_with(base)
    task = Task(None, node, None, "c")  # type: ignore[arg-type]
    writer.validate(task)
    for refused, why in (({"configdrive": "H4sI"}, "config drives"),
                         ({"image_type": "partition", "root_gb": 1}, "whole-disk images only")):
        task.node = node_with({**base, **refused})
        with pytest.raises(DriverError, match=why):
            writer.validate(task)


# -- iSCSI ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("result", "expected"), [
    ({"portal": "10.0.0.5:3260"}, ("10.0.0.5", 3260)),
    ({"portal": "0.0.0.0:3261"}, ("192.0.2.9", 3261)),
    ({}, ("192.0.2.9", 3260)),
    ({"portal": "[fd00::5]:3260"}, ("fd00::5", 3260)),
])
def test_the_portal_defaults_to_the_agents_address(result: dict[str, Any],
                                                   expected: tuple[str, int]) -> None:
    assert portal_of(result, "http://192.0.2.9:9999", 3260) == expected


def test_chap_credentials_are_fresh_and_fit_initiators() -> None:
    first, second = chap_credentials(), chap_credentials()
    assert first != second
    user, password = first
    assert 12 <= len(password) <= 16 and "%" not in password and "," not in password
    with pytest.raises(DriverError):
        IscsiTarget("h", 3260, "iqn.x,lun=1", 0, user, password).options("s")
    assert "password-secret=s" in IscsiTarget("h", 3260, "iqn.x", 0, user, password).options("s")
    assert password not in IscsiTarget("h", 3260, "iqn.x", 0, user, password).options("s")


# -- cleaning ------------------------------------------------------------------------------


def test_clean_steps() -> None:
    steps = cleaning.automated_steps(SETTINGS)
    assert [s["step"] for s in steps] == ["erase_devices_metadata"]
    with pytest.raises(DriverError, match="unknown steps erase_all"):
        cleaning.automated_steps(SETTINGS.model_copy(
            update={"deploy": SETTINGS.deploy.model_copy(
                update={"automated_clean_steps": ["erase_all"]})}))
    cleaning.check_manual_steps([{"interface": "deploy", "step": "erase_devices"}], "direct")
    with pytest.raises(DriverError, match=r"deploy\.erase_devices_metadata, deploy\.erase_devices"):
        cleaning.check_manual_steps([{"interface": "raid", "step": "create"}], "direct")


# -- inventories ---------------------------------------------------------------------------


def agent_inventory(**changes: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "cpu": {"count": 4, "architecture": "x86_64", "model_name": "QEMU"},
        "memory": {"total_bytes": 8 * GIB, "physical_mb": 8192},
        "disks": [{"name": "/dev/vda", "size": 50 * GIB}, {"name": "/dev/vdb", "size": 2 * GIB},
                  {"name": "/dev/vdc", "size": 20 * GIB}],
        "interfaces": [{"name": "eth0", "mac_address": "52:54:00:00:00:01"},
                       {"name": "eth1", "mac_address": "52:54:00:00:00:02"},
                       {"name": "eth2", "mac_address": "52-54-00-00-00-03"},
                       {"name": "lo", "mac_address": "00:00:00:00:00:00"}],
        "boot": {"current_boot_mode": "uefi"}}
    found.update(changes)
    return found


def test_properties_from_an_inventory() -> None:
    assert inventory.properties_from(agent_inventory(), None) == {
        "cpus": 4, "cpu_arch": "x86_64", "memory_mb": 8192, "local_gb": 19}
    assert inventory.properties_from(agent_inventory(), "/dev/vda")["local_gb"] == 49
    small = agent_inventory(disks=[{"name": "/dev/vda", "size": GIB // 2}],
                            memory={"total_bytes": 3 * GIB})
    assert inventory.properties_from(small, None) == {
        "cpus": 4, "cpu_arch": "x86_64", "memory_mb": 3072, "local_gb": 0}


@pytest.mark.parametrize(("broken", "message"), [
    ([], "expected an object"),
    ({"cpu": {}}, "cpu.count"),
    (agent_inventory(memory={"total_bytes": "lots"}), "memory.total_bytes"),
    (agent_inventory(disks=[{"name": "/dev/vda", "size": -1}]), "size of disk /dev/vda"),
    (agent_inventory(interfaces="eth0"), '"interfaces" must be a list'),
])
def test_malformed_inventories_are_refused(broken: Any, message: str) -> None:
    with pytest.raises(inventory.MalformedInventory, match=message):
        inventory.check(broken)


def test_an_inventory_updates_properties_ports_and_is_kept(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'inventory.sqlite'}"
    upgrade_schema(url)
    db = Database(url)
    with db.session() as session:
        node = Node(driver="fake-hardware", properties={"capabilities": "boot_mode:uefi"})
        other = Node(driver="fake-hardware")
        session.add_all([node, other])
        session.flush()
        session.add_all([Port(address="52:54:00:00:00:01", node_id=node.id),
                         Port(address="52:54:00:00:00:02", node_id=other.id)])
    for _ in range(2):  # a second inspection replaces the inventory, adds no port twice
        with db.session() as session:
            mine = session.get(Node, node.id)
            assert mine is not None
            inventory.apply(Task(session, mine, None, "c"),  # type: ignore[arg-type]
                            agent_inventory())
    with db.session() as session:
        mine = session.get(Node, node.id)
        assert mine is not None
        assert mine.properties == {"capabilities": "boot_mode:uefi", "cpus": 4,
                                   "cpu_arch": "x86_64", "memory_mb": 8192, "local_gb": 19}
        ports = session.scalars(select(Port).where(Port.node_id == node.id)).all()
        assert {(p.address, p.pxe_enabled) for p in ports} == {
            ("52:54:00:00:00:01", True), ("52:54:00:00:00:03", False)}
        kept = session.scalars(select(NodeInventory)).all()
        assert len(kept) == 1 and kept[0].inventory_data["cpu"]["count"] == 4
        warnings = session.scalars(select(NodeHistory).where(
            NodeHistory.severity == "WARNING")).all()
        assert "52:54:00:00:00:02" in warnings[0].event


# -- hardware types ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ipmi", "redfish", "wol"])
def test_real_hardware_deploys_through_the_agent(name: str) -> None:
    hardware = HARDWARE_TYPES[name]
    assert hardware.supported["deploy"] == ("direct", "iscsi", "ramdisk")
    assert hardware.supported["inspect"] == ("agent", "no-inspect")
    assert not hardware.allows("deploy", "fake")
    drivers = Drivers(Settings())
    for interface, implementation in (("deploy", "direct"), ("deploy", "iscsi"),
                                      ("inspect", "agent")):
        assert drivers.implementation(interface, implementation) is not None
    fake = HARDWARE_TYPES["fake-hardware"]
    assert fake.default("deploy") == "fake" and fake.allows("deploy", "direct")
    assert fake.allows("inspect", "agent")
