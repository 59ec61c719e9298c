"""The job advancer: drives the room jobs of the rooms the hash ring gives this conductor.

Rooms are on the ring like nodes (key: the room's UUID), so exactly one live conductor advances
a room's jobs. Each pass, for every PC of a pending or running job:

- a ``queued`` PC is taken (``queued`` → ``starting``, one conditional UPDATE, so that two
  conductors that both believe they own the room during a ring change never start it twice)
  and started through the conductor API, i.e. the existing state machine: a
  restore rebuilds an ``active`` (or ``deploy failed``) PC with the image's instance_info and
  deploys an ``available`` one; wake and power-off change the power state. A refusal that
  passes (the deploy concurrency limit, no free worker, a node busy: 503 or 409) leaves the PC
  queued for the next pass; any other refusal fails that PC with its reason;
- a started PC follows its node: ``step`` is the provision state; the image write's progress
  is copied from what the agent reports (its command document's ``progress``, which the
  conductor polling it on each heartbeat keeps in ``driver_internal_info["agent_command"]``: one
  node write per heartbeat, none per block); the outcome is set when the node is ``active``
  (succeeded, with how the disk was written: ``restore_mode``, bytes fetched and the image's
  size) or ``deploy failed`` (failed, with the node's last error).

A restore names the catalogue version in instance_info (``image_version``) with the block
restore's mode (``image_restore``): ``restore-delta`` asks for delta; ``restore`` asks for delta
when the disk last had a version of the same image (``driver_internal_info["image_written"]``,
which the deploy path keeps: delta compares blocks, so it pays off across versions of one
image), full otherwise. The deploy path writes versions the image store lacks by the plain
download (docs/images.md).

A restore of a room whose ``transfer`` is ``multicast`` asks the boot service for one multicast
session for the PCs it starts in a pass and puts it in their instance_info
(``services.drivers.deploy.multicast``); each PC's deploy then receives the stream and repairs
over HTTP. No session (the boot service refused, the store lacks the version): unicast. A PC
that dies is reported as any failed deploy; the stream does not wait for it.

A ``log-out`` (a teacher's action, or a class's end with ``after: nothing``) asks the
conductor of each PC, all at once, to move its ports back to the idle VLAN and end its login
(``leave_class_vlan``, the class ended when the job was created); its answer is the PC's
outcome at once (``idle VLAN``; a switch's failure fails that PC alone; a busy node waits for
a later pass).

A job ends ``done`` when every PC succeeded, ``failed`` when every PC failed, ``failed-partly``
when some failed and others succeeded.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from services.classroom import state_capture
from services.classroom.image_versions import instance_info
from services.classroom.jobs import (
    ACTIVE_JOB_STATES,
    ENDED_JOB_STATES,
    FORCED_DELTA,
    LOG_OUT,
    QUEUED,
)
from services.classroom.times import as_utc
from services.common import states
from services.common.classroom_models import ImageVersion, Job, JobPC, Room
from services.common.config import Settings
from services.common.db import Database
from services.common.exceptions import Conflict, EnclumeError, TemporaryFailure
from services.common.membership import Membership
from services.common.models import Node, utcnow
from services.common.secrets import scrub
from services.conductor.interface import ConductorAPI
from services.drivers.agent_client import AGENT_COMMAND
from services.drivers.base import POWER_OFF, POWER_ON
from services.drivers.deploy import multicast as deploy_multicast
from services.drivers.deploy.block_restore import IMAGE_WRITTEN
from services.drivers.deploy.direct import RESTORE_BLOCKS, WRITE_IMAGE

LOG = logging.getLogger(__name__)

POWER_TARGET = {"wake": POWER_ON, "power-off": POWER_OFF}
REBUILDABLE = frozenset({states.S.ACTIVE.value, states.S.DEPLOYFAIL.value})
STARTED_STATES = frozenset({states.S.DEPLOYING.value, states.S.DEPLOYWAIT.value})
STARTING = "starting"
STARTING_S = timedelta(seconds=60)  # longer than a start (an update and a provisioning call)


AGENT_WRITES = (WRITE_IMAGE, RESTORE_BLOCKS, deploy_multicast.MULTICAST_RESTORE)
LOG_OUT_THREADS = 16  # a log-out's PCs moved at once (their switch batches them)
IDLE_VLAN, CLASS_VLAN = "idle VLAN", "class VLAN"  # a log-out PC's step once it is done


class JobAdvancer:
    def __init__(self, db: Database, membership: Membership, host: str, group: str,
                 conductor: ConductorAPI, settings: Settings | None = None) -> None:
        self.settings = settings  # None: no multicast sessions (rooms restore by unicast)
        self.db = db
        self.membership = membership
        self.host = host
        self.group = group
        self.conductor = conductor

    def owns(self, room_uuid: str) -> bool:
        return self.membership.ring(self.group).owner(room_uuid) == self.host

    def advance(self) -> int:
        """One pass over the active jobs of this conductor's rooms; how many were advanced."""
        with self.db.session() as session:
            rows = session.execute(select(Job.id, Room.uuid).join(Room).where(
                Job.state.in_(ACTIVE_JOB_STATES)).order_by(Job.id)).all()
        mine = [job_id for job_id, room_uuid in rows if self.owns(room_uuid)]
        for job_id in mine:
            try:
                self.advance_job(job_id)
            except Exception:
                LOG.exception("room job %s could not be advanced; trying next pass", job_id)
        return len(mine)

    def advance_job(self, job_id: int) -> None:
        with self.db.session() as session:
            job = session.scalar(select(Job).where(Job.id == job_id).options(
                selectinload(Job.pcs), selectinload(Job.image_version),
                selectinload(Job.room)))
            if job is None:
                return
            kind, version, created_at = job.kind, job.image_version, job.created_at
            multicast = (kind not in POWER_TARGET and version is not None
                         and job.room.transfer == "multicast" and self.settings is not None)
            info = instance_info(version) if version is not None else None
            image_id = version.image_id if version is not None else None
            rows = {pc.node_uuid: pc for pc in job.pcs if pc.outcome is None}
            nodes = {n.uuid: n for n in session.scalars(
                select(Node).where(Node.uuid.in_(list(rows))))}
            queued = [pc.id for pc in rows.values() if pc.step == QUEUED]
            # A power-off that saves a student's work first is a deploy (restore_mode set).
            observed = {uuid: self._observe(
                kind if kind not in POWER_TARGET or pc.restore_mode is None else "restore",
                nodes.get(uuid), pc) for uuid, pc in rows.items() if pc.step != QUEUED}
            by_id = {pc.id: pc.node_uuid for pc in rows.values()}
        if kind == LOG_OUT:
            claimed = [by_id[pc_id] for pc_id in queued if self._claim_start(pc_id)]
            self._record(job_id, self._leave_class_vlan(claimed, as_utc(created_at)))
        elif multicast and info is not None:
            claimed = [pc_id for pc_id in queued if self._claim_start(pc_id)]
            info = {**info, **self._session_for(info["image_version"], len(claimed))}
            for pc_id in claimed:
                self._record(job_id, {by_id[pc_id]: self._start(kind, by_id[pc_id], info,
                                                                image_id)})
        else:
            for pc_id in queued:
                if self._claim_start(pc_id):
                    # Recorded at once: a conductor killed later in the pass loses no start.
                    self._record(job_id, {by_id[pc_id]: self._start(kind, by_id[pc_id], info,
                                                                    image_id)})
        self._record(job_id, observed)

    def _leave_class_vlan(self, node_uuids: list[str], class_ended_at: datetime
                          ) -> dict[str, dict[str, Any]]:
        """A log-out's PCs all at once, in threads, so that each switch takes their ports in
        one batch (SwitchBatcher); one PC that fails (its switch does not answer) fails alone.
        ``class_ended_at``: the job's creation (the class's end, or the teacher's request); a
        PC provisioned since (busy then, restored for the next class) is left."""
        if not node_uuids:
            return {}
        with ThreadPoolExecutor(max_workers=min(LOG_OUT_THREADS, len(node_uuids)),
                                thread_name_prefix="log-out") as pool:
            return dict(zip(node_uuids, pool.map(
                lambda uuid: self._leave_one(uuid, class_ended_at.isoformat()), node_uuids),
                strict=True))

    def _leave_one(self, node_uuid: str, class_ended_at: str) -> dict[str, Any]:
        try:
            moved = self.conductor.leave_class_vlan(node_uuid, class_ended_at)
        except EnclumeError as exc:
            if exc.code in (409, 503):  # the node busy, no conductor free: a later pass
                LOG.info("room job: PC %s waits: %s", node_uuid, exc.message)
                return {"step": QUEUED}
            return {"outcome": "failed", "error": scrub(exc.message)}
        except Exception:  # one PC's surprise must not lose the others' recorded moves
            LOG.exception("room job: PC %s could not leave the class VLAN", node_uuid)
            return {"outcome": "failed",
                    "error": "An internal error of the conductor; see its log."}
        if moved.get("error"):
            return {"step": CLASS_VLAN, "outcome": "failed", "error": scrub(moved["error"])}
        # Not active (being restored, cleaned...): not on the class VLAN, nothing to move.
        return {"step": IDLE_VLAN if moved.get("moved") else moved.get("state"),
                "outcome": "succeeded"}

    def _session_for(self, version_uuid: str, pcs: int) -> dict[str, Any]:
        """The instance_info of the PCs a multicast room starts in this pass: one boot service
        session for them all; none (unicast, the fallback) when it cannot be opened."""
        if pcs == 0 or self.settings is None:
            return {}
        session = deploy_multicast.open_session(self.settings, version_uuid, pcs)
        if session is None:
            return {}
        return {deploy_multicast.TRANSFER: "multicast", deploy_multicast.SESSION: session}

    def _record(self, job_id: int, values: dict[str, dict[str, Any]]) -> None:
        with self.db.session() as session:
            job = session.scalar(select(Job).where(Job.id == job_id).options(
                selectinload(Job.pcs)))
            assert job is not None
            for pc in job.pcs:
                if pc.outcome is None and pc.node_uuid in values:
                    _apply(pc, values[pc.node_uuid])
            job.state = _job_state(job.pcs)
            if job.state in ENDED_JOB_STATES and job.finished_at is None:
                job.finished_at = utcnow()  # the first end: a room's restore duration

    def _claim_start(self, pc_id: int) -> bool:
        """``queued`` → ``starting`` with one conditional UPDATE: while the ring changes, two
        conductors may both believe they own a room; only one of them starts each PC."""
        with self.db.session() as session:
            return bool(session.execute(
                update(JobPC).where(JobPC.id == pc_id, JobPC.step == QUEUED,
                                    JobPC.outcome.is_(None))
                .values(step=STARTING, updated_at=utcnow())
                .execution_options(synchronize_session=False)).rowcount)

    def _start(self, kind: str, node_uuid: str, info: dict[str, Any] | None,
               image_id: int | None) -> dict[str, Any]:
        """Start one PC's action; the values its row takes (a queued PC stays queued)."""
        try:
            with self.db.session() as session:
                state, written = session.execute(select(
                    Node.provision_state, Node.driver_internal_info).where(
                    Node.uuid == node_uuid)).one_or_none() or (None, None)
                login = state_capture.logged_in(written) if kind != "wake" and \
                    state in REBUILDABLE else None
                if kind == "power-off" and login is not None:
                    info = _saving_power_off(session, login["image_version"])
                    image_id = None if info is None else info.pop("image_id")
                mode = "delta" if kind == FORCED_DELTA or _same_image(
                    session, written, image_id) else "full"
            if kind in POWER_TARGET and (login is None or info is None):
                self.conductor.change_power_state(node_uuid, POWER_TARGET[kind])
                return {"step": f"{POWER_TARGET[kind]} requested"}
            if login is not None:  # its student's work is saved before the disk is rewritten
                info = {**(info or {}), state_capture.SAVE_FLAG: True}
            if state is None:
                return {"outcome": "failed", "error": "The PC's node no longer exists."}
            if state not in REBUILDABLE and state != states.S.AVAILABLE.value:
                return {"outcome": "failed",
                        "error": f"The PC is {state}: only an active, available or "
                                 "deploy failed PC can be restored."}
            self.conductor.update_node(node_uuid, {"instance_info": {**(info or {}),
                                                                     "image_restore": mode}},
                                       {"provision_state": state})
            target = "rebuild" if state in REBUILDABLE else "active"
            self.conductor.do_provisioning_action(node_uuid, target, {})
            return {"step": states.S.DEPLOYING.value, "percent": 0, "restore_mode": mode}
        except (TemporaryFailure, Conflict) as exc:
            # The deploy limit, no free worker, a busy node: its turn comes in a later pass.
            LOG.info("room job: PC %s waits: %s", node_uuid, exc.message)
            return {"step": QUEUED}
        except EnclumeError as exc:
            return {"outcome": "failed", "error": scrub(exc.message)}

    def _observe(self, kind: str, node: Node | None, pc: JobPC) -> dict[str, Any]:
        """A started PC's row values from its node's state now."""
        if node is None:
            return {"outcome": "failed", "error": "The PC's node no longer exists."}
        if pc.step == STARTING and (kind == LOG_OUT or not _began(kind, node, pc)):
            # Being started by this or another conductor; one that died before it could say
            # whether it started the PC leaves it here: queued again after a while, unless its
            # node shows the work began (then it is followed as any started PC).
            stale = pc.updated_at is None or as_utc(pc.updated_at) < utcnow() - STARTING_S
            return {"step": QUEUED} if stale else {}
        if kind in POWER_TARGET:
            if node.target_power_state is not None:
                return {}
            if node.power_state == POWER_TARGET[kind]:
                return {"step": node.power_state, "outcome": "succeeded"}
            if node.power_state is None and not node.last_error:
                # Wake-on-LAN cannot read the state back: the request went through, unconfirmed.
                return {"step": f"{POWER_TARGET[kind]} requested", "outcome": "succeeded"}
            return {"step": node.power_state, "outcome": "failed",
                    "error": scrub(node.last_error or f"The PC is still {node.power_state}.")}
        values: dict[str, Any] = {"step": node.provision_state}
        values.update(_write_progress(node))
        if node.provision_state == states.S.ACTIVE.value:
            values.update(outcome="succeeded", percent=100, **_how_written(node))
            # the write ended whole, whatever the last heartbeat saw of it (often nothing,
            # for a restore shorter than a heartbeat)
            total = pc.bytes_total or values.get("image_bytes")
            if isinstance(total, int):
                values.update(bytes_done=total, bytes_total=total)
        elif node.provision_state == states.S.DEPLOYFAIL.value:
            values.update(outcome="failed",
                          error=scrub(node.last_error or "The deploy failed."))
        return values


