"""The documents of Enclume's own API. Rooms show their PCs by uuid, name and states only:
never driver_info or anything of a BMC."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request

from services.api.enclume.common import link
from services.api.enclume.stores import image_store
from services.api.views import timestamp
from services.classroom.image_versions import store_summary
from services.classroom.lead import Lead
from services.classroom.sessions import next_occurrences
from services.common.classroom_models import (
    ClassSession,
    Image,
    ImageVersion,
    Job,
    Occurrence,
    Room,
)
from services.images.store import ImageStore

IMAGE_FIELDS = ["uuid", "name", "description", "versions", "created_at", "updated_at",
                "links"]
ROOM_FIELDS = ["uuid", "name", "description", "time_zone", "idle_vlan", "class_vlan",
               "subnet", "wol_broadcast", "transfer", "pc_logins", "login_language", "layout",
               "allowed_images",
               "default_image", "pcs", "teachers", "created_at", "updated_at", "links"]
SESSION_FIELDS = ["uuid", "name", "room", "image", "recurrence", "start", "end", "rrule",
                  "before", "after", "created_by", "next_occurrences", "restore_lead",
                  "next_action", "created_at", "updated_at", "links"]
OCCURRENCE_FIELDS = ["uuid", "session", "room", "planned_start", "planned_end", "state",
                     "claimed_by", "claimed_at", "reason"]
JOB_FIELDS = ["uuid", "room", "kind", "requested_by", "state", "occurrence", "image",
              "pcs", "created_at", "updated_at", "finished_at", "links"]
Plan = tuple[Lead, dict[str, Any] | None]


def version_document(version: ImageVersion, store: ImageStore | None = None
                     ) -> dict[str, Any]:
    """``store``: add the summary of the version's manifest when the store holds it."""
    return {"uuid": version.uuid, "version": version.version, "source": version.source,
            "checksum": version.checksum, "disk_format": version.disk_format,
            "image_type": version.image_type, "kernel": version.kernel,
            "ramdisk": version.ramdisk, "boot_mode": version.boot_mode,
            "state": version.state, "reason": version.reason,
            "store": store_summary(store, version) if store is not None else None,
            "created_at": timestamp(version.created_at)}


def image_document(request: Request, image: Image) -> dict[str, Any]:
    stored = any(v.state == "available" for v in image.versions)
    store = image_store(request) if stored else None
    return {"uuid": image.uuid, "name": image.name, "description": image.description,
            "versions": [version_document(v, store) for v in image.versions],
            "created_at": timestamp(image.created_at), "updated_at": timestamp(image.updated_at),
            "links": link(request, f"images/{image.uuid}")}


def plan_document(plan: Plan) -> dict[str, Any]:
    """The room's restore lead and the timetable's next action (``GET`` of one room or
    session)."""
    lead, action = plan
    shown = None if action is None else {
        key: timestamp(value) if isinstance(value, datetime) else value
        for key, value in action.items()}
    return {"restore_lead": lead.document(), "next_action": shown}


def room_document(request: Request, room: Room, plan: Plan | None = None) -> dict[str, Any]:
    return {
        "uuid": room.uuid, "name": room.name, "description": room.description,
        "time_zone": room.time_zone, "idle_vlan": room.idle_vlan, "class_vlan": room.class_vlan,
        "subnet": room.subnet, "wol_broadcast": room.wol_broadcast,
        "transfer": room.transfer or "unicast",
        "pc_logins": room.pc_logins, "login_language": room.login_language,
        "layout": {"rows": room.layout_rows, "columns": room.layout_columns}
        if room.layout_rows and room.layout_columns else None,
        "allowed_images": [a.image.name for a in room.allowed_images],
        "default_image": room.default_image.name if room.default_image else None,
        "pcs": [{"uuid": pc.node.uuid, "name": pc.node.name,
                 "provision_state": pc.node.provision_state,
                 "power_state": pc.node.power_state} for pc in room.pcs],
        "teachers": [t.user_name for t in room.teachers],
        "created_at": timestamp(room.created_at), "updated_at": timestamp(room.updated_at),
        **(plan_document(plan) if plan is not None else {}),
        "links": link(request, f"rooms/{room.uuid}"),
    }


def session_document(request: Request, cls_session: ClassSession, now: datetime,
                     plan: Plan) -> dict[str, Any]:
    version = cls_session.image_version
    return {
        "uuid": cls_session.uuid, "name": cls_session.name, "room": cls_session.room.name,
        "image": f"{version.image.name}:{version.version}",
        "recurrence": cls_session.recurrence,
        "start": cls_session.starts_at.isoformat(), "end": cls_session.ends_at.isoformat(),
        "rrule": cls_session.rrule, "before": cls_session.before, "after": cls_session.after,
        "created_by": cls_session.created_by,
        "next_occurrences": [{"start": timestamp(s), "end": timestamp(e)}
                             for s, e in next_occurrences(cls_session, now)],
        **plan_document(plan),
        "created_at": timestamp(cls_session.created_at),
        "updated_at": timestamp(cls_session.updated_at),
        "links": link(request, f"sessions/{cls_session.uuid}"),
    }


def occurrence_document(occurrence: Occurrence) -> dict[str, Any]:
    return {"uuid": occurrence.uuid, "session": occurrence.session.uuid,
            "room": occurrence.session.room.name,
            "planned_start": timestamp(occurrence.planned_start),
            "planned_end": timestamp(occurrence.planned_end), "state": occurrence.state,
            "claimed_by": occurrence.claimed_by, "claimed_at": timestamp(occurrence.claimed_at),
            "reason": occurrence.reason}


def job_document(request: Request, job: Job) -> dict[str, Any]:
    names = {pc.node.uuid: pc.node.name for pc in job.room.pcs}
    return {
        "uuid": job.uuid, "room": job.room.name, "kind": job.kind,
        "requested_by": job.requested_by, "state": job.state,
        "occurrence": job.occurrence.uuid if job.occurrence else None,
        "image": (f"{job.image_version.image.name}:{job.image_version.version}"
                  if job.image_version else None),
        "pcs": [{"node": names.get(pc.node_uuid), "node_uuid": pc.node_uuid,
                 "step": pc.step, "percent": pc.percent,
                 "bytes_done": pc.bytes_done, "bytes_total": pc.bytes_total,
                 "restore_mode": pc.restore_mode, "fetched_bytes": pc.fetched_bytes,
                 "image_bytes": pc.image_bytes, "outcome": pc.outcome, "error": pc.error}
                for pc in job.pcs],
        "created_at": timestamp(job.created_at), "updated_at": timestamp(job.updated_at),
        "finished_at": timestamp(job.finished_at), "links": link(request, f"jobs/{job.uuid}"),
    }
