"""The timetable runner with an injected clock, on a real loopback API and database: a weekly
session across a daylight-saving change fires at the right wall-clock times, restores start
their lead time early, a missed occurrence is recorded and never run late, a claim happens once
among racing conductors, and a dead claimer's occurrence is handed over without a second job."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.common.classroom_models import Job, Occurrence
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.conductor.timetable import TimetableRunner
from tests.support.api_stack import ServedApi, served_api

E = "/enclume/v1"
LEAD = timedelta(minutes=15)
GRACE = timedelta(minutes=10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServedApi, Database,
                                                                        Settings]]:
    directory: Path = tmp_path_factory.mktemp("timetable")
    url = f"sqlite:///{directory / 'db.sqlite'}"
    upgrade_schema(url)
    db = Database(url)
    settings = Settings(data_dir=directory, conductor_hostname="c1",
                        restore_lead_s=LEAD.total_seconds(),
                        occurrence_grace_s=GRACE.total_seconds())
    with served_api(settings, db) as served:
        api = served.client
        pcs = {"R": ["r-pc0", "r-pc1", "r-pc2"], "S": ["s-pc0"], "T": ["t-pc0"]}
        for name in [pc for names in pcs.values() for pc in names]:
            ok(api.post("/v1/nodes", json={"driver": "fake-hardware", "name": name}), 201)
        ok(api.post(f"{E}/images", json={"name": "debian", "versions": [
            {"version": "v1", "source": "http://images.example/d.img", "checksum": "c" * 64}]}),
           201)
        for name in ("R", "S", "T"):
            ok(api.post(f"{E}/rooms", json={
                "name": name, "time_zone": "Europe/Paris", "allowed_images": ["debian"],
                "pcs": pcs[name]}), 201)
        yield served, db, settings


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def jobs_of(db: Database, session_uuid: str) -> list[tuple[str, str]]:
    """(kind, planned start) of the jobs of a session's occurrences, in creation order."""
    with db.session() as session:
        rows = session.execute(select(Job.kind, Occurrence.planned_start).join(
            Occurrence, Job.occurrence_id == Occurrence.id).order_by(Job.id)).all()
        known = {o.planned_start for o in session.scalars(select(Occurrence))
                 if o.session.uuid == session_uuid}
    return [(kind, start.isoformat()) for kind, start in rows if start in known]


def states_of(db: Database, session_uuid: str) -> list[str]:
    with db.session() as session:
        return [o.state for o in session.scalars(select(Occurrence).order_by(
            Occurrence.planned_start)) if o.session.uuid == session_uuid]


def test_a_weekly_session_fires_at_its_wall_clock_times_across_a_dst_change(
        stack: tuple[ServedApi, Database, Settings]) -> None:
    served, db, settings = stack
    cls = ok(served.client.post(f"{E}/sessions", json={
        "room": "R", "image": "debian:v1", "recurrence": "weekly", "start": "2027-03-16T14:00",
        "end": "2027-03-16T16:00", "count": 4, "before": "restore-full",
        "after": "power-off"}), 201)
    runner = TimetableRunner(db, settings, served.manager.membership, "c1")
    # 14:00 in Paris is 13:00 UTC before 28 March 2027 (CET) and 12:00 UTC after it (CEST).
    starts = [at("2027-03-16T13:00"), at("2027-03-23T13:00"), at("2027-03-30T12:00"),
              at("2027-04-06T12:00")]
    assert runner.run(starts[0] - timedelta(hours=2)).claimed == 0
    for week, start in enumerate(starts):
        assert runner.run(start - LEAD - timedelta(seconds=1)).claimed == 0
        assert runner.run(start - LEAD).claimed == 1  # the restore starts its lead time early
        assert runner.run(start - LEAD).claimed == 0  # and once
        assert runner.run(start).started == 1
        assert runner.run(start + timedelta(hours=2)).ended == 1
        assert len(jobs_of(db, cls["uuid"])) == 2 * (week + 1)
    expected = []
    for start in starts:
        naive = start.replace(tzinfo=None).isoformat()
        expected += [("restore", naive), ("power-off", naive)]
    assert jobs_of(db, cls["uuid"]) == expected
    assert states_of(db, cls["uuid"]) == ["done"] * 4
    with db.session() as session:
        job = session.scalars(select(Job).order_by(Job.id)).first()
        assert job is not None and job.image_version is not None
        assert job.image_version.version == "v1" and len(job.pcs) == 3
        assert job.requested_by is not None and job.requested_by.startswith("timetable")


