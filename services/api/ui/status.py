"""What each PC of a room shows: its node's power and state, and its row in the room's latest
job that touched it (a restore's step and percent, a failure's reason), in a teacher's words."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.api.ui.i18n import Translate
from services.classroom.pc_logins import ended_with_unsaved_work
from services.common import states
from services.common.classroom_models import Image, ImageVersion, Job, JobPC, Room

QUEUED = "queued"
POWER_WORDS = {"power on": "on", "power off": "off"}
IN_PROGRESS_WORDS = {"wake": "powering on", "power-off": "powering off",
                     "log-out": "leaving the class network"}
# The conductor's "<Operation> failed for node <uuid>: <reason>": the teacher reads the reason.
NODE_PREFIX = re.compile(r"^\w[\w ]* failed for node [0-9a-f-]{36}: ")


@dataclass(frozen=True)
class PcStatus:
    uuid: str
    name: str
    power: str | None
    provision: str | None
    job: str | None = None  # the UUID of the latest job that touched the PC
    kind: str | None = None
    step: str | None = None
    percent: int | None = None
    bytes_done: int | None = None
    outcome: str | None = None
    error: str | None = None
    image: str | None = None  # IMAGE:VERSION of its last successful restore
    unsaved_work_of: str | None = None  # the student logged out with work not yet saved

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"

    @property
    def in_progress(self) -> bool:
        return self.job is not None and self.outcome is None


def room_statuses(session: Session, room: Room) -> list[PcStatus]:
    """Every PC of ``room``, in the room's order, as it stands now."""
    in_room = select(func.max(JobPC.id)).join(Job).where(Job.room_id == room.id)
    latest = {pc.node_uuid: (pc, job) for pc, job in session.execute(
        select(JobPC, Job).join(Job).where(JobPC.id.in_(in_room.group_by(JobPC.node_uuid))))}
    restored = in_room.where(Job.kind == "restore", JobPC.outcome == "succeeded")
    images = {node: f"{image}:{version}" for node, image, version in session.execute(
        select(JobPC.node_uuid, Image.name, ImageVersion.version)
        .join(Job, JobPC.job_id == Job.id)
        .join(ImageVersion, Job.image_version_id == ImageVersion.id)
        .join(Image, ImageVersion.image_id == Image.id)
        .where(JobPC.id.in_(restored.group_by(JobPC.node_uuid))))}
    statuses = []
    for room_pc in room.pcs:
        node = room_pc.node
        found = latest.get(node.uuid)
        row, job = found if found else (None, None)
        ended = ended_with_unsaved_work(node)
        statuses.append(PcStatus(
            uuid=node.uuid, name=node.name or node.uuid, power=node.power_state,
            provision=node.provision_state, job=job.uuid if job else None,
            kind=job.kind if job else None, step=row.step if row else None,
            percent=row.percent if row else None, bytes_done=row.bytes_done if row else None,
            outcome=row.outcome if row else None, error=row.error if row else None,
            image=images.get(node.uuid), unsaved_work_of=ended["user"] if ended else None))
    return statuses


def power_words(status: PcStatus, t: Translate) -> str:
    return t(POWER_WORDS.get(status.power or "", "unknown"))


def state_words(status: PcStatus, t: Translate, rate_mb_s: float | None = None) -> str:
    """"restoring 63 % at 11 MB/s", "active on debian-12:2026-09", "failed: the reason"."""
    if status.failed:
        return t("failed: {reason}", reason=reason_words(status.error)) if status.error \
            else t("failed")
    if status.in_progress:
        if status.step == QUEUED:
            return t("waiting to start")
        if status.kind in IN_PROGRESS_WORDS:
            return t(IN_PROGRESS_WORDS[status.kind])
        if status.percent is None:
            return t("restoring")
        if rate_mb_s:
            rate = f"{rate_mb_s:.0f}" if rate_mb_s >= 10 else f"{rate_mb_s:.1f}"
            return t("restoring {percent} % at {rate} MB/s", percent=status.percent,
                     rate=rate.replace(".", t(".")))  # the decimal mark: a comma in French
        return t("restoring {percent} %", percent=status.percent)
    if status.provision == states.S.ACTIVE.value:
        return t("active on {image}", image=status.image) if status.image else t("active")
    if status.provision == states.S.AVAILABLE.value:
        return t("ready")
    if status.provision == states.S.DEPLOYFAIL.value:
        return t("failed")
    return t("not available ({state})", state=status.provision or "?")


def reason_words(error: str) -> str:
    """A failure's reason without the node's UUID the conductor puts before it."""
    return NODE_PREFIX.sub("", error, count=1)


def tone(status: PcStatus) -> str:
    """The card's colour class: failed, busy, active or idle."""
    if status.failed or status.provision == states.S.DEPLOYFAIL.value:
        return "failed"
    if status.in_progress:
        return "busy"
    return "active" if status.provision == states.S.ACTIVE.value else "idle"
