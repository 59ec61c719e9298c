"""Issue #20 end to end in the QEMU lab: a student logs in at a PC's boot prompt, works, the
work is saved, and the student finds it again at another PC.

Its own lab (tests/lab/harness/provisioning.py with `LabLogins`): the API serves https with a
certificate for its provisioning address made here by a throw-away CA, which the boot service
hands to the deploy ramdisk (`enclume.api_ca_url=`); users come from a users file. Two IPMI
PCs of a room whose own switch turns logins on (`pc_logins`, while ENCLUME_PC_LOGIN_AT_BOOT
stays off) in French (`login_language`); a session of the room is on (it restores nothing
itself). The test types at the prompt through each PC's serial line (the ramdisk's console):

1. a restore of the room: both PCs boot the ramdisk and wait at the prompt on the idle VLAN;
2. sam logs in at PC 1 and starts fresh: the PC is restored and boots the test OS on the class
   VLAN; the OS writes files (the student's work);
3. the teacher powers PC 1 off: its BMC reboots it into the ramdisk, which captures sam's
   changes as a state, restores the version (PC 1 clean for the next class) and powers off, its
   port back on the idle VLAN;
4. sam logs in at PC 2 and resumes that state: PC 2 boots on the class VLAN with sam's blocks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ramdisk.build import BuiltRamdisk
from ramdisk.testimages import BuiltTestImages
from services.images.manifest import Manifest
from services.images.store import ImageStore
from tests.lab.conftest import TIMINGS, RecordTiming
from tests.lab.harness import wait_until
from tests.lab.harness.aio import ApiTls
from tests.lab.harness.disk_blocks import block_digests, config_drive_blocks, differing_blocks
from tests.lab.harness.provisioning import (
    PROVISIONING_DHCP_RANGE,
    PROVISIONING_VLAN,
    SERVICE_IPV4,
    LabLogins,
    LabMachine,
    ProvisioningLab,
    sha256_of,
)
from tests.lab.harness.tenant import TenantNetwork
from tests.support.classroom_users import write_users_file
from tests.support.dnsmasq_hash import macs_hashed_alike
from tests.support.throwaway_ca import create_ca, issue_server_certificate

pytestmark = [pytest.mark.lab, pytest.mark.slow]

E = "/enclume/v1"
ROOM = "login-room"
IMAGE = "lab-os"
CLASS_VLAN = 201
CLASS_IPV4, CLASS_IPV6 = "10.89.0.1/24", "fd00:89::1/64"
PASSWORD = "lab login password"
STUDENT = "sam"
PROMPT_TIMEOUT_S = 240.0  # ramdisk boot (IPMI, PXE) to the prompt, on a loaded machine
JOB_TIMEOUT_S = 300.0
REPORT_TIMEOUT_S = 120.0
# The French prompt (agent/login_texts.py), its ASCII parts: the serial log is UTF-8.
USER_NAME = "Nom d'utilisateur : "
PASSWORD_PROMPT = "Mot de passe (masqu"
CHOICE = "Votre choix ["


@dataclass
class LoginLab:
    lab: ProvisioningLab
    pc1: LabMachine
    pc2: LabMachine
    class_network: TenantNetwork
    session_start: datetime


@pytest.fixture(scope="module")
def login_lab(tmp_path_factory: pytest.TempPathFactory, deploy_ramdisk: BuiltRamdisk,
              test_images: BuiltTestImages) -> Iterator[LoginLab]:
    started = time.monotonic()
    top = tmp_path_factory.mktemp("pclogin")
    ca = create_ca(top / "ca", "Enclume lab API CA")
    address = SERVICE_IPV4.split("/")[0]
    server = issue_server_certificate(ca, top / "tls", (address, "127.0.0.1"))
    users = write_users_file(top, {"ada": (["admin"], []),
                                   STUDENT: (["student"], [ROOM])}, PASSWORD)
    logins = LabLogins(ApiTls(server.cert_file, server.key_file, ca.cert_file), users,
                       ("ada", PASSWORD))
    with ProvisioningLab(top / "lab", deploy_ramdisk, test_images, logins=logins) as lab:
        macs = macs_hashed_alike(2, PROVISIONING_DHCP_RANGE)
        pc1 = lab.add_machine("pc-1", "ipmi", mac=macs[0])
        pc2 = lab.add_machine("pc-2", "ipmi", mac=macs[1])
        lab.enroll(lab.write_inventory())
        for pc in (pc1, pc2):  # empty disks: nothing to clean
            lab.call("PATCH", f"/v1/nodes/{pc.name}", [
                {"op": "replace", "path": "/automated_clean", "value": False}])
            lab.provision(pc.name, "manage")
        wait_for_states(lab, [pc1, pc2], "manageable")
        for pc in (pc1, pc2):
            lab.provision(pc.name, "provide")
        wait_for_states(lab, [pc1, pc2], "available")
        class_network = lab.add_tenant_network("class", CLASS_VLAN, CLASS_IPV4, CLASS_IPV6)
        lab.call("POST", f"{E}/images", {"name": IMAGE})
        lab.call("POST", f"{E}/images/{IMAGE}/versions", {
            "version": "v1", "source": lab.boot.file_url("images/disk.raw"),
            "image_type": "whole-disk", "disk_format": "raw", "boot_mode": "bios",
            "checksum": sha256_of(lab.images.checksum_file(lab.images.disk_raw)),
            "fetch": True})
        wait_until(lambda: lab.call("GET", f"{E}/images/{IMAGE}")["versions"][0]["state"]
                   == "available", 120, "the image version to be fetched into the store")
        lab.call("POST", f"{E}/rooms", {
            "name": ROOM, "time_zone": "UTC", "idle_vlan": PROVISIONING_VLAN,
            "class_vlan": CLASS_VLAN, "allowed_images": [IMAGE], "default_image": IMAGE,
            "pcs": [pc1.name, pc2.name], "pc_logins": True, "login_language": "fr"})
        # The class: from the next minute on; it restores nothing itself (the teacher does).
        start = (datetime.now(UTC) + timedelta(seconds=70)).replace(second=0, microsecond=0)
        lab.call("POST", f"{E}/sessions", {
            "room": ROOM, "image": f"{IMAGE}:v1", "name": "networks",
            "start": start.strftime("%Y-%m-%dT%H:%M"),
            "end": (start + timedelta(minutes=40)).strftime("%Y-%m-%dT%H:%M"),
            "before": "none", "after": "nothing"})
        TIMINGS.append(("pc logins", "lab up, 2 PCs enrolled and available, image, room, "
                                     "session", time.monotonic() - started))
        yield LoginLab(lab, pc1, pc2, class_network, start)


def deploy_blocks(machine: LabMachine, manifest: Manifest) -> set[int]:
    """The blocks every deploy of the version writes besides the image: the config drive's
    partition and, in block 0, its entry in the MBR (the test image's table has none)."""
    return config_drive_blocks(machine, manifest) | {0}


def wait_for_states(lab: ProvisioningLab, machines: list[LabMachine], state: str) -> None:
    def settled() -> bool:
        nodes = [lab.node(pc.name) for pc in machines]
        return all(n["provision_state"] == state and n["target_provision_state"] is None
                   for n in nodes)
    wait_until(settled, 120, f"the PCs to be {state}", interval=0.5)


def room_job(lab: ProvisioningLab, body: dict[str, Any]) -> str:
    job: dict[str, Any] = lab.call("POST", f"{E}/rooms/{ROOM}/actions", body)
    return str(job["uuid"])


def job_pcs(lab: ProvisioningLab, job: str) -> dict[str, dict[str, Any]]:
    return {pc["node"]: pc for pc in lab.call("GET", f"{E}/jobs/{job}")["pcs"]}


def wait_for_pc_outcome(lab: ProvisioningLab, job: str, machine: LabMachine) -> None:
    seen: dict[str, Any] = {}

    def ended() -> bool:
        seen.update(job_pcs(lab, job)[machine.name])
        return seen.get("outcome") not in (None, "", "queued", "running")
    wait_until(ended, JOB_TIMEOUT_S, f"{machine.name}'s part of job {job}", interval=0.5,
               on_timeout=lambda: f"{seen}\n{machine.qemu.serial_text()[-3000:]}")
    assert seen["outcome"] == "succeeded", (seen, lab.node(machine.name)["last_error"])


def expect_serial(machine: LabMachine, text: str, after: int,
                  timeout_s: float = 60.0) -> tuple[int, str]:
    """Wait until `text` shows on the machine's serial console after offset `after` (in the
    whole log); (the offset just past it, what showed from `after` up to it)."""
    def shown() -> bool:
        return text in machine.qemu.serial_text(since_start=False)[after:]
    wait_until(shown, timeout_s, f"{text!r} on {machine.name}'s console", interval=0.3,
               on_timeout=lambda: machine.qemu.serial_text(since_start=False)[after:][-3000:])
    log = machine.qemu.serial_text(since_start=False)
    end = log.index(text, after) + len(text)
    return end, log[after:end]


def log_in(login: LoginLab, machine: LabMachine, after: int, choice: str) -> tuple[int, str]:
    """sam logs in at the machine's prompt (shown after `after`) and types `choice`; (the
    console's offset then, the choices screen)."""
    wait_until(lambda: datetime.now(UTC) >= login.session_start, 90,
               "the class to begin")
    end, _ = expect_serial(machine, USER_NAME, after, PROMPT_TIMEOUT_S)
    assert login.lab.switch_vlan(machine) == PROVISIONING_VLAN  # at the prompt: the idle VLAN
    machine.qemu.type_serial(STUDENT)
    end, _ = expect_serial(machine, PASSWORD_PROMPT, end)
    machine.qemu.type_serial(PASSWORD)
    end, screen = expect_serial(machine, CHOICE, end)
    machine.qemu.type_serial(choice)
    return end, screen


def test_a_student_logs_in_works_is_saved_and_resumes_at_another_pc(
        login_lab: LoginLab, record_timing: RecordTiming, tmp_path: Path) -> None:
    lab, pc1, pc2 = login_lab.lab, login_lab.pc1, login_lab.pc2
    network = login_lab.class_network
    network.reports.answers[f"booted {pc1.name} {pc1.node_uuid}"] = "write-files"
    consoles = {pc.name: len(pc.qemu.serial_text(since_start=False)) for pc in (pc1, pc2)}
    asked = time.monotonic()
    restore = room_job(lab, {"action": "restore"})

    # 1 + 2: sam at PC 1, a fresh start; the OS comes up on the class VLAN and writes files.
    _, screen = log_in(login_lab, pc1, consoles[pc1.name], "1")
    prompt = time.monotonic()
    assert f"Bonjour {STUDENT}" in screen and "Repartir de z" in screen, screen
    assert "Reprendre" not in screen  # no state yet
    wait_for_pc_outcome(lab, restore, pc1)
    wait_until(lambda: lab.tenant_report(pc1, asked, network) is not None, REPORT_TIMEOUT_S,
               "PC 1's OS to report on the class VLAN")
    up = time.monotonic()
    assert lab.switch_vlan(pc1) == CLASS_VLAN
    assert lab.node(pc1.name)["driver_internal_info"]["pc_login"]["user"] == STUDENT
    assert pc1.qemu.wait_for_serial("wrote files on /dev/vda1", REPORT_TIMEOUT_S)
    [version] = lab.call("GET", f"{E}/images/{IMAGE}")["versions"]
    manifest = ImageStore(lab.image_store_dir, 1 << 40).manifest(version["uuid"])
    drive = deploy_blocks(pc1, manifest)
    work = block_digests(pc1, manifest, tmp_path)
    changed = {i for i, digest in enumerate(work) if digest != manifest.blocks[i]} - drive
    assert changed, "the OS wrote nothing outside its config drive"

    # 3: the teacher powers PC 1 off: sam's work is saved first, then PC 1 is clean and off.
    saving = time.monotonic()
    power_off = room_job(lab, {"action": "power-off", "pcs": [pc1.name]})
    wait_for_pc_outcome(lab, power_off, pc1)
    saved = time.monotonic()
    [state] = lab.call("GET", f"{E}/student-states?owner={STUDENT}")["student_states"]
    assert state["image_version"] == version["uuid"] and state["room"] == ROOM, state
    assert state["size_bytes"] > 0, state
    assert pc1.bmc.power_state() == "off"
    assert lab.switch_vlan(pc1) == PROVISIONING_VLAN
    assert "pc_login" not in lab.node(pc1.name)["driver_internal_info"]
    assert set(differing_blocks(pc1, manifest, tmp_path)) <= drive  # clean for the next class

    # 4: sam at PC 2 (waiting at its prompt since the restore) resumes the state.
    _, screen = log_in(login_lab, pc2, consoles[pc2.name], "2")
    resumed_at = time.monotonic()
    assert "2) Reprendre" in screen and state["label"] in screen, screen
    wait_for_pc_outcome(lab, restore, pc2)
    wait_until(lambda: lab.tenant_report(pc2, resumed_at, network) is not None,
               REPORT_TIMEOUT_S, "PC 2's OS to report on the class VLAN")
    resumed = time.monotonic()
    assert lab.switch_vlan(pc2) == CLASS_VLAN
    node = lab.node(pc2.name)
    assert node["instance_info"]["student_state"] == state["uuid"], node["instance_info"]
    found = block_digests(pc2, manifest, tmp_path)
    theirs = changed - deploy_blocks(pc2, manifest)
    assert theirs and all(found[i] == work[i] for i in theirs), sorted(
        i for i in theirs if found[i] != work[i])
    record_timing("restore asked -> sam logged in at PC 1's prompt", prompt - asked)
    record_timing("login at PC 1 -> its OS up on the class VLAN", up - prompt)
    record_timing(f"teacher's power-off of PC 1 -> sam's state saved "
                  f"({state['size_bytes']} bytes), PC 1 restored and off", saved - saving)
    record_timing("resume at PC 2 -> its OS up on the class VLAN with sam's work",
                  resumed - resumed_at)