def _saving_power_off(session: Any, version_uuid: str) -> dict[str, Any] | None:
    """The instance_info of a power-off that saves a logged-in student's work first: the
    version the student had restored, written back, then the PC off (None: the version is
    gone, the PC is just powered off)."""
    version = session.scalar(select(ImageVersion).where(ImageVersion.uuid == version_uuid))
    if version is None:
        return None
    return {**instance_info(version), state_capture.POWER_OFF_AFTER: True,
            "image_id": version.image_id}


def _began(kind: str, node: Node, pc: JobPC) -> bool:
    """Whether a ``starting`` PC's action began: its node changed state since it was taken."""
    if kind in POWER_TARGET:
        return node.target_power_state is not None or node.power_state == POWER_TARGET[kind]
    if node.provision_state in STARTED_STATES:
        return True
    changed, taken = node.provision_updated_at, pc.updated_at
    return changed is not None and taken is not None and as_utc(changed) >= as_utc(taken)


def _same_image(session: Any, internal_info: dict[str, Any] | None,
                image_id: int | None) -> bool:
    """Whether the disk last had a version of image ``image_id`` written successfully."""
    written = (internal_info or {}).get(IMAGE_WRITTEN)
    version = written.get("version") if isinstance(written, dict) else None
    if image_id is None or not isinstance(version, str):
        return False
    return session.scalar(select(ImageVersion.image_id).where(
        ImageVersion.uuid == version)) == image_id


