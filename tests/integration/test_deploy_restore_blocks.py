"""Block restores driven by the conductor: deploys of catalogue versions the image store holds,
and room restores (jobs through the classroom API) choosing delta or full; a delta deploy on a
disk that loses writes (tests/support/faulty_disk.py) ends active only once the agent verified.

All real: ``enclume-aio`` (API, conductor, job advancer) on SQLite, the boot service's HTTP app
serving the image store's range reads, machines running the real agent on file-backed disks
behind emulated IPMI BMCs (tests/support/deploy_lab.py). The store is the one directory both
the conductor (ENCLUME_IMAGE_STORE_DIR) and the boot service read.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.common.db import Database
from services.images.store import ImageStore
from tests.support.aio import running_aio
from tests.support.asgi import bound_socket, url_of
from tests.support.deploy_lab import (
    DISK_BYTES,
    HEADERS,
    DeployLab,
    Machine,
    MiB,
    boot_service,
    bootable,
    disk_head,
    require_agent_python,
    write_boot_files,
)
from tests.support.disk_images import change_disk, differing_blocks, make_os_image
from tests.support.faulty_disk import mounted_faulty_disk, used_disk
from tests.support.peers_fixtures import IpmiPeers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

E = "/enclume/v1"
IMAGE_SIZE = 128 * MiB
JOB_TIMEOUT_S = 120.0
LOST_RANGE = (8 * MiB, 8 * MiB + 4096)  # in block 2, where the faulty disk loses writes


@dataclass
class StoreLab:
    lab: DeployLab
    store: ImageStore
    image: Path
    version: str  # debian:v1, held by the store
    broken: str  # broken:v1, one of its blocks corrupt in the store
    broken_image: Path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def add_version(api: httpx.Client, store: ImageStore, name: str, image: Path,
                boot_url: str) -> str:
    """A catalogue image with one version, also in the store under the version's UUID."""
    created = ok(api.post(f"{E}/images", json={"name": name, "versions": [{
        "version": "v1", "source": f"{boot_url}/files/{image.name}",
        "checksum": sha256_of(image)}]}), 201)
    uuid = str(created["versions"][0]["uuid"])
    store.ingest_file(uuid, image, sha256_of(image))
    return uuid


@pytest.fixture(scope="module")
def store_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreLab]:
    require_agent_python()
    base = tmp_path_factory.mktemp("deploy-blocks")
    images = write_boot_files(base / "boot-files")
    image = base / "boot-files" / "reference.img"
    make_os_image(image, IMAGE_SIZE)
    broken_image = base / "boot-files" / "broken.img"
    shutil.copyfile(image, broken_image)
    with broken_image.open("r+b") as handle:  # other blocks than the reference's
        handle.seek(8 * MiB)
        handle.write(b"broken" * MiB)
    store_dir = base / "image-store"
    boot_socket = bound_socket()
    token_secret = "deploy-blocks-image-token-secret"  # the conductor's and the boot service's
    env = {"ENCLUME_BOOT_PUBLIC_URL": url_of(boot_socket),
           "ENCLUME_IMAGE_TOKEN_SECRET": token_secret,
           "ENCLUME_IMAGE_STORE_DIR": str(store_dir), "ENCLUME_CLASSROOM_INTERVAL_S": "0.3",
           "ENCLUME_POWER_POLL_INTERVAL_S": "0.1", "ENCLUME_AGENT_HEARTBEAT_TIMEOUT_S": "3"}
    data_dir = base / "aio"
    with running_aio(data_dir, env=env) as aio:
        db = Database(f"sqlite:///{data_dir / 'enclume.sqlite'}")
        with boot_service(base, db, base / "boot-files", boot_socket, store_dir,
                          token_secret) as boot_url, \
                httpx.Client(base_url=aio.url, headers=HEADERS, timeout=30) as api:
            store = ImageStore(store_dir, 4 * IMAGE_SIZE)
            version = add_version(api, store, "debian", image, boot_url)
            broken = add_version(api, store, "broken", broken_image, boot_url)
            corrupt_a_block(store, broken, store.manifest(version).blocks)
            yield StoreLab(DeployLab(api, boot_url, db, images), store, image, version, broken,
                           broken_image)


def corrupt_a_block(store: ImageStore, version: str, other: list[str | None]) -> None:
    """Flip a byte of a block of ``version`` that no other version has (a rotting disk)."""
    shared = set(other)
    digest = next(d for d in store.manifest(version).blocks if d and d not in shared)
    path = store.layout.block(digest)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))


