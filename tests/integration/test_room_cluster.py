"""A scheduled room restore on the cluster as real processes (an API, 3 conductors, SQLite):
the conductor that owns the room on the ring is killed with SIGKILL while the restore runs.
The occurrence is handed over to a live conductor, its job finishes there, no PC is written
twice, the job says what happened to each PC, and a failed PC can be retried alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from lab.local_cluster import Cluster, running_cluster
from services.common.classroom_models import Job, Occurrence
from services.common.db import Database
from services.common.models import Node
from services.common.ring import ConductorRing
from tests.support.polling import eventually

pytestmark = pytest.mark.slow

PCS = 12
E = "/enclume/v1"
SETTINGS = {
    "ENCLUME_HEARTBEAT_INTERVAL_S": "1",
    "ENCLUME_HEARTBEAT_TIMEOUT_S": "4",
    "ENCLUME_RING_REFRESH_S": "1",
    "ENCLUME_PERIODIC_INTERVAL_S": "1",
    "ENCLUME_CLASSROOM_INTERVAL_S": "0.5",
    "ENCLUME_RESERVATION_LEASE_S": "10",
    "ENCLUME_FAKE_DEPLOY_DELAY_S": "[2.0, 4.0]",
    "ENCLUME_POWER_SYNC_INTERVAL_S": "3600",
    # The session starts in 10 minutes; its restore is due at once and stays due a long while.
    "ENCLUME_RESTORE_LEAD_S": "3600",
    "ENCLUME_OCCURRENCE_GRACE_S": "7200",
}
HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}


def wait_for(what: str, check: Callable[[], Any], timeout: float, cluster: Cluster) -> Any:
    try:
        return eventually(check, timeout, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{cluster.logs()}") from None


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_scheduled_restore_survives_the_kill_of_its_rooms_owner(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cluster.sqlite'}"
    with running_cluster(tmp_path, url, apis=1, env=SETTINGS) as cluster, httpx.Client(
            base_url=next(iter(cluster.apis.values())).url, headers=HEADERS,
            timeout=30) as api:
        uuids = [ok(api.post("/v1/nodes", json={"driver": "fake-hardware",
                                                "name": f"pc{i:02d}"}), 201)["uuid"]
                 for i in range(PCS)]
        for verb, state in (("manage", "manageable"), ("provide", "available")):
            for uuid in uuids:
                assert api.put(f"/v1/nodes/{uuid}/states/provision",
                               json={"target": verb}).status_code == 202
            wait_for(f"PCs {state}", lambda s=state: all(
                api.get(f"/v1/nodes/{u}").json()["provision_state"] == s for u in uuids),
                60, cluster)
        ok(api.post(f"{E}/images", json={"name": "debian", "versions": [
            {"version": "v1", "source": "http://images.example/d.img",
             "checksum": "d" * 64}]}), 201)
        room = ok(api.post(f"{E}/rooms", json={
            "name": "B12", "time_zone": "UTC", "allowed_images": ["debian"],
            "pcs": uuids}), 201)
        start = datetime.now(UTC) + timedelta(minutes=10)
        ok(api.post(f"{E}/sessions", json={
            "room": "B12", "image": "debian:v1", "start": start.strftime("%Y-%m-%dT%H:%M"),
            "end": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")}), 201)

        owner = ConductorRing(cluster.conductors).owner(room["uuid"])
        assert owner is not None

        def started_job() -> dict[str, Any] | None:
            jobs = ok(api.get(f"{E}/jobs", params={"room": "B12"}))["jobs"]
            if jobs and any(pc["step"] != "queued" for pc in jobs[0]["pcs"]):
                return dict(jobs[0])
            return None

        job = wait_for("the scheduled restore to start", started_job, 60, cluster)
        cluster.kill(owner)

        def ended() -> dict[str, Any] | None:
            document = ok(api.get(f"{E}/jobs/{job['uuid']}"))
            return document if document["state"] in ("done", "failed-partly") else None

        final = wait_for("the job to end on another conductor", ended, 120, cluster)
        db = Database(url)
        with db.session() as session:
            occurrence = session.scalar(select(Occurrence))
            assert occurrence is not None
            assert occurrence.claimed_by not in (None, owner), occurrence.claimed_by
            jobs = session.scalars(select(Job)).all()
            assert [j.occurrence_id for j in jobs] == [occurrence.id]  # one job, one run
        failed = [pc for pc in final["pcs"] if pc["outcome"] == "failed"]
        assert all(pc["outcome"] in ("succeeded", "failed") for pc in final["pcs"])
        assert all(owner in pc["error"] for pc in failed), failed  # killed mid-deploy

        for pc in failed:  # each failed PC is retried alone
            ok(api.post(f"{E}/jobs/{job['uuid']}/pcs/{pc['node_uuid']}/retry"), 202)
        done = wait_for("the retried PCs", lambda: (d := ended()) and d["state"] == "done" and d,
                        120, cluster)
        assert done["state"] == "done", done
        with db.session() as session:
            written = {n.name: n.driver_internal_info.get("fake_deploys", 0)
                       for n in session.scalars(select(Node))}
        assert set(written.values()) == {1}, written  # every PC written once, none twice