def test_an_occurrence_missed_by_more_than_its_grace_is_never_run(
        stack: tuple[ServedApi, Database, Settings]) -> None:
    served, db, settings = stack
    cls = ok(served.client.post(f"{E}/sessions", json={
        "room": "S", "image": "debian:v1", "start": "2027-05-04T10:00",
        "end": "2027-05-04T12:00", "after": "power-off"}), 201)
    runner = TimetableRunner(db, settings, served.manager.membership, "c1")
    due = at("2027-05-04T08:00") - LEAD  # 10:00 CEST
    report = runner.run(due + GRACE + timedelta(seconds=1))
    assert (report.missed, report.claimed) == (1, 0)
    assert runner.run(at("2027-05-04T10:01")).ended == 0  # a missed class has no after either
    assert states_of(db, cls["uuid"]) == ["missed"]
    assert jobs_of(db, cls["uuid"]) == []


def test_a_session_restoring_by_delta_starts_a_restore_delta_job(
        stack: tuple[ServedApi, Database, Settings]) -> None:
    served, db, settings = stack
    cls = ok(served.client.post(f"{E}/sessions", json={
        "room": "S", "image": "debian:v1", "start": "2027-07-06T10:00",
        "end": "2027-07-06T12:00", "before": "restore-delta"}), 201)
    runner = TimetableRunner(db, settings, served.manager.membership, "c1")
    assert runner.run(at("2027-07-06T08:00") - LEAD).claimed == 1  # 10:00 CEST
    assert jobs_of(db, cls["uuid"]) == [("restore-delta", "2027-07-06T08:00:00")]


def test_racing_conductors_claim_an_occurrence_once_and_a_dead_claimer_is_replaced(
        stack: tuple[ServedApi, Database, Settings]) -> None:
    served, db, settings = stack
    cls = ok(served.client.post(f"{E}/sessions", json={
        "room": "T", "image": "debian:v1", "start": "2027-06-01T10:00",
        "end": "2027-06-01T12:00"}), 201)
    now = at("2027-06-01T08:00") - LEAD
    runners = [TimetableRunner(db, settings, served.manager.membership, f"c{i}")
               for i in range(1, 5)]
    for runner in runners:  # as during a ring change, when two believe they own the room
        runner.owns = lambda _uuid: True  # type: ignore[method-assign]
    barrier = threading.Barrier(len(runners))
    claimed: list[int] = []

    def race(runner: TimetableRunner) -> None:
        barrier.wait()
        claimed.append(runner.run(now).claimed)

    threads = [threading.Thread(target=race, args=(r,)) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == [0, 0, 0, 1]
    assert jobs_of(db, cls["uuid"]) == [("restore", "2027-06-01T08:00:00")]

    with db.session() as session:
        occurrence = session.scalar(select(Occurrence).where(Occurrence.state == "claimed"))
        assert occurrence is not None
        occurrence.claimed_by = "c-dead"  # killed: not among the live conductors
    report = TimetableRunner(db, settings, served.manager.membership, "c1").run(
        now + timedelta(minutes=1))
    assert report.handed_over == 1 and report.claimed == 0
    with db.session() as session:
        occurrence = session.scalar(select(Occurrence).where(Occurrence.state == "claimed"))
        assert occurrence is not None and occurrence.claimed_by == "c1"
    assert jobs_of(db, cls["uuid"]) == [("restore", "2027-06-01T08:00:00")]  # not run twice
