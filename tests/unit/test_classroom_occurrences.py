"""Occurrences are created up to a horizon, idempotently, and extended as the clock moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from services.classroom import occurrences
from services.classroom.schedule import weekly_rule
from services.common.classroom_models import (
    ClassSession,
    Image,
    ImageVersion,
    Occurrence,
    Room,
)
from services.common.db import Database, upgrade_schema

START = datetime(2026, 10, 6, 14, 0)  # a Tuesday, Paris wall clock


def test_extend_creates_rows_up_to_the_horizon_once_and_moves_with_the_clock(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade_schema(url)
    db = Database(url)
    with db.session() as session:
        room = Room(name="B12", time_zone="Europe/Paris")
        image = Image(name="debian")
        image.versions = [ImageVersion(version="v1", source="debian.img", checksum="a" * 64,
                                       disk_format="raw", image_type="whole-disk",
                                       boot_mode="uefi")]
        session.add_all([room, image])
        session.flush()
        weekly = ClassSession(room_id=room.id, image_version_id=image.versions[0].id,
                              recurrence="weekly", starts_at=START,
                              ends_at=START + timedelta(hours=2),
                              rrule=weekly_rule(START, None, 30), before="none",
                              after="nothing")
        session.add(weekly)
        session.flush()
        session.refresh(weekly, ["room"])
        now = datetime(2026, 10, 1, tzinfo=UTC)
        occurrences.extend(session, weekly, now, timedelta(days=28))
        occurrences.extend(session, weekly, now, timedelta(days=28))  # idempotent
        weekly.expanded_until = None  # as if another process had not seen the first run
        occurrences.extend(session, weekly, now, timedelta(days=28))

    def planned() -> list[datetime]:
        with db.session() as session:
            return [o.planned_start.replace(tzinfo=UTC) for o in session.scalars(
                select(Occurrence).order_by(Occurrence.planned_start))]

    assert [d.day for d in planned()] == [6, 13, 20, 27]
    assert planned()[3].hour == 13  # 27 October: winter time, still 14:00 in Paris
    with db.session() as session:
        later = datetime(2026, 11, 20, tzinfo=UTC)
        assert occurrences.extend_all(session, later, timedelta(days=28)) == 1
        assert occurrences.extend_all(session, later, timedelta(days=28)) == 0
    days = [(d.month, d.day) for d in planned()]
    assert days[4:] == [(11, 24), (12, 1), (12, 8), (12, 15)]  # 3, 10, 17 Nov: past, skipped