@pytest.fixture
def lab(store_lab: StoreLab, ipmi_fleet: IpmiPeers) -> Iterator[StoreLab]:
    try:
        yield store_lab
    finally:
        store_lab.lab.close_machines()


def available_machine(lab: StoreLab, fleet: IpmiPeers, tmp_path: Path) -> Machine:
    machine = lab.lab.add_machine(fleet, tmp_path, automated_clean=False)
    lab.lab.make_available(machine)
    return machine


def identical(machine: Machine, image: Path) -> bool:
    return hashlib.sha256(disk_head(machine, IMAGE_SIZE)).hexdigest() == sha256_of(image)


def written(lab: StoreLab, machine: Machine) -> dict[str, Any]:
    return dict(lab.lab.stored_internal_info(machine.uuid).get("image_written") or {})


def data_bytes(lab: StoreLab, version: str, indexes: list[int]) -> int:
    manifest = lab.store.manifest(version)
    return sum(manifest.block_length(i) for i in indexes if manifest.blocks[i] is not None)


def run_job(lab: StoreLab, machine: Machine, action: str) -> dict[str, Any]:
    api = lab.lab.api
    job = ok(api.post(f"{E}/rooms/B12/actions", json={"action": action, "image": "debian:v1",
                                                      "pcs": [machine.uuid]}), 202)
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job = ok(api.get(f"{E}/jobs/{job['uuid']}"))
        if job["state"] in ("done", "failed-partly"):
            return dict(job["pcs"][0])
        time.sleep(0.2)
    raise AssertionError(f"job still {job['state']}: {job['pcs']}\n{machine.hardware.logs()}")


def make_room(lab: StoreLab, *machines: Machine) -> None:
    api = lab.lab.api
    api.delete(f"{E}/rooms/B12")
    ok(api.post(f"{E}/rooms", json={"name": "B12", "time_zone": "UTC",
                                    "allowed_images": ["debian"],
                                    "pcs": [m.uuid for m in machines]}), 201)


def test_a_catalogue_version_is_deployed_by_a_full_block_restore(
        lab: StoreLab, ipmi_fleet: IpmiPeers, tmp_path: Path) -> None:
    machine = available_machine(lab, ipmi_fleet, tmp_path)
    lab.lab.set_image(machine, image_source=f"{lab.lab.boot_url}/image-versions/"
                                            f"{lab.version}/disk")
    lab.lab.provision(machine, "active")
    active = lab.lab.settled(machine, "active")
    assert active["last_error"] is None
    assert identical(machine, lab.image) and bootable(machine)
    record = written(lab, machine)
    manifest = lab.store.manifest(lab.version)
    assert record == {"version": lab.version, "method": "restore_blocks", "mode": "full",
                      "fell_back_to_full": False, "differing_blocks": None,
                      "fetched_bytes": manifest.data_bytes, "image_size": IMAGE_SIZE}


def test_room_restores_choose_full_then_delta_and_fetch_only_what_differs(
        lab: StoreLab, ipmi_fleet: IpmiPeers, tmp_path: Path) -> None:
    machine = available_machine(lab, ipmi_fleet, tmp_path)
    make_room(lab, machine)
    first = run_job(lab, machine, "restore")  # the PC never had this image: full
    assert first["outcome"] == "succeeded", first
    assert first["restore_mode"] == "full" and first["image_bytes"] == IMAGE_SIZE
    assert first["fetched_bytes"] == lab.store.manifest(lab.version).data_bytes
    assert identical(machine, lab.image)

    # A class changes ~2% of the disk: files in a package-like tree, the partition table.
    used = tmp_path / "used.img"
    shutil.copyfile(lab.image, used)
    change_disk(used, 0.02)
    with machine.disk.open("r+b") as disk:
        disk.write(used.read_bytes())
    changed = differing_blocks(used, lab.image, lab.store.manifest(lab.version).block_size)
    assert 0 in changed and 1 < len(changed) < 16, changed

    second = run_job(lab, machine, "restore")  # the same image as last time: delta
    assert second["outcome"] == "succeeded", second
    assert second["restore_mode"] == "delta"
    assert second["fetched_bytes"] == data_bytes(lab, lab.version, changed)
    assert second["image_bytes"] == IMAGE_SIZE
    assert identical(machine, lab.image) and bootable(machine)
    assert written(lab, machine)["differing_blocks"] == len(changed)


