"""A reference PC captured, then its version deployed to another PC by a block restore, in the
lab of tests/integration/test_deploy_restore_blocks.py (enclume-aio and the boot service on one
image store, machines running the real agent behind emulated IPMI BMCs).
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from tests.integration.test_deploy_restore_blocks import (  # noqa: F401 (the lab's fixtures)
    IMAGE_SIZE,
    E,
    StoreLab,
    available_machine,
    lab,
    ok,
    store_lab,
)
from tests.support.deploy_lab import MiB, bootable, disk_head
from tests.support.peers_fixtures import IpmiPeers

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DISK = IMAGE_SIZE + 4 * MiB


def test_a_captured_pc_is_deployed_to_another_pc_byte_identical(
        lab: StoreLab,  # noqa: F811
        ipmi_fleet: IpmiPeers, tmp_path: Path) -> None:
    deploy = lab.lab
    reference = deploy.add_machine(ipmi_fleet, tmp_path, automated_clean=False)
    with reference.disk.open("r+b") as disk, lab.image.open("rb") as image:
        disk.truncate(DISK)
        shutil.copyfileobj(image, disk)
        disk.seek(70 * MiB + 4321)  # what the teacher installed on top of the debian version
        disk.write(b"a package the class needs" * 4096)
    captured = reference.disk.read_bytes()
    deploy.provision(reference, "manage")
    deploy.settled(reference, "manageable")
    ok(deploy.api.post(f"{E}/images", json={"name": "captured"}), 201)
    ok(deploy.api.post(f"{E}/images/captured/capture",
                       json={"node": reference.uuid, "version": "v1"}), 202)
    deploy.settled(reference, "manageable")
    version = ok(deploy.api.get(f"{E}/images/captured"))["versions"][0]
    assert version["checksum"] == hashlib.sha256(captured).hexdigest()
    assert version["size"] == DISK
    # The store had the debian version's blocks: only the one the teacher changed was sent.
    sent = re.findall(r"captured \S+: (\d+) blocks sent", reference.hardware.logs())
    assert sent == ["1"], sent

    target = available_machine(lab, ipmi_fleet, tmp_path)
    deploy.set_image(target, image_source=version["uuid"])
    deploy.provision(target, "active")
    active = deploy.settled(target, "active")
    assert active["last_error"] is None
    assert disk_head(target, DISK) == captured and bootable(target)
