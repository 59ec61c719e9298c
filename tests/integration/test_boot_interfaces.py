"""The ipxe and pxe boot interfaces in a real enclume-aio, driven through the API, with the
boot service's HTTP app reading the same database: the desired boot is written and removed at
the right steps of cleaning, deploy and undeploy, and validate says clearly what is missing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from services.boot.http import create_boot_app
from services.common.config import Settings
from services.common.db import Database
from services.common.models import Port
from tests.support.aio import Server, running_aio
from tests.support.asgi import bound_socket, serving, url_of
from tests.support.polling import eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}
DEPLOY_DELAY_S = 1.0
KERNEL, RAMDISK = "deploy.kernel", "deploy.initramfs"


@dataclass
class Lab:
    api: httpx.Client
    aio: Server
    boot_url: str
    db: Database


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("boot-interfaces")
    files = base / "boot-files"
    files.mkdir()
    (files / KERNEL).write_bytes(b"kernel")
    (files / RAMDISK).write_bytes(b"ramdisk")
    boot_socket = bound_socket()
    boot_url = url_of(boot_socket)
    env = {"ENCLUME_BOOT_PUBLIC_URL": boot_url,
           "ENCLUME_FAKE_DEPLOY_DELAY_S": f"[{DEPLOY_DELAY_S}, {DEPLOY_DELAY_S}]",
           "ENCLUME_KERNEL_APPEND_PARAMS": "console=ttyS0"}
    data_dir = base / "aio"
    with running_aio(data_dir, env=env) as aio:
        db = Database(f"sqlite:///{data_dir / 'enclume.sqlite'}")
        settings = Settings(
            process={"data_dir": base},
            boot={"files_dir": files, "public_url": boot_url},
        )
        with serving(create_boot_app(settings, db), boot_socket), \
                httpx.Client(base_url=aio.url, headers=HEADERS, timeout=10) as api:
            yield Lab(api, aio, boot_url, db)


_MAC = iter(range(0x100, 1 << 24))


def new_node(lab: Lab, port: bool = True, **fields: Any) -> tuple[str, str]:
    """A fake-hardware node (ipxe boot unless said); returns its UUID and its port's MAC."""
    body = {"driver": "fake-hardware", "boot_interface": "ipxe",
            "driver_info": {"deploy_kernel": KERNEL, "deploy_ramdisk": RAMDISK}, **fields}
    response = lab.api.post("/v1/nodes", json=body)
    assert response.status_code == 201, response.text
    uuid = response.json()["uuid"]
    i = next(_MAC)
    mac = f"52:54:01:{i >> 16 & 0xff:02x}:{i >> 8 & 0xff:02x}:{i & 0xff:02x}"
    if port:
        created = lab.api.post("/v1/ports", json={"node_uuid": uuid, "address": mac})
        assert created.status_code == 201, created.text
    return uuid, mac


def node(lab: Lab, uuid: str) -> dict[str, Any]:
    response = lab.api.get(f"/v1/nodes/{uuid}")
    assert response.status_code == 200
    return dict(response.json())


def boot_of(lab: Lab, uuid: str) -> dict[str, Any] | None:
    return node(lab, uuid)["driver_internal_info"].get("boot")


def script(lab: Lab, mac: str) -> str:
    return httpx.get(f"{lab.boot_url}/boot.ipxe", params={"mac": mac}).text


def provision(lab: Lab, uuid: str, target: str) -> None:
    response = lab.api.put(f"/v1/nodes/{uuid}/states/provision", json={"target": target})
    assert response.status_code == 202, response.text


def settled_in(lab: Lab, uuid: str, state: str) -> dict[str, Any]:
    def settled() -> dict[str, Any] | None:
        current = node(lab, uuid)
        assert current["provision_state"] not in ("deploy failed", "clean failed"), current
        return current if current["provision_state"] == state else None
    return dict(eventually(settled, 20, f"{uuid} to reach {state}"))


def ramdisk_while(lab: Lab, uuid: str, state: str) -> dict[str, Any]:
    """The desired boot seen while the node is in ``state`` (the fake step takes a while)."""
    def seen() -> dict[str, Any] | None:
        current = node(lab, uuid)
        boot = current["driver_internal_info"].get("boot")
        return current if current["provision_state"] == state and boot else None
    return dict(eventually(seen, 20, f"a desired boot while {state}"))