def _how_written(node: Node) -> dict[str, Any]:
    """The restore mode used (``delta+full``: a delta that fell back to a full write;
    ``download``: the plain image download, the store lacking the version), the bytes fetched
    and the image's size, as the deploy path recorded them."""
    written = (node.driver_internal_info or {}).get(IMAGE_WRITTEN)
    if not isinstance(written, dict):
        return {}
    if written.get("method") != "restore_blocks":
        return {"restore_mode": "download", "image_bytes": written.get("image_size")}
    mode = "delta+full" if written.get("fell_back_to_full") else written.get("mode")
    if written.get("transfer") == "multicast":
        mode = "multicast"
    return {"restore_mode": mode, "fetched_bytes": written.get("fetched_bytes"),
            "image_bytes": written.get("image_size")}


def _write_progress(node: Node) -> dict[str, Any]:
    """Bytes done and total of the image write the agent runs now, if it reported them (of
    the image: a block restore's compare or write pass and its verification each count for
    half)."""
    command = (node.driver_internal_info or {}).get(AGENT_COMMAND)
    if not isinstance(command, dict) or command.get("name") not in AGENT_WRITES:
        return {}
    progress = command.get("progress") or {}
    done, total = progress.get("done_bytes"), progress.get("total_bytes")
    if not isinstance(done, int) or not isinstance(total, int) or total <= 0:
        return {"bytes_done": done} if isinstance(done, int) else {}
    return {"bytes_done": done, "bytes_total": total, "percent": min(99, done * 100 // total)}


def _apply(pc: JobPC, values: dict[str, Any]) -> None:
    for field, value in values.items():
        if getattr(pc, field) != value:
            setattr(pc, field, value)


def _job_state(pcs: list[JobPC]) -> str:
    if any(pc.outcome is None for pc in pcs):
        return "running" if any(pc.step != QUEUED or pc.outcome for pc in pcs) else "pending"
    if all(pc.outcome == "succeeded" for pc in pcs):
        return "done"
    return "failed" if all(pc.outcome == "failed" for pc in pcs) else "failed-partly"
