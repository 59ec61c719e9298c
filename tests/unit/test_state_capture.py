"""Saving a student's work (services/classroom/state_capture.py): whose work a PC's login
says to save, the blocks that differ from the version, and the state recorded at the capture's
commit (replacing the state resumed from only then, refused over the quota)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from services.classroom import state_capture
from services.classroom.image_capture import CaptureTarget
from services.common.classroom_models import Image, ImageVersion
from services.common.config_classroom_sections import StudentStateSettings
from services.common.db import Database, upgrade_schema
from services.common.models import Node
from services.common.state_models import StudentState
from services.images.manifest import BLOCK_SIZE, Manifest

A, B, C = "a" * 64, "b" * 64, "c" * 64
NOW = datetime(2026, 12, 5, 12, 0)


def login(**values: object) -> dict[str, object]:
    return {"pc_login": {"user": "sam", "action": "fresh", "state": None,
                         "image_version": "v-uuid", "at": "2026-12-05T10:00:00+00:00",
                         **values}}


def test_only_a_students_fresh_or_resumed_session_is_saved() -> None:
    assert state_capture.logged_in(login()) is not None
    assert state_capture.logged_in(login(action="resume", state="s")) is not None
    assert state_capture.logged_in(login(action="maintenance")) is None
    assert state_capture.logged_in(login(image_version=None)) is None
    assert state_capture.logged_in({}) is None and state_capture.logged_in(None) is None


def test_the_plan_names_the_student_and_a_store_session_stable_across_retries() -> None:
    node = Node(uuid="n-1", driver_internal_info=login(action="resume", state="old"))
    plan = state_capture.plan_from_login(node)
    assert plan is not None
    assert (plan["owner"], plan["image_version"], plan["replaces"]) == ("sam", "v-uuid", "old")
    assert plan == state_capture.plan_from_login(node)
    later = Node(uuid="n-1", driver_internal_info=login(at="2026-12-12T10:00:00+00:00"))
    assert state_capture.plan_from_login(later)["session"] != plan["session"]  # type: ignore
    target = CaptureTarget(session=plan["session"], image="", version="", student=plan)
    assert target.source() == {"disk_format": "raw", "captured": True, "student_state": True,
                               "owner": "sam", "base_version": "v-uuid"}


def test_differing_blocks() -> None:
    base = Manifest(size=3 * BLOCK_SIZE, image_sha256=A, blocks=(A, None, B))
    worked = Manifest(size=3 * BLOCK_SIZE, image_sha256=B, blocks=(A, C, C))
    assert state_capture.differing(base, worked) == [1, 2]
    assert state_capture.differing(base, base) == []


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade_schema(url)
    database = Database(url)
    with database.session() as session:
        image = Image(name="lab")
        session.add(image)
        session.flush()
        session.add(ImageVersion(uuid="v-uuid", image_id=image.id, version="v1", source="x",
                                 checksum=A, disk_format="raw", image_type="whole-disk",
                                 boot_mode="bios"))
    yield database


def test_a_commit_records_the_state_replacing_the_resumed_one_within_the_quota(
        db: Database) -> None:
    settings = StudentStateSettings(max_count=2, max_bytes=2 * BLOCK_SIZE)
    base = Manifest(size=3 * BLOCK_SIZE, image_sha256=A, blocks=(A, None, B))
    plan = {"owner": "sam", "image_version": "v-uuid", "replaces": None}
    with db.session() as session:
        first, replaced = state_capture.record_capture(
            session, settings, "n-1", plan, base,
            Manifest(size=3 * BLOCK_SIZE, image_sha256=C, blocks=(A, C, B)), "store-1", NOW)
    assert (first["size_bytes"], first["differing_blocks"], replaced) == (BLOCK_SIZE, 1, None)
    assert first["label"] == "PC 2026-12-05 12:00"

    # Two blocks more than the version: within the quota only because the old one goes.
    resumed = {**plan, "replaces": first["uuid"]}
    with db.session() as session:
        second, replaced = state_capture.record_capture(
            session, settings, "n-1", resumed, base,
            Manifest(size=3 * BLOCK_SIZE, image_sha256=C, blocks=(C, C, B)), "store-2", NOW)
    assert replaced == "store-1" and second["replaced"] is True
    assert second["label"] == first["label"] and second["size_bytes"] == 2 * BLOCK_SIZE

    # Over the quota: refused, the previous state kept.
    with db.session() as session, pytest.raises(state_capture.CaptureRefused,
                                                match="sam's work was not saved"):
        state_capture.record_capture(
            session, settings, "n-1", plan, base,
            Manifest(size=3 * BLOCK_SIZE, image_sha256=C, blocks=(C, C, C)), "store-3", NOW)
    with db.session() as session:
        kept = session.query(StudentState).all()
        assert [(s.uuid, s.store_id) for s in kept] == [(second["uuid"], "store-2")]

    # Another student's state is never the one replaced.
    with db.session() as session:
        third, replaced = state_capture.record_capture(
            session, settings, "n-1", {"owner": "zoe", "image_version": "v-uuid",
                                       "replaces": second["uuid"]}, base,
            Manifest(size=3 * BLOCK_SIZE, image_sha256=C, blocks=(A, None, B)), "store-4", NOW)
    assert replaced is None and third["size_bytes"] == 0