def test_desired_boot_follows_cleaning_deploy_and_undeploy(lab: Lab) -> None:
    uuid, mac = new_node(lab, properties={"capabilities": "boot_mode:bios"})
    validation = lab.api.get(f"/v1/nodes/{uuid}/validate").json()
    assert validation["boot"] == {"result": True}, validation["boot"]
    assert boot_of(lab, uuid) is None

    provision(lab, uuid, "manage")
    settled_in(lab, uuid, "manageable")
    provision(lab, uuid, "provide")  # automated cleaning boots the ramdisk
    cleaning = ramdisk_while(lab, uuid, "cleaning")["driver_internal_info"]["boot"]
    assert cleaning["mode"] == "ramdisk" and cleaning["boot_loader"] == "ipxe"
    settled_in(lab, uuid, "available")
    assert boot_of(lab, uuid) is None
    assert script(lab, mac).splitlines()[-1] == "exit"

    provision(lab, uuid, "active")
    deploying = ramdisk_while(lab, uuid, "deploying")
    boot = deploying["driver_internal_info"]["boot"]
    assert boot == {
        "mode": "ramdisk",
        "kernel": f"{lab.boot_url}/files/{KERNEL}",
        "ramdisk": f"{lab.boot_url}/files/{RAMDISK}",
        "kernel_params": f"enclume.api_url={lab.aio.url} enclume.node={uuid} console=ttyS0",
        "boot_mode": "bios",
        "boot_loader": "ipxe",
    }
    # the next boot from the network was asked of the management interface
    assert deploying["driver_internal_info"]["fake_boot_device"] == {
        "boot_device": "pxe", "persistent": False}
    # what the machine's iPXE would get from the boot service right now
    text = script(lab, mac)
    assert f"kernel {lab.boot_url}/files/{KERNEL} initrd=ramdisk" in text
    assert f"enclume.node={uuid}" in text
    # the kernel and ramdisk URLs the conductor wrote are served by the boot service
    assert httpx.get(boot["kernel"]).content == b"kernel"
    assert httpx.get(boot["ramdisk"]).content == b"ramdisk"

    active = settled_in(lab, uuid, "active")
    # fake management sets the boot device: the disk, persistently, and no network answers
    assert "boot" not in active["driver_internal_info"]
    assert active["driver_internal_info"]["fake_boot_device"] == {
        "boot_device": "disk", "persistent": True}
    assert script(lab, mac).splitlines()[-1] == "exit"

    provision(lab, uuid, "deleted")  # tear down, then automated cleaning again
    assert ramdisk_while(lab, uuid, "cleaning")["driver_internal_info"]["boot"]["mode"] == \
        "ramdisk"
    settled_in(lab, uuid, "available")
    assert boot_of(lab, uuid) is None


def test_pxe_records_that_the_firmware_loads_ipxe_over_tftp(lab: Lab) -> None:
    uuid, _ = new_node(lab, boot_interface="pxe", automated_clean=False)
    provision(lab, uuid, "manage")
    settled_in(lab, uuid, "manageable")
    provision(lab, uuid, "provide")
    settled_in(lab, uuid, "available")
    provision(lab, uuid, "active")
    boot = ramdisk_while(lab, uuid, "deploying")["driver_internal_info"]["boot"]
    assert boot["boot_loader"] == "pxe" and boot["mode"] == "ramdisk"
    assert boot["boot_mode"] == "uefi"  # the default boot mode
    settled_in(lab, uuid, "active")


def boot_reason(lab: Lab, uuid: str) -> str:
    result = lab.api.get(f"/v1/nodes/{uuid}/validate").json()["boot"]
    assert result["result"] is False, result
    return str(result["reason"])


def test_validate_explains_what_is_missing(lab: Lab) -> None:
    portless, _ = new_node(lab, port=False)
    assert "has no port" in boot_reason(lab, portless)

    no_kernel, _ = new_node(lab, driver_info={"deploy_ramdisk": RAMDISK})
    reason = boot_reason(lab, no_kernel)
    assert "has no deploy_kernel" in reason and "ENCLUME_DEPLOY_KERNEL" in reason
    # and a deploy is refused with that reason, changing nothing
    provision(lab, no_kernel, "manage")
    settled_in(lab, no_kernel, "manageable")
    lab.api.patch(f"/v1/nodes/{no_kernel}", json=[
        {"op": "replace", "path": "/automated_clean", "value": False}])
    provision(lab, no_kernel, "provide")
    settled_in(lab, no_kernel, "available")
    refused = lab.api.put(f"/v1/nodes/{no_kernel}/states/provision", json={"target": "active"})
    assert refused.status_code == 400 and "deploy_kernel" in refused.text
    assert node(lab, no_kernel)["provision_state"] == "available"

    absent, _ = new_node(lab, driver_info={"deploy_kernel": "no-such.kernel",
                                           "deploy_ramdisk": RAMDISK})
    assert "does not exist (HTTP 404)" in boot_reason(lab, absent)

    escaping, _ = new_node(lab, driver_info={"deploy_kernel": "../../etc/passwd",
                                             "deploy_ramdisk": RAMDISK})
    assert "'..' segment" in boot_reason(lab, escaping)

    injecting, _ = new_node(lab, driver_info={"deploy_kernel": KERNEL, "deploy_ramdisk": RAMDISK,
                                              "kernel_append_params": "quiet || shell"})
    assert "may not contain '||'" in boot_reason(lab, injecting)

    unreachable, _ = new_node(lab, driver_info={"deploy_kernel": "http://127.0.0.1:9/k",
                                                "deploy_ramdisk": RAMDISK})
    assert "cannot be reached" in boot_reason(lab, unreachable)

    no_pxe, pxe_mac = new_node(lab)
    port = lab.api.get("/v1/ports", params={"address": pxe_mac}).json()["ports"][0]
    patched = lab.api.patch(f"/v1/ports/{port['uuid']}", json=[
        {"op": "replace", "path": "/pxe_enabled", "value": False}])
    assert patched.status_code == 200, patched.text
    assert "no port with pxe_enabled" in boot_reason(lab, no_pxe)

    # the API refuses ports without a MAC; one in the database (older data) is reported
    macless, mac = new_node(lab)
    with lab.db.session() as session:
        session.execute(update(Port).where(Port.address == mac).values(address=""))
    assert "no valid MAC address" in boot_reason(lab, macless)
