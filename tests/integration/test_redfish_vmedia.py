"""The ``redfish-virtual-media`` boot interface against sushy-emulator (its fake driver does
virtual media: it downloads the inserted image and records it as the CD's boot image), through
a served API with an in-process conductor and the real boot service serving the files
directory: the node's deploy ISO built, inserted from the boot service's URL and booted once
from CD when the ramdisk is needed, ejected and removed when it is not; an ISO the BMC cannot
download fails the operation with the BMC's reason and what to check; the API's vmedia attach
and detach (1.89) through the redfish management interface, the image served by the boot
service ("local") or handed to the BMC as it is ("http")."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.boot.http import create_boot_app
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from tests.support.api_stack import served_api
from tests.support.asgi import bound_socket, serving, url_of
from tests.support.peers_fixtures import REDFISH_USERNAME, RedfishPeers
from tests.support.polling import eventually
from tests.support.redfish_emulator import RedfishEmulator, fake_systems

pytestmark = [pytest.mark.integration]

KERNEL, RAMDISK = "deploy.kernel", "deploy.initramfs"
INSTANCE_KERNEL, INSTANCE_RAMDISK = "instance.kernel", "instance.initramfs"
MTOOLS_ENV = {"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"}
ERASE = {"interface": "deploy", "step": "erase_devices_metadata"}


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedfishPeers]:
    """One sushy-emulator for the module: a system per test."""
    password = "vmedia-7f3a"
    with RedfishEmulator(tmp_path_factory.mktemp("vmedia-bmc"), fake_systems(5),
                         {REDFISH_USERNAME: password}) as emulator:
        yield RedfishPeers(emulator=emulator, username=REDFISH_USERNAME, password=password)


@dataclass
class Stack:
    api: httpx.Client
    files: Path
    boot_url: str


@contextmanager
def stack(base: Path, iso_url: str | None = None) -> Iterator[Stack]:
    """API + conductor + boot service on ``base``; the ISO's URL is the boot service's unless
    ``iso_url`` says where the BMC is told to fetch it from."""
    files = base / "boot-files"
    files.mkdir(parents=True)
    (files / KERNEL).write_bytes(b"\x7fkernel" * 1000)
    (files / RAMDISK).write_bytes(b"ramdisk" * 1000)
    (files / INSTANCE_KERNEL).write_bytes(b"\x7finstance-kernel" * 1000)
    (files / INSTANCE_RAMDISK).write_bytes(b"instance-ramdisk" * 1000)
    boot_socket = bound_socket()
    boot_url = url_of(boot_socket)
    url = f"sqlite:///{base / 'api.sqlite'}"
    upgrade_schema(url)
    settings = Settings(
        process={"data_dir": base}, conductor={"hostname": "conductor-1"},
        boot={"files_dir": files, "public_url": iso_url or boot_url},
        deploy={"kernel": f"{boot_url}/files/{KERNEL}", "ramdisk": f"{boot_url}/files/{RAMDISK}"},
        redfish={"timeout_s": 5, "connect_retries": 0},
        drivers={"power_poll_interval_s": 0.2, "power_state_change_timeout_s": 20})
    db = Database(url)
    with ExitStack() as stack_:
        stack_.enter_context(serving(create_boot_app(settings, db), boot_socket))
        served = stack_.enter_context(served_api(settings, db))
        yield Stack(served.client, files, boot_url)


def node_of(api: httpx.Client, uuid: str) -> dict[str, Any]:
    document: dict[str, Any] = api.get(f"/v1/nodes/{uuid}").json()
    return document


def enroll_and_clean(api: httpx.Client, peers: RedfishPeers, index: int) -> dict[str, Any]:
    """A manageable redfish node (the emulator's system ``index``) booting by virtual media,
    asked for a manual cleaning that needs the ramdisk; the node once cleaning has ended or
    waits for its agent."""
    system = peers.emulator.system_ids[index]
    response = api.post("/v1/nodes", json={
        "driver": "redfish", "boot_interface": "redfish-virtual-media",
        "driver_info": peers.driver_info(system),
        "properties": {"capabilities": "boot_mode:uefi"}})
    assert response.status_code == 201, response.text
    uuid = response.json()["uuid"]
    assert api.put(f"/v1/nodes/{uuid}/states/provision",
                   json={"target": "manage"}).status_code == 202
    eventually(lambda: node_of(api, uuid)["provision_state"] == "manageable", 20, "manageable")
    response = api.put(f"/v1/nodes/{uuid}/states/provision",
                       json={"target": "clean", "clean_steps": [ERASE]})
    assert response.status_code == 202, response.text
    return eventually(lambda: (n := node_of(api, uuid))["provision_state"] in (
        "clean wait", "clean failed") and n, 30, "the ramdisk booted or cleaning failed")


def bmc(peers: RedfishPeers, index: int, path: str) -> dict[str, Any]:
    emulator = peers.emulator
    with httpx.Client(auth=(peers.username, peers.password)) as client:
        system = emulator.system_path(emulator.system_ids[index])
        document: dict[str, Any] = client.get(f"{emulator.address}{system}{path}").json()
        return document


def test_the_deploy_iso_is_built_inserted_booted_and_ejected(
        tmp_path: Path, peers: RedfishPeers) -> None:
    with stack(tmp_path) as served:
        waiting = enroll_and_clean(served.api, peers, 0)
        uuid = waiting["uuid"]
        assert waiting["provision_state"] == "clean wait", waiting["last_error"]
        iso = served.files / "vmedia" / f"{uuid}.iso"
        cd = bmc(peers, 0, "/VirtualMedia/Cd")
        assert cd["Inserted"] is True and cd["WriteProtected"] is True
        assert cd["Image"] == f"{served.boot_url}/files/vmedia/{uuid}.iso"
        assert bmc(peers, 0, "")["Boot"]["BootSourceOverrideTarget"] == "Cd"
        assert waiting["power_state"] == "power on"

        # What the BMC downloaded is a UEFI-bootable ISO whose loader boots the ramdisk with
        # the node's kernel command line.
        listing = subprocess.run(["isoinfo", "-d", "-i", str(iso)], capture_output=True,
                                 text=True, check=True).stdout
        assert "El Torito" in listing and "No Emulation Boot" in listing
        esp = tmp_path / "esp.img"
        with esp.open("wb") as out:
            subprocess.run(["isoinfo", "-R", "-i", str(iso), "-x", "/boot/efiboot.img"],
                           stdout=out, check=True)
        entry = subprocess.run(["mtype", "-i", str(esp), "::/loader/entries/enclume.conf"],
                               capture_output=True, text=True, check=True,
                               env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"}).stdout
        assert "linux /vmlinuz" in entry and f"enclume.node={uuid}" in entry
        assert subprocess.run(["mtype", "-i", str(esp), "::/initrd"], capture_output=True,
                              check=True, env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"}
                              ).stdout == (served.files / RAMDISK).read_bytes()

        assert served.api.put(f"/v1/nodes/{uuid}/states/provision",
                              json={"target": "abort"}).status_code == 202
        eventually(lambda: bmc(peers, 0, "/VirtualMedia/Cd")["Inserted"] is False, 10, "ejected")
        assert not iso.exists()


def test_an_iso_the_bmc_cannot_download_fails_with_its_reason(
        tmp_path: Path, peers: RedfishPeers) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        unreachable = url_of(closed)  # nothing listens there once the socket is closed
    with stack(tmp_path, iso_url=unreachable) as served:
        failed = enroll_and_clean(served.api, peers, 1)
    assert failed["provision_state"] == "clean failed"
    error = failed["last_error"]
    assert f"could not insert the virtual media ISO {unreachable}/files/vmedia/" in error
    assert "Failed fetching image from URL" in error  # the BMC's own words
    assert f"it must reach the boot service at {unreachable}" in error
    assert peers.password not in error
    assert bmc(peers, 1, "/VirtualMedia/Cd")["Inserted"] is False


def _loader_entry_and_initrd(iso: Path, work: Path) -> tuple[str, bytes]:
    """The systemd-boot entry and the initrd of a vmedia ISO (read with isoinfo and mtools)."""
    esp = work / f"{iso.stem}-esp.img"
    with esp.open("wb") as out:
        subprocess.run(["isoinfo", "-R", "-i", str(iso), "-x", "/boot/efiboot.img"],
                       stdout=out, check=True)
    entry = subprocess.run(["mtype", "-i", str(esp), "::/loader/entries/enclume.conf"],
                           capture_output=True, text=True, check=True, env=MTOOLS_ENV).stdout
    initrd = subprocess.run(["mtype", "-i", str(esp), "::/initrd"], capture_output=True,
                            check=True, env=MTOOLS_ENV).stdout
    return entry, initrd


def enroll_diskless(api: httpx.Client, peers: RedfishPeers, index: int,
                    instance_info: dict[str, Any]) -> str:
    """An available redfish node (no automated cleaning: no agent runs here) with the ramdisk
    deploy interface booting by virtual media, asked to deploy ``instance_info``."""
    response = api.post("/v1/nodes", json={
        "driver": "redfish", "boot_interface": "redfish-virtual-media",
        "deploy_interface": "ramdisk", "automated_clean": False,
        "driver_info": peers.driver_info(peers.emulator.system_ids[index]),
        "properties": {"capabilities": "boot_mode:uefi"}})
    assert response.status_code == 201, response.text
    uuid: str = response.json()["uuid"]
    for target, state in (("manage", "manageable"), ("provide", "available")):
        assert api.put(f"/v1/nodes/{uuid}/states/provision",
                       json={"target": target}).status_code == 202
        eventually(lambda s=state: node_of(api, uuid)["provision_state"] == s, 20, state)
    patch = [{"op": "add", "path": f"/instance_info/{key}", "value": value}
             for key, value in instance_info.items()]
    assert api.patch(f"/v1/nodes/{uuid}", json=patch).status_code == 200
    return uuid


def deploy(api: httpx.Client, uuid: str) -> dict[str, Any]:
    response = api.put(f"/v1/nodes/{uuid}/states/provision", json={"target": "active"})
    assert response.status_code == 202, response.text
    return eventually(lambda: (n := node_of(api, uuid))["provision_state"] in (
        "active", "deploy failed") and n, 60, "deployed or failed")


def test_a_ramdisk_deploy_boots_the_instance_iso_and_the_next_deploy_reuses_it(
        tmp_path: Path, peers: RedfishPeers) -> None:
    with stack(tmp_path) as served:
        uuid = enroll_diskless(served.api, peers, 2, {
            "kernel": INSTANCE_KERNEL, "ramdisk": INSTANCE_RAMDISK,
            "ramdisk_kernel_arguments": "console=ttyS0 diskless=1"})
        active = deploy(served.api, uuid)
        assert active["provision_state"] == "active", active["last_error"]
        assert active["power_state"] == "power on" and active["last_error"] is None
        cd = bmc(peers, 2, "/VirtualMedia/Cd")
        assert cd["Inserted"] is True
        assert cd["Image"] == f"{served.boot_url}/files/vmedia/{uuid}.iso"
        boot = bmc(peers, 2, "")["Boot"]
        assert boot["BootSourceOverrideTarget"] == "Cd"
        assert bmc(peers, 2, "")["PowerState"] == "On"

        # The ISO the BMC booted holds the instance's ramdisk and kernel command line.
        iso = served.files / "vmedia" / f"{uuid}.iso"
        entry, initrd = _loader_entry_and_initrd(iso, tmp_path)
        assert f"options enclume.node={uuid} console=ttyS0 diskless=1" in entry
        assert initrd == (served.files / INSTANCE_RAMDISK).read_bytes()
        cached = list((served.files / "vmedia" / "cache").glob("iso-*"))
        assert len(cached) == 1 and cached[0].samefile(iso)  # served as a link to the cache

        assert served.api.put(f"/v1/nodes/{uuid}/states/provision",
                              json={"target": "deleted"}).status_code == 202
        eventually(lambda: node_of(served.api, uuid)["provision_state"] == "available", 30,
                   "torn down")
        assert bmc(peers, 2, "/VirtualMedia/Cd")["Inserted"] is False
        assert not iso.exists() and cached[0].exists()  # kept for the next deploy

        patch = [{"op": "add", "path": f"/instance_info/{key}", "value": value} for key, value
                 in (("kernel", INSTANCE_KERNEL), ("ramdisk", INSTANCE_RAMDISK),
                     ("ramdisk_kernel_arguments", "console=ttyS0 diskless=1"))]
        assert served.api.patch(f"/v1/nodes/{uuid}", json=patch).status_code == 200
        inode = cached[0].stat().st_ino
        again = deploy(served.api, uuid)
        assert again["provision_state"] == "active", again["last_error"]
        assert iso.stat().st_ino == inode == cached[0].stat().st_ino  # not built again
        assert bmc(peers, 2, "/VirtualMedia/Cd")["Image"].endswith(f"/vmedia/{uuid}.iso")


def test_an_instance_iso_the_bmc_cannot_download_fails_the_deploy_cleanly_a_boot_iso_boots(
        tmp_path: Path, peers: RedfishPeers) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        unreachable = url_of(closed)
    with stack(tmp_path, iso_url=unreachable) as served:
        uuid = enroll_diskless(served.api, peers, 3, {
            "kernel": f"{served.boot_url}/files/{INSTANCE_KERNEL}",
            "ramdisk": f"{served.boot_url}/files/{INSTANCE_RAMDISK}"})
        failed = deploy(served.api, uuid)
        assert failed["provision_state"] == "deploy failed"
        error = failed["last_error"]
        assert f"could not insert the virtual media ISO {unreachable}/files/vmedia/{uuid}.iso" \
            in error
        assert "Failed fetching image from URL" in error  # the BMC's own words
        assert f"it must reach the boot service at {unreachable}" in error
        assert peers.password not in error
        assert bmc(peers, 3, "/VirtualMedia/Cd")["Inserted"] is False
        assert not (served.files / "vmedia" / f"{uuid}.iso").exists()
        assert failed["power_state"] == "power off"

        # Deployed again with a boot_iso the BMC reaches: inserted from its URL as it is.
        (served.files / "live.iso").write_bytes(b"an ISO the BMC downloads" * 100)
        boot_iso = f"{served.boot_url}/files/live.iso"
        patch = [{"op": "remove", "path": "/instance_info/kernel"},
                 {"op": "remove", "path": "/instance_info/ramdisk"},
                 {"op": "add", "path": "/instance_info/boot_iso", "value": boot_iso}]
        assert served.api.patch(f"/v1/nodes/{uuid}", json=patch).status_code == 200
        active = deploy(served.api, uuid)
        assert active["provision_state"] == "active", active["last_error"]
        cd = bmc(peers, 3, "/VirtualMedia/Cd")
        assert cd["Inserted"] is True and cd["Image"] == boot_iso
        assert bmc(peers, 3, "")["Boot"]["BootSourceOverrideTarget"] == "Cd"
        assert not (served.files / "vmedia" / f"{uuid}.iso").exists()  # nothing built


def bmc_drives(peers: RedfishPeers, index: int) -> list[dict[str, Any]]:
    """The system's virtual media as Ironic's get_vmedia shows them, read from the BMC."""
    with httpx.Client(auth=(peers.username, peers.password)) as client:
        address = peers.emulator.address
        members = bmc(peers, index, "/VirtualMedia")["Members"]
        drives = [client.get(f"{address}{member['@odata.id']}").json() for member in members]
    return [{"media_types": drive["MediaTypes"], "inserted": drive["Inserted"],
             "image": drive.get("Image")} for drive in drives]


def test_vmedia_attach_and_detach_through_the_api(tmp_path: Path, peers: RedfishPeers) -> None:
    with stack(tmp_path) as served:
        api = served.api
        system = peers.emulator.system_ids[4]
        response = api.post("/v1/nodes", json={"driver": "redfish",
                                               "driver_info": peers.driver_info(system)})
        assert response.status_code == 201, response.text
        uuid = response.json()["uuid"]
        image = f"{served.boot_url}/files/{KERNEL}"
        assert api.post(f"/v1/nodes/{uuid}/vmedia",
                        json={"device_type": "cdrom", "image_url": image}).status_code == 204
        # "local": the conductor downloaded it into the boot service's files for the BMC.
        local = f"{served.boot_url}/files/vmedia/{uuid}-cdrom.img"
        eventually(lambda: bmc(peers, 4, "/VirtualMedia/Cd").get("Image") == local, 15,
                   f"the CD holds {local} ({node_of(api, uuid)['last_error']})")
        assert bmc(peers, 4, "/VirtualMedia/Cd")["Inserted"] is True
        assert (served.files / "vmedia" / f"{uuid}-cdrom.img").read_bytes() == (
            served.files / KERNEL).read_bytes()
        assert api.delete(f"/v1/nodes/{uuid}/vmedia",
                          params={"device_types": "cdrom"}).status_code == 204
        eventually(lambda: bmc(peers, 4, "/VirtualMedia/Cd")["Inserted"] is False, 15,
                   "ejected")
        eventually(lambda: not (served.files / "vmedia" / f"{uuid}-cdrom.img").exists(), 5,
                   "the served copy removed")
        # "http": the BMC is given the URL as it is.
        assert api.post(f"/v1/nodes/{uuid}/vmedia", json={
            "device_type": "cdrom", "image_url": image,
            "image_download_source": "http"}).status_code == 204
        eventually(lambda: bmc(peers, 4, "/VirtualMedia/Cd").get("Image") == image, 15,
                   f"the CD holds {image}")
        assert node_of(api, uuid)["last_error"] is None
        # 1.93: the drives as the BMC shows them (404 below it, as Ironic).
        assert api.get(f"/v1/nodes/{uuid}/vmedia",
                       headers={"X-OpenStack-Ironic-API-Version": "1.92"}).status_code == 404
        listed = api.get(f"/v1/nodes/{uuid}/vmedia",
                         headers={"X-OpenStack-Ironic-API-Version": "1.93"})
        assert listed.status_code == 200, listed.text
        assert sorted(listed.json(), key=str) == sorted(bmc_drives(peers, 4), key=str)
        assert {"media_types": ["CD", "DVD"], "inserted": True, "image": image} in listed.json()
