"""enclume-aio and the real ``enclume`` CLI: a room restored by its conductor gets a lead
measured from that restore (the job's ``finished_at`` - ``created_at``, times the factor), which
``session show`` and ``room show`` give with the planned instant of the next restore; ``session
set`` changes a weekly class's end and last week and its occurrences follow; a job whose every
PC failed is ``failed``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.aio import Server, running_aio
from tests.support.polling import eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow]

E = "/enclume/v1"
ENCLUME = Path(sys.executable).parent / "enclume"
FACTOR = 3
ENV = {"ENCLUME_FAKE_DEPLOY_DELAY_S": "[0.5, 0.5]", "ENCLUME_CLASSROOM_INTERVAL_S": "0.5",
       "ENCLUME_RESTORE_LEAD_MIN_S": "1", "ENCLUME_RESTORE_LEAD_FACTOR": str(FACTOR),
       "ENCLUME_OCCURRENCE_HORIZON_DAYS": "366", "ENCLUME_POWER_SYNC_INTERVAL_S": "3600"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_aio(tmp_path_factory.mktemp("aio-lead"), env=ENV) as running:
        yield running


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def enclume(server: Server, home: Path, *argv: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLUME_")}
    env.update(HOME=str(home), ENCLUME_URL=server.url, COLUMNS="200")
    done = subprocess.run([str(ENCLUME), *argv, "-f", "json"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, (argv, done.stdout, done.stderr, server.log_text()[-2000:])
    return json.loads(done.stdout)


def job_ended(api: httpx.Client, uuid: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        job = ok(api.get(f"{E}/jobs/{uuid}"))
        return job if job["state"] in ("done", "failed", "failed-partly") else None
    found: dict[str, Any] = eventually(ended, 60, "the job's end")
    return found


def test_a_measured_lead_is_shown_and_a_session_changed_through_the_cli(
        server: Server, tmp_path: Path) -> None:
    with httpx.Client(base_url=server.url, timeout=30,
                      headers={"X-OpenStack-Ironic-API-Version": "latest"}) as api:
        for i in range(3):
            driver_info = {"fake_deploy_error": "no disk"} if i == 2 else {}
            node = ok(api.post("/v1/nodes", json={"driver": "fake-hardware",
                                                  "name": f"l-pc{i}",
                                                  "driver_info": driver_info}), 201)
            for target in ("manage", "provide"):
                ok(api.put(f"/v1/nodes/{node['uuid']}/states/provision",
                           json={"target": target}), 202)
                eventually(lambda n=node: ok(api.get(f"/v1/nodes/{n['uuid']}"))[
                    "provision_state"] in ("manageable", "available"), 60, "a PC's state")
        ok(api.post(f"{E}/images", json={"name": "debian", "versions": [
            {"version": "v1", "source": "http://images.example/d.img", "checksum": "c" * 64}]}),
           201)
        ok(api.post(f"{E}/rooms", json={"name": "L", "time_zone": "Europe/Paris",
                                        "allowed_images": ["debian"], "default_image": "debian",
                                        "pcs": ["l-pc0", "l-pc1", "l-pc2"]}), 201)
        failed = job_ended(api, ok(api.post(f"{E}/rooms/L/actions", json={
            "action": "restore", "pcs": ["l-pc2"]}), 202)["uuid"])
        assert failed["state"] == "failed"  # its only PC failed; not a measured restore
        assert ok(api.get(f"{E}/rooms/L"))["restore_lead"]["source"] == "setting"
        restored = job_ended(api, ok(api.post(f"{E}/rooms/L/actions", json={
            "action": "restore", "pcs": ["l-pc0", "l-pc1"]}), 202)["uuid"])
    assert restored["state"] == "done"
    took = (datetime.fromisoformat(restored["finished_at"])
            - datetime.fromisoformat(restored["created_at"]))
    lead = round(took.total_seconds() * FACTOR, 1)
    assert took > timedelta(seconds=0.5)  # at least the fake deploy's delay

    home = tmp_path / "home"
    created = enclume(server, home, "session", "create", "--room", "L", "--at",
                      "2027-09-07T14:00", "--until", "2027-09-07T16:00", "--weekly", "--count",
                      "3", "--name", "lab")
    for shown in (enclume(server, home, "session", "show", created["uuid"]),
                  enclume(server, home, "room", "show", "L")):
        assert shown["restore_lead"] == {"seconds": lead, "source": "measured", "samples": 1,
                                         "longest_restore_s": round(took.total_seconds(), 1)}
        action = shown["next_action"]
        assert action["action"] == "restore-full" and action["session"] == created["uuid"]
        start = datetime.fromisoformat(action["occurrence_start"])
        assert start == datetime.fromisoformat("2027-09-07T12:00:00+00:00")
        assert abs((start - datetime.fromisoformat(action["at"])).total_seconds() - lead) < 0.2

    changed = enclume(server, home, "session", "set", created["uuid"], "--until", "17:00",
                      "--last", "2027-09-28", "--after", "power-off")
    assert (changed["end"], changed["after"]) == ("2027-09-07T17:00:00", "power-off")
    occurrences = enclume(server, home, "session", "occurrences", created["uuid"])
    assert [(o["planned_start"], o["planned_end"], o["state"], o["reason"])
            for o in occurrences] == [
        (f"2027-09-{day}T12:00:00+00:00", f"2027-09-{day}T15:00:00+00:00", "planned", None)
        for day in ("07", "14", "21", "28")]
