"""A room's restore lead is measured from its last restores: the longest of the last N that
restored some PC, times a factor, between a floor and a ceiling; the setting when there is
none. The timetable runner (with an injected clock) starts a room's restore that early, and the
room and session views show the lead and the next action's planned instant."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from services.classroom.lead import Lead, LeadPolicy, lead_from, restore_durations
from services.common.classroom_models import Job, Room
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.conductor.timetable import TimetableRunner
from tests.support.api_stack import ServedApi, served_api
from tests.unit.test_timetable import at, ok

E = "/enclume/v1"
POLICY = LeadPolicy(fallback=timedelta(minutes=15), samples=3, factor=1.5,
                    floor=timedelta(minutes=5), ceiling=timedelta(hours=2))
MINUTE = timedelta(minutes=1)


def test_the_setting_without_history_the_longest_restore_times_the_factor_with_it() -> None:
    assert lead_from([], POLICY) == Lead(timedelta(minutes=15))
    assert lead_from([10 * MINUTE, 20 * MINUTE, 12 * MINUTE], POLICY) == Lead(
        30 * MINUTE, 3, 20 * MINUTE)
    assert lead_from([MINUTE], POLICY).duration == 5 * MINUTE  # the floor
    assert lead_from([3 * 60 * MINUTE], POLICY).duration == timedelta(hours=2)  # the ceiling
    off = LeadPolicy(POLICY.fallback, 0, POLICY.factor, POLICY.floor, POLICY.ceiling)
    assert lead_from([20 * MINUTE], off) == Lead(timedelta(minutes=15))
    assert off.longest == timedelta(minutes=15) and POLICY.longest == timedelta(hours=2)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServedApi, Database,
                                                                        Settings]]:
    directory: Path = tmp_path_factory.mktemp("lead")
    url = f"sqlite:///{directory / 'db.sqlite'}"
    upgrade_schema(url)
    db = Database(url)
    settings = Settings(
        process={"data_dir": directory},
        conductor={"hostname": "c1"},
        classroom={"restore_lead_s": 900, "restore_lead_samples": 3, "restore_lead_factor": 1.5,
                   "restore_lead_min_s": 300, "restore_lead_max_s": 7200},
    )
    with served_api(settings, db) as served:
        api = served.client
        for name in ("l-pc0", "l-pc1", "k-pc0"):
            ok(api.post("/v1/nodes", json={"driver": "fake-hardware", "name": name}), 201)
        ok(api.post(f"{E}/images", json={"name": "debian", "versions": [
            {"version": "v1", "source": "http://images.example/d.img", "checksum": "c" * 64}]}),
           201)
        for name, pcs in (("L", ["l-pc0", "l-pc1"]), ("K", ["k-pc0"])):
            ok(api.post(f"{E}/rooms", json={"name": name, "time_zone": "Europe/Paris",
                                            "allowed_images": ["debian"], "pcs": pcs}), 201)
        yield served, db, settings


def finished_job(db: Database, room: str, kind: str, state: str, ended: datetime,
                 took: timedelta) -> None:
    with db.session() as session:
        room_id = session.scalar(select(Room.id).where(Room.name == room))
        assert room_id is not None
        session.add(Job(room_id=room_id, kind=kind, state=state, created_at=ended - took,
                        finished_at=ended))


def test_durations_are_the_last_restores_that_restored_something(
        stack: tuple[ServedApi, Database, Settings]) -> None:
    _served, db, _settings = stack
    day = at("2026-11-02T08:00")
    finished_job(db, "K", "restore", "done", day, 50 * MINUTE)  # older than the last 3
    for hours, took in ((1, 10), (2, 20), (3, 12)):
        finished_job(db, "K", "restore", "done" if hours != 2 else "failed-partly",
                     day + timedelta(hours=hours), took * MINUTE)
    finished_job(db, "K", "restore", "failed", day + timedelta(hours=4), 90 * MINUTE)
    finished_job(db, "K", "wake", "done", day + timedelta(hours=5), 70 * MINUTE)
    with db.session() as session:
        room_id = session.scalar(select(Room.id).where(Room.name == "K"))
        assert room_id is not None
        found = restore_durations(session, [room_id], 3)
        assert found == {room_id: [12 * MINUTE, 20 * MINUTE, 10 * MINUTE]}  # newest first
        assert restore_durations(session, [room_id], 0) == {}


def test_the_runner_starts_a_restore_its_measured_lead_early_and_the_views_show_it(
        stack: tuple[ServedApi, Database, Settings]) -> None:
    served, db, settings = stack
    api = served.client
    cls = ok(api.post(f"{E}/sessions", json={
        "room": "L", "image": "debian:v1", "start": "2027-09-07T14:00",
        "end": "2027-09-07T16:00", "before": "restore-full"}), 201)
    start = at("2027-09-07T12:00")  # 14:00 in Paris (CEST)
    room = ok(api.get(f"{E}/rooms/L"))
    assert room["restore_lead"] == {"seconds": 900.0, "source": "setting", "samples": 0,
                                    "longest_restore_s": None}
    assert room["next_action"]["at"] == (start - timedelta(minutes=15)).isoformat()

    for hours, took in ((1, 10), (2, 20), (3, 12)):
        finished_job(db, "L", "restore", "done", at("2027-09-01T08:00") + timedelta(
            hours=hours), took * MINUTE)
    lead = timedelta(minutes=30)  # the longest (20 min) times 1.5
    for document in (ok(api.get(f"{E}/rooms/L")), ok(api.get(f"{E}/sessions/{cls['uuid']}"))):
        assert document["restore_lead"] == {"seconds": 1800.0, "source": "measured",
                                            "samples": 3, "longest_restore_s": 1200.0}
        assert document["next_action"]["action"] == "restore-full"
        assert document["next_action"]["at"] == (start - lead).isoformat()
        assert document["next_action"]["session"] == cls["uuid"]

    runner = TimetableRunner(db, settings, served.manager.membership, "c1")
    assert runner.run(start - lead - timedelta(seconds=1)).claimed == 0
    assert runner.run(start - lead).claimed == 1  # 30 min early, not the setting's 15
    session_view = ok(api.get(f"{E}/sessions/{cls['uuid']}"))
    assert session_view["next_action"]["action"] == "start"  # the restore is under way
    assert session_view["next_action"]["at"] == start.isoformat()
    assert session_view["next_action"]["occurrence"] is not None
