"""A deploy carries the session service's token: with ENCLUME_SESSION_SERVICE_ENABLED, the
conductor builds a config drive for a direct deploy without one, the real agent writes it to the
machine's (file-backed) disk, and the session service script, given what that partition holds,
is accepted by the API. The pieces are test_deploy_agent.py's (enclume-aio, the boot service's
HTTP app, a machine that runs the real agent behind an emulated IPMI BMC)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.common import session_service
from services.common.models import Node
from tests.integration.test_agent_harness import whole_disk_image
from tests.support.deploy_lab import DeployLab, MiB, running_deploy_lab
from tests.support.peers_fixtures import IpmiPeers
from tests.support.session_service import SCRIPT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECTOR = 512
ISO_LABEL_AT = 16 * 2048 + 40


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployLab]:
    with running_deploy_lab(tmp_path_factory.mktemp("session-deploy"),
                            {"ENCLUME_SESSION_SERVICE_ENABLED": "true"}) as lab:
        try:
            yield lab
        finally:
            lab.close_machines()


def config_drive_partition(disk: Path, directory: Path) -> Path:
    """The partition of ``disk`` labelled config-2, copied to a file."""
    table = json.loads(subprocess.run(["sfdisk", "--json", str(disk)], capture_output=True,
                                      check=True, text=True).stdout)["partitiontable"]
    with disk.open("rb") as handle:
        for part in table["partitions"]:
            handle.seek(part["start"] * SECTOR + ISO_LABEL_AT)
            if handle.read(8) == b"config-2":
                handle.seek(part["start"] * SECTOR)
                copy = directory / "config-2.iso"
                copy.write_bytes(handle.read(part["size"] * SECTOR))
                return copy
    raise AssertionError(f"no config-2 partition on {disk}: {table}")


def iso_file(iso: Path, path: str) -> Any:
    return json.loads(subprocess.run(["isoinfo", "-i", str(iso), "-J", "-x", path],
                                     capture_output=True, check=True).stdout)


def test_a_deploy_writes_a_token_the_api_takes(lab: DeployLab, ipmi_fleet: IpmiPeers,
                                               tmp_path: Path) -> None:
    machine = lab.add_machine(ipmi_fleet, tmp_path, name="cd-pc1")
    lab.make_available(machine)
    image = Path(lab.images["raw"]).with_name("partitioned.raw")
    whole_disk_image(image, 8 * MiB)
    lab.images["partitioned"] = image
    info = lab.image_info("partitioned", image_download_source="http")
    info["image_disk_format"] = "raw"
    lab.set_image(machine, **info)
    lab.provision(machine, "active")
    assert lab.settled(machine, "active")["last_error"] is None

    iso = config_drive_partition(machine.disk, tmp_path)
    assert iso_file(iso, "/openstack/latest/meta_data.json")["uuid"] == machine.uuid
    settings = iso_file(iso, "/enclume/session-service.json")
    assert settings["node"] == machine.uuid and settings["api_url"] == str(lab.api.base_url)
    with lab.db.session() as session:
        node_id = session.scalar(select(Node.id).where(Node.uuid == machine.uuid))
        row = session_service.find(session, node_id)  # type: ignore[arg-type]
        assert row is not None and row.last_seen_at is None
        assert row.token_hash == session_service.token_hash(settings["token"])
    # The token is in no API answer.
    for path in (f"/v1/nodes/{machine.uuid}", f"/v1/nodes/{machine.uuid}/history"):
        assert settings["token"] not in lab.api.get(path).text

    kept = tmp_path / "session-service.json"
    kept.write_text(json.dumps(settings))
    done = subprocess.run([sys.executable, str(SCRIPT), "--config", str(kept), "--once",
                           "--wait-s", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    with lab.db.session() as session:
        row = session_service.find(session, node_id)  # type: ignore[arg-type]
        assert row is not None and row.last_seen_at is not None and row.booted_at is not None
    refused = httpx.post(f"{lab.api.base_url}/enclume/v1/session-service/{machine.uuid}",
                         headers={"Authorization": "Bearer not-it"}, timeout=10)
    assert refused.status_code == 401
