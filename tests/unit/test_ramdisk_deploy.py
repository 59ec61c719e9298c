"""The ``ramdisk`` deploy interface (diskless nodes) through the API on fake hardware, its
refusals with Ironic's texts, and fast track's rules (services/common/fast_track.py).

With the real agent, the boot service and a BMC: tests/integration/test_deploy_diskless.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.common import fast_track
from services.common.config import Settings
from services.common.exceptions import Invalid
from services.common.models import Node, utcnow
from services.conductor.agent import recorded_recently
from services.drivers.base import BootInterface
from services.drivers.boot.instance_ramdisk import instance_kernel_params
from services.drivers.deploy.diskless import NO_RAMDISK_BOOT, RamdiskDeploy
from services.drivers.driver_info import InvalidParameter
from tests.support.api_stack import ServedApi, fault, served_sqlite_api, wait_state


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApi]:
    with served_sqlite_api(tmp_path_factory.mktemp("ramdisk-deploy")) as stack:
        yield stack


def available_ramdisk_node(api: httpx.Client, **instance_info: Any) -> str:
    # No automated cleaning: it would boot the deploy ramdisk and wait for an agent.
    created = api.post("/v1/nodes", headers={"X-OpenStack-Ironic-API-Version": "latest"},
                       json={"driver": "fake-hardware", "deploy_interface": "ramdisk",
                             "automated_clean": False, "instance_info": instance_info})
    assert created.status_code == 201, created.text
    node = str(created.json()["uuid"])
    for target, state in (("manage", "manageable"), ("provide", "available")):
        assert api.put(f"/v1/nodes/{node}/states/provision",
                       json={"target": target}).status_code == 202
        wait_state(api, node, state)
    return node


def provision(api: httpx.Client, node: str, **body: Any) -> httpx.Response:
    return api.put(f"/v1/nodes/{node}/states/provision", json=body)


def test_a_ramdisk_deploy_on_fake_hardware_is_active_without_writing(served: ServedApi) -> None:
    api = served.client
    drivers = api.get("/v1/drivers/fake-hardware").json()
    assert "ramdisk" in drivers["enabled_deploy_interfaces"]
    node = available_ramdisk_node(api, kernel="vmlinuz", ramdisk="initrd.img")
    assert provision(api, node, target="active").status_code == 202
    active = wait_state(api, node, "active")
    assert active["power_state"] == "power on" and active["last_error"] is None
    with served.manager.db.session() as session:
        internal = session.scalar(select(Node.driver_internal_info).where(Node.uuid == node))
    assert "fake_deploys" not in internal  # the fake deploy's "disk writes": none
    assert provision(api, node, target="rebuild").status_code == 202
    assert wait_state(api, node, "active")["power_state"] == "power on"
    assert provision(api, node, target="deleted").status_code == 202
    assert wait_state(api, node, "available")["instance_info"] == {}


def test_ramdisk_deploy_refusals_say_what_is_missing(served: ServedApi) -> None:
    api = served.client
    node = available_ramdisk_node(api)
    assert fault(provision(api, node, target="active")).endswith(
        "Some parameters were missing in node's instance_info. Missing are: "
        "['kernel', 'ramdisk']")
    patch = [{"op": "add", "path": "/instance_info",
              "value": {"kernel": "vmlinuz", "ramdisk": "initrd.img"}}]
    assert api.patch(f"/v1/nodes/{node}", json=patch).status_code == 200
    assert "A config drive cannot be used with the ramdisk deploy interface" in fault(
        provision(api, node, target="active", configdrive={"meta_data": {}}))
    with served.manager.db.session() as session:  # the refused request left nothing behind
        info = session.scalar(select(Node.instance_info).where(Node.uuid == node))
    assert "configdrive" not in info
    patch = [{"op": "add", "path": "/instance_info",
              "value": {"boot_iso": "live.iso", "image_source": "http://i/disk.raw"}}]
    assert api.patch(f"/v1/nodes/{node}", json=patch).status_code == 200
    assert fault(provision(api, node, target="active")).endswith(
        "An 'image_source' and 'boot_iso' parameter may not be specified at the same time")


class _DiskOnlyBoot(BootInterface):
    def validate(self, task: Any) -> None: ...
    def prepare_ramdisk(self, task: Any) -> None: ...
    def clean_up_ramdisk(self, task: Any) -> None: ...
    def prepare_instance(self, task: Any) -> None: ...
    def clean_up_instance(self, task: Any) -> None: ...


def test_a_boot_interface_without_ramdisk_boot_is_refused_with_ironics_words() -> None:
    class Task:
        class driver:
            boot = _DiskOnlyBoot()

    with pytest.raises(InvalidParameter) as refused:
        RamdiskDeploy(Settings()).validate(Task())  # type: ignore[arg-type]
    assert str(refused.value) == NO_RAMDISK_BOOT


@pytest.mark.parametrize(("value", "default", "expected"), [
    (None, False, False), (None, True, True), (True, False, True), ("yes", False, True),
    ("0", True, False), ("off", True, False)])
def test_fast_track_per_node_wins_over_the_setting(value: object, default: bool,
                                                   expected: bool) -> None:
    info = {} if value is None else {"fast_track": value}
    assert fast_track.enabled(info, default) is expected


def test_fast_track_rules_for_heartbeats() -> None:
    with pytest.raises(Invalid, match="Invalid value of fast_track"):
        fast_track.enabled({"fast_track": "maybe"}, False)
    for state in ("enroll", "manageable", "available"):
        assert fast_track.accepts_agent(state, {"fast_track": True}, False)
        assert not fast_track.accepts_agent(state, {}, False)
    assert not fast_track.accepts_agent("active", {"fast_track": True}, True)
    assert fast_track.accepts_agent("clean wait", {}, False)
    assert not fast_track.accepts_agent("available", {"fast_track": "maybe"}, True)

    deploy = Settings(deploy={"fast_track_timeout_s": 300,
                              "agent_heartbeat_timeout_s": 90}).deploy
    just_now = {"agent_last_heartbeat": utcnow().isoformat()}
    earlier = {"agent_last_heartbeat": (utcnow() - timedelta(seconds=31)).isoformat()}
    assert recorded_recently("available", just_now, deploy)  # no lock taken for it
    assert not recorded_recently("available", earlier, deploy)  # 31 s > 90 s / 3
    assert not recorded_recently("available", {}, deploy)
    assert not recorded_recently("clean wait", just_now, deploy)  # work goes on: every one


@pytest.mark.parametrize(("instance_info", "driver_info", "expected"), [
    ({}, {}, "enclume.node={uuid}"),
    ({"ramdisk_kernel_arguments": " console=ttyS0 "}, {}, "enclume.node={uuid} console=ttyS0"),
    ({"kernel_append_params": "quiet", "ramdisk_kernel_arguments": "boot=live"},
     {"kernel_append_params": "ignored"}, "enclume.node={uuid} quiet boot=live"),
    ({}, {"kernel_append_params": "nomodeset"}, "enclume.node={uuid} nomodeset"),
], ids=["node-only", "ramdisk-kernel-arguments", "append-then-arguments", "driver-info"])
def test_the_instance_command_line_ends_with_ramdisk_kernel_arguments(
        instance_info: dict[str, str], driver_info: dict[str, str], expected: str) -> None:
    node = Node(uuid="7c0d9a52-3c1e-4a8e-9f0b-2d6e1f3a4b5c", driver="fake-hardware",
                instance_info=instance_info, driver_info=driver_info)
    assert instance_kernel_params(Settings(), node) == expected.format(uuid=node.uuid)
    node.instance_info = {"ramdisk_kernel_arguments": "x $y"}
    with pytest.raises(InvalidParameter, match="ramdisk_kernel_arguments"):
        instance_kernel_params(Settings(), node)
