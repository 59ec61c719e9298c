"""A PC in a room with a class on now, for logins at its boot prompt (the LDAP and prompt
tests): pc0 in room B12 with the image "debian", its agent's token set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from services.common.classroom_models import ClassSession, ImageVersion, Occurrence, Room
from services.common.db import Database
from services.common.models import Node
from services.common.node_fields import AGENT_TOKEN
from tests.support.classroom_users import ok

AGENT_TOKEN_OF_PC0 = "pc0-agent-token"


def pc_in_a_class(client: httpx.Client, db: Database, admin: tuple[str, str],
                  node_fields: dict[str, object] | None = None) -> str:
    """pc0 in room B12 (tina's by her groups) with a class on now; its agent's token set."""
    node = ok(client.post("/v1/nodes", auth=admin, json={
        "driver": "fake-hardware", "name": "pc0", **(node_fields or {})},
        headers={"X-OpenStack-Ironic-API-Version": "latest"}), 201)
    ok(client.post("/enclume/v1/images", auth=admin, json={"name": "debian", "versions": [
        {"version": "v1", "source": "http://images.example/debian.img", "checksum": "a" * 64,
         "disk_format": "qcow2", "boot_mode": "uefi"}]}), 201)
    ok(client.post("/enclume/v1/rooms", auth=admin, json={
        "name": "B12", "time_zone": "Europe/Paris", "allowed_images": ["debian"],
        "pcs": ["pc0"]}), 201)
    now = datetime.now(UTC)
    with db.session() as session:
        pc = session.scalar(select(Node).where(Node.uuid == node["uuid"]))
        room = session.scalar(select(Room).where(Room.name == "B12"))
        version = session.scalar(select(ImageVersion))
        assert pc is not None and room is not None and version is not None
        pc.driver_internal_info = {AGENT_TOKEN: AGENT_TOKEN_OF_PC0}
        wall = now.replace(tzinfo=None)
        lesson = ClassSession(room_id=room.id, image_version_id=version.id, recurrence="once",
                              starts_at=wall - timedelta(hours=1),
                              ends_at=wall + timedelta(hours=1), before="none", after="nothing")
        session.add(lesson)
        session.flush()
        session.add(Occurrence(session_id=lesson.id, planned_start=now - timedelta(hours=1),
                               planned_end=now + timedelta(hours=1), state="running"))
    return str(node["uuid"])
