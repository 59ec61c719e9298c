"""PATCH /enclume/v1/sessions/{uuid} on a real loopback server (the stack of
test_classroom_api.py): end, image, before/after and a weekly series' until change, with the
creation's rules applied again, occurrences not yet fired planned again, a claimed occurrence
never changed under the runner (409), and teachers on their rooms only (404 elsewhere).
tests/integration/test_classroom_postgres.py runs them on PostgreSQL too."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.classroom.times import as_utc
from services.common.classroom_models import ClassSession, Occurrence
from tests.unit import test_classroom_api as classroom
from tests.unit.test_classroom_api import SUM, E, Stack, ok, refused

# The stack's fixtures, found by pytest under these names.
database_url, stack, admin, world = (classroom.database_url, classroom.stack, classroom.admin,
                                     classroom.world)


@pytest.fixture(scope="module")
def debian_v2(admin: httpx.Client, world: Any) -> str:
    """A second version of the world's image, for the tests that change a session's image."""
    ok(admin.post(f"{E}/images/debian/versions", json={
        "version": "v2", "source": "http://images.example/debian-v2.img", "checksum": SUM}),
       201)
    return "debian:v2"


def planned(stack: Stack, session_uuid: str) -> list[tuple[str, str, str]]:
    with stack.db.session() as session:
        rows = session.execute(select(Occurrence.planned_start, Occurrence.planned_end,
                                      Occurrence.state).join(ClassSession).where(
            ClassSession.uuid == session_uuid).order_by(Occurrence.planned_start)).all()
    return [(naive(s), naive(e), state) for s, e, state in rows]


def naive(instant: datetime) -> str:
    """A UTC instant as SQLite (naive) and PostgreSQL (aware) hand it back, written alike."""
    return as_utc(instant).replace(tzinfo=None).isoformat()


def weekly(admin: httpx.Client, **values: Any) -> dict[str, Any]:
    body = {"room": "B12", "image": "debian:v1", "recurrence": "weekly", "name": "networks",
            "start": "2027-03-16T14:00", "end": "2027-03-16T16:00", "count": 3,
            "before": "restore-full", **values}
    return ok(admin.post(f"{E}/sessions", json=body), 201)


def test_end_image_actions_and_until_change_and_occurrences_are_planned_again(
        stack: Stack, admin: httpx.Client, debian_v2: str) -> None:
    created = weekly(admin)
    assert planned(stack, created["uuid"]) == [
        ("2027-03-16T13:00:00", "2027-03-16T15:00:00", "planned"),
        ("2027-03-23T13:00:00", "2027-03-23T15:00:00", "planned"),
        ("2027-03-30T12:00:00", "2027-03-30T14:00:00", "planned")]  # summer time from 28/3
    changed = ok(admin.patch(f"{E}/sessions/{created['uuid']}", json={
        "end": "17:00", "image": "debian:v2", "before": "restore-delta", "after": "power-off",
        "until": "2027-04-06", "name": "networks II"}))
    assert (changed["end"], changed["image"], changed["before"], changed["after"],
            changed["name"]) == ("2027-03-16T17:00:00", "debian:v2", "restore-delta",
                                 "power-off", "networks II")
    assert "UNTIL=20270406T235959" in changed["rrule"] and "COUNT" not in changed["rrule"]
    assert planned(stack, created["uuid"]) == [
        ("2027-03-16T13:00:00", "2027-03-16T16:00:00", "planned"),
        ("2027-03-23T13:00:00", "2027-03-23T16:00:00", "planned"),
        ("2027-03-30T12:00:00", "2027-03-30T15:00:00", "planned"),
        ("2027-04-06T12:00:00", "2027-04-06T15:00:00", "planned")]
    assert ok(admin.get(f"{E}/sessions/{created['uuid']}"))["image"] == "debian:v2"
    shorter = ok(admin.patch(f"{E}/sessions/{created['uuid']}", json={"count": 2}))
    assert "COUNT=2" in shorter["rrule"] and "UNTIL" not in shorter["rrule"]
    assert len(planned(stack, created["uuid"])) == 2
    ok(admin.delete(f"{E}/sessions/{created['uuid']}"), 204)


def test_bad_changes_are_refused_and_change_nothing(stack: Stack, admin: httpx.Client,
                                                    world: Any) -> None:
    created = weekly(admin)
    other = ok(admin.post(f"{E}/sessions", json={
        "room": "B12", "image": "debian:v1", "name": "evening", "start": "2027-03-16T18:00",
        "end": "2027-03-16T19:00"}), 201)
    once = ok(admin.post(f"{E}/sessions", json={
        "room": "B12", "image": "debian:v1", "start": "2027-03-17T09:00",
        "end": "2027-03-17T10:00"}), 201)
    before = (ok(admin.get(f"{E}/sessions/{created['uuid']}")), planned(stack, created["uuid"]))
    for body, status, fragment in [
        ({"end": "2027-03-16T18:30"}, 409, "overlaps session evening"),
        ({"end": "2027-03-17T15:00"}, 400, "ends after its start, within 24 hours"),
        ({"end": "17h"}, 400, "wall-clock"),
        ({"image": "windows:v1"}, 400, "not allowed in room B12"),
        ({"image": "debian:v9"}, 400, "could not be found"),
        ({"before": "pray"}, 400, "before"),
        ({"until": "2027-03-01"}, 400, "before the session's first start"),
        ({"until": "2027-04-06", "count": 2}, 400, "not both"),
        ({"start": "2027-03-16T15:00"}, 400, "for session change: start"),
        ({}, 400, "Nothing to change"),
    ]:
        refused(admin.patch(f"{E}/sessions/{created['uuid']}", json=body), status, fragment)
    refused(admin.patch(f"{E}/sessions/{once['uuid']}", json={"until": "2027-05-01"}), 400,
            "belong to weekly sessions")
    assert (ok(admin.get(f"{E}/sessions/{created['uuid']}")),
            planned(stack, created["uuid"])) == before
    for uuid in (created["uuid"], other["uuid"], once["uuid"]):
        ok(admin.delete(f"{E}/sessions/{uuid}"), 204)


def test_a_series_cut_to_the_past_is_refused(stack: Stack, admin: httpx.Client,
                                             world: Any) -> None:
    running = weekly(admin, start="2026-01-06T08:00", end="2026-01-06T09:00", count=None,
                     until="2028-01-01")
    refused(admin.patch(f"{E}/sessions/{running['uuid']}", json={"until": "2026-02-01"}), 400,
            "in the past")
    ok(admin.delete(f"{E}/sessions/{running['uuid']}"), 204)


def test_a_claimed_occurrence_is_not_changed_under_the_runner(
        stack: Stack, admin: httpx.Client, debian_v2: str) -> None:
    created = weekly(admin)
    with stack.db.session() as session:
        second = session.scalars(select(Occurrence).join(ClassSession).where(
            ClassSession.uuid == created["uuid"]).order_by(Occurrence.planned_start)).all()[1]
        second.state, second.claimed_by = "claimed", "c7"
    for body in ({"end": "17:00"}, {"image": "debian:v2"}, {"before": "none"},
                 {"after": "power-off"}, {"count": 1}):
        response = admin.patch(f"{E}/sessions/{created['uuid']}", json=body)
        refused(response, 409, "has an occurrence in progress (claimed, by conductor c7) "
                               "from 2027-03-23 14:00 to 16:00 (Europe/Paris)")
    # What leaves the claimed occurrence as it is may change: a name, a later last date.
    changed = ok(admin.patch(f"{E}/sessions/{created['uuid']}", json={
        "name": "kept", "count": 2, "image": "debian:v1"}))
    assert changed["name"] == "kept"
    assert [state for _s, _e, state in planned(stack, created["uuid"])] == ["planned",
                                                                            "claimed"]
    ok(admin.delete(f"{E}/sessions/{created['uuid']}"), 204)


def test_teachers_change_sessions_of_their_rooms_only(stack: Stack, admin: httpx.Client,
                                                     world: Any) -> None:
    mine = weekly(admin)
    theirs = ok(admin.post(f"{E}/sessions", json={
        "room": "A1", "image": "windows:v1", "start": "2027-03-16T14:00",
        "end": "2027-03-16T16:00"}), 201)
    with stack.client("alice") as alice:
        changed = ok(alice.patch(f"{E}/sessions/{mine['uuid']}", json={"after": "power-off"}))
        assert changed["after"] == "power-off"
        refused(alice.patch(f"{E}/sessions/{theirs['uuid']}", json={"after": "power-off"}),
                404, "could not be found")
    with stack.client("sam") as student:
        assert student.patch(f"{E}/sessions/{mine['uuid']}",
                             json={"after": "nothing"}).status_code == 403
    assert ok(admin.get(f"{E}/sessions/{theirs['uuid']}"))["after"] == "nothing"
    for uuid in (mine["uuid"], theirs["uuid"]):
        ok(admin.delete(f"{E}/sessions/{uuid}"), 204)