def test_a_forced_delta_on_a_disk_holding_something_else_restores_it_all(
        lab: StoreLab, ipmi_fleet: IpmiPeers, tmp_path: Path) -> None:
    machine = available_machine(lab, ipmi_fleet, tmp_path)
    make_room(lab, machine)
    with machine.disk.open("r+b") as disk:  # another system's bytes over the first 40 MiB
        disk.write(hashlib.sha256(b"other").digest() * (40 * MiB // 32))
    changed = differing_blocks(machine.disk, lab.image,
                               lab.store.manifest(lab.version).block_size, IMAGE_SIZE)
    assert len(changed) >= 10
    pc = run_job(lab, machine, "restore-delta")
    assert pc["outcome"] == "succeeded", pc
    assert pc["restore_mode"] == "delta"
    assert pc["fetched_bytes"] == data_bytes(lab, lab.version, changed)
    assert identical(machine, lab.image) and bootable(machine)


def test_a_corrupt_store_block_fails_the_deploy_and_never_reaches_active(
        lab: StoreLab, ipmi_fleet: IpmiPeers, tmp_path: Path) -> None:
    machine = available_machine(lab, ipmi_fleet, tmp_path)
    lab.lab.set_image(machine, image_source=lab.broken)  # the version's UUID, as Glance's
    lab.lab.provision(machine, "active")
    failed = lab.lab.settled(machine, "deploy failed")
    error = failed["last_error"] or ""
    assert error.startswith(f"Deploy failed for node {machine.uuid}:"), error
    assert "failed its sha256" in error, error
    assert not bootable(machine)
    assert written(lab, machine) == {}


def test_a_disk_smaller_than_the_image_fails_before_anything_is_written(
        lab: StoreLab, ipmi_fleet: IpmiPeers, tmp_path: Path) -> None:
    machine = available_machine(lab, ipmi_fleet, tmp_path)
    old = b"old system " * (MiB // 11)
    with machine.disk.open("r+b") as disk:
        disk.truncate(IMAGE_SIZE // 2)
        disk.write(old)
    lab.lab.set_image(machine, image_version=lab.version, image_restore="delta",
                      image_source=f"{lab.lab.boot_url}/files/{lab.image.name}",
                      image_os_hash_algo="sha256", image_os_hash_value=sha256_of(lab.image))
    lab.lab.provision(machine, "active")
    failed = lab.lab.settled(machine, "deploy failed")
    assert "refused, nothing was written" in (failed["last_error"] or ""), failed["last_error"]
    assert disk_head(machine, len(old)) == old


@pytest.mark.parametrize(("lost_writes", "state"), [(3, "active"), (1000, "deploy failed")])
def test_a_delta_deploy_on_a_disk_that_loses_writes_is_active_only_once_verified(
        lab: StoreLab, ipmi_fleet: IpmiPeers, tmp_path: Path, lost_writes: int,
        state: str) -> None:
    """Lost 3 times (the delta and both refetch rounds), the agent's full write lands: active,
    recorded as fallen back. Never kept: deploy failed naming the block, the disk wiped."""
    assert lab.store.manifest(lab.version).blocks[2] is not None
    machine = available_machine(lab, ipmi_fleet, tmp_path)
    backing = used_disk(tmp_path / "backing.img", lab.image, DISK_BYTES, LOST_RANGE[0])
    with mounted_faulty_disk(backing, tmp_path, [(*LOST_RANGE, lost_writes)]) as disk:
        machine.hardware.disk = disk.path  # what its agent boots with
        try:
            lab.lab.set_image(machine, image_source=lab.version, image_restore="delta")
            lab.lab.provision(machine, "active")
            node = lab.lab.settled(machine, state)
            counts = disk.counts()
        finally:
            lab.lab.close_machines()  # the agent lets go of the disk before it is unmounted
    lost = counts["ranges"][0]  # type: ignore[index]
    if state == "active":
        assert node["last_error"] is None
        assert lost["dropped"] == 3 and lost["landed"] == 1, counts
        record = written(lab, machine)
        assert record["fell_back_to_full"] is True and record["mode"] == "delta", record
        with backing.open("rb") as restored:
            assert hashlib.sha256(restored.read(IMAGE_SIZE)).hexdigest() == sha256_of(lab.image)
    else:
        error = node["last_error"] or ""
        assert "do not match the manifest after the restore (first: block 2)" in error, error
        assert lost["landed"] == 0, counts
        assert written(lab, machine) == {}
        with backing.open("rb") as head:
            assert head.read(MiB) == bytes(MiB), "the MBR must be wiped"
