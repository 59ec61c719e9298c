"""The ``redfish-virtual-media`` boot interface's checks that need no BMC: UEFI only, the
ISO tools the conductor lacks named with their Debian packages, and the command line of a
deploy ISO that nodes share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.config import load
from services.common.config import Settings
from services.common.models import Node
from services.conductor.task import Task
from services.drivers.base import DriverError
from services.drivers.boot import vmedia_iso
from services.drivers.boot.ipxe import agent_kernel_params
from services.drivers.boot.redfish_vmedia import RedfishVirtualMediaBoot
from services.drivers.redfish import RedfishSessions


def task_of(properties: dict[str, Any]) -> Task:
    node = Node(uuid="1be26c0b-03f2-4d2d-ae87-c02b3d45d4b8", driver="redfish",
                driver_info={"redfish_address": "https://192.0.2.8",
                             "deploy_kernel": "http://192.0.2.1/k",
                             "deploy_ramdisk": "http://192.0.2.1/r"},
                properties=properties)
    return Task(None, node, None, "conductor-a")  # type: ignore[arg-type]


def test_bios_boot_mode_is_refused_before_anything_is_fetched(tmp_path: Path) -> None:
    settings = Settings(process={"data_dir": tmp_path})
    boot = RedfishVirtualMediaBoot(RedfishSessions(settings), settings)
    with pytest.raises(DriverError, match=r"UEFI mode only .* boot_mode:uefi"):
        boot.validate(task_of({"capabilities": "boot_mode:bios"}))


def test_missing_iso_tools_are_named_with_their_packages(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a conductor without the tools
    assert "genisoimage (genisoimage)" in vmedia_iso.missing_tools()
    with pytest.raises(DriverError, match=r"needs genisoimage \(genisoimage\), mkfs.fat "
                                          r"\(dosfstools\), mcopy \(mtools\)"):
        vmedia_iso.build(tmp_path / "k", tmp_path / "r", "x", tmp_path / "out.iso")
    assert not (tmp_path / "out.iso").exists()


def test_the_loader_boots_the_one_entry_at_once_with_the_node_command_line() -> None:
    files = vmedia_iso.loader_files("enclume.node=abc console=ttyS0")
    assert files["loader/loader.conf"] == "default enclume.conf\ntimeout 0\n"
    assert files["loader/entries/enclume.conf"].splitlines()[1:] == [
        "linux /vmlinuz", "initrd /initrd", "options enclume.node=abc console=ttyS0"]


def test_a_shared_deploy_iso_names_no_node_and_its_agent_looks_up_by_mac(
        tmp_path: Path) -> None:
    settings = Settings(process={"data_dir": tmp_path}, api={"public_url": "http://192.0.2.1"})
    task = task_of({"capabilities": "boot_mode:uefi"})
    own = agent_kernel_params(settings, task)
    shared = agent_kernel_params(settings, task, by_mac=True)
    assert f"enclume.node={task.node.uuid}" in own
    assert shared == own.replace(f" enclume.node={task.node.uuid}", "")
    cmdline = tmp_path / "cmdline"
    for line, node_uuid in ((own, task.node.uuid), (shared, None)):
        cmdline.write_text(line)
        config, _ = load(["--cmdline-file", str(cmdline)])
        assert config.node_uuid == node_uuid and config.discovery is False
