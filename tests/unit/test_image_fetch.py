"""A version fetched from its source URL into the store (services/classroom/image_fetch.py),
with a real SQLite database and store; and fetches that died with their process."""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from services.classroom.image_fetch import fail_stale_fetches, fetch
from services.classroom.image_versions import set_state
from services.common.classroom_models import Image, ImageVersion
from services.common.db import Database, upgrade_schema
from services.common.models import utcnow
from services.images.store import ImageStore

DATA = os.urandom(5 * 1024 * 1024)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade_schema(url)
    return Database(url)


def add_version(db: Database, source: str, checksum: str) -> str:
    with db.session() as session:
        image = Image(name=f"img-{os.urandom(3).hex()}")
        version = ImageVersion(version="v1", source=source, checksum=checksum,
                               disk_format="raw", image_type="whole-disk", boot_mode="uefi")
        image.versions = [version]
        set_state(version, "ingesting")
        session.add(image)
        session.flush()
        return version.uuid


def state_of(db: Database, uuid: str) -> tuple[str, str | None]:
    with db.session() as session:
        version = session.scalar(select(ImageVersion).where(ImageVersion.uuid == uuid))
        assert version is not None
        return version.state, version.reason


def test_a_file_url_is_fetched_and_a_bad_one_fails_with_its_reason(
        db: Database, tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "store", 1 << 30)
    source = tmp_path / "disk.img"
    source.write_bytes(DATA)
    good = add_version(db, source.as_uri(), hashlib.sha256(DATA).hexdigest())
    fetch(db, store, good)
    assert state_of(db, good) == ("available", None)
    assert b"".join(store.read_range(good, 0, len(DATA))) == DATA
    wrong = add_version(db, source.as_uri(), "0" * 64)
    fetch(db, store, wrong)
    state, reason = state_of(db, wrong)
    assert state == "failed" and "checksum mismatch" in str(reason)
    missing = add_version(db, (tmp_path / "nothing.img").as_uri(), "0" * 64)
    fetch(db, store, missing)
    assert state_of(db, missing)[0] == "failed"
    assert store.versions() == [good]


def test_fetches_left_ingesting_too_long_are_marked_failed(db: Database) -> None:
    stale = add_version(db, "http://127.0.0.1:9/x.img", "0" * 64)
    fresh = add_version(db, "http://127.0.0.1:9/y.img", "0" * 64)
    with db.session() as session:
        version = session.scalar(select(ImageVersion).where(ImageVersion.uuid == stale))
        assert version is not None
        version.state_changed_at = utcnow() - timedelta(hours=2)
    assert fail_stale_fetches(db, timeout_s=3600) == 1
    assert state_of(db, stale)[0] == "failed" and "interrupted" in str(state_of(db, stale)[1])
    assert state_of(db, fresh)[0] == "ingesting"
