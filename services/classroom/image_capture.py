"""Capture of a reference PC into the image catalogue: the clean step the conductor runs, and
the boot service's check of who may send blocks for which version (docs/images.md "Capture").

The capture is a manual cleaning with one step, ``deploy.capture_image``, planned by
``capture_step``: its args (image, version name, store session, where to send the disk) are in
the node's ``driver_internal_info["clean_steps"]``, so the boot service learns from the node,
not from the agent, what the blocks it receives are for.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from services.classroom import state_capture
from services.classroom.image_versions import forget_in_store, set_state
from services.common.agent_checks import agent_token_matches
from services.common.classroom_models import Image, ImageVersion
from services.common.config_classroom_sections import StudentStateSettings
from services.common.db import Database
from services.common.models import Node
from services.common.node_fields import AGENT_TOKEN
from services.common.states import ProvisionState
from services.images.errors import StoreError
from services.images.manifest import Manifest
from services.images.store import ImageStore

STEP = "capture_image"
# The conductor's provisioning option carrying the planned step: only the capture API sets it
# (the Ironic API refuses unknown keys), so no user's clean request can name the step.
OPTION = "capture_step"
AGENT_COMMAND = "image.capture_blocks"
CAPTURE_STATES = (ProvisionState.CLEANWAIT.value, ProvisionState.CLEANING.value)
SAVE_STATES = (ProvisionState.DEPLOYWAIT.value, ProvisionState.DEPLOYING.value)


@dataclass(frozen=True)
class CaptureTarget:
    """What a node's capture makes: its session in the store, the image and version name."""

    session: str
    image: str  # its uuid
    version: str
    boot_mode: str = "uefi"
    image_type: str = "whole-disk"  # or "partition": the root partition alone
    kernel: str | None = None  # a partition version's (the catalogue requires them)
    ramdisk: str | None = None
    # A student's state saved at a session's end (services/classroom/state_capture.py): the
    # deploy's plan and the node, in place of an image and a version name.
    student: dict[str, Any] | None = None

    def source(self) -> dict[str, object]:
        """What the store keeps in the captured version's source.json."""
        if self.student is not None:
            return {"disk_format": "raw", "captured": True, "student_state": True,
                    "owner": self.student["owner"],
                    "base_version": self.student["image_version"]}
        return {"disk_format": "raw", "captured": True, "image": self.image,
                "version": self.version}


class Refused(Exception):
    """A capture request refused, with the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def session_id(image_uuid: str, version: str, node_uuid: str) -> str:
    """The store session of a capture: the same for a retry of the same version from the same
    PC, so the blocks an interrupted attempt sent are not sent again; another PC captured under
    the same name meanwhile has its own (the first commit wins, the other is refused)."""
    return hashlib.sha256(f"{image_uuid}/{version}/{node_uuid}".encode()).hexdigest()[:40]


def capture_step(image: Image, version: str, boot_url: str, node_uuid: str,
                 target_disk: str | None, partition: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    """The planned step (the conductor adds the node's ``boot_mode`` to its args);
    ``partition``: ``kernel``, ``ramdisk`` and optionally ``root_partition`` of a partition
    capture."""
    args: dict[str, Any] = {
        "image": image.uuid, "version": version,
        "session": session_id(image.uuid, version, node_uuid),
        "capture_url": f"{boot_url.rstrip('/')}/image-captures/{node_uuid}"}
    if target_disk is not None:
        args["target_disk"] = target_disk
    if partition is not None:
        args.update(image_type="partition", **partition)
    return {"interface": "deploy", "step": STEP, "priority": 0, "args": args,
            "abortable": True}


def planned_capture(internal_info: dict[str, Any]) -> dict[str, Any] | None:
    """The args of the node's planned capture step, if it has one."""
    for step in internal_info.get("clean_steps") or []:
        if isinstance(step, dict) and step.get("step") == STEP:
            args = step.get("args")
            return args if isinstance(args, dict) else None
    return None


def version_document(version: ImageVersion) -> dict[str, Any]:
    """What the agent is answered at the commit (the boot service adds the disk's size)."""
    return {"uuid": version.uuid, "image": version.image.name, "version": version.version,
            "checksum": version.checksum, "state": version.state,
            "disk_format": version.disk_format, "image_type": version.image_type,
            "boot_mode": version.boot_mode}


class DatabaseCaptures:
    """The boot service's ``CaptureAuthority``: the node's agent token and planned step (or
    the student's state its deploy saves first)."""

    def __init__(self, db: Database, store: ImageStore | None = None,
                 states: StudentStateSettings | None = None) -> None:
        self.db, self.store = db, store
        self.states = states or StudentStateSettings()

    def target(self, node_uuid: str, token: str | None) -> CaptureTarget:
        if not token:
            raise Refused(401, "the agent token is required (X-Agent-Token)")
        with self.db.session() as session:
            node = session.scalar(select(Node).where(Node.uuid == node_uuid.lower()))
            if node is None:
                raise Refused(404, f"no node {node_uuid}")
            info = dict(node.driver_internal_info or {})
            expected = info.get(AGENT_TOKEN)
            if not agent_token_matches(expected, token):
                raise Refused(403, f"invalid agent token for node {node_uuid}")
            args = planned_capture(info)
            plan = info.get(state_capture.PLAN)
            if args is None and node.provision_state in SAVE_STATES and \
                    isinstance(plan, dict) and not plan.get("done"):
                return CaptureTarget(session=str(plan["session"]), image="", version="",
                                     student={**plan, "node": node.uuid})
            if node.provision_state not in CAPTURE_STATES or args is None:
                raise Refused(409, f"node {node_uuid} is not being captured")
        return CaptureTarget(session=str(args["session"]), image=str(args["image"]),
                             version=str(args["version"]),
                             boot_mode=str(args.get("boot_mode") or "uefi"),
                             image_type=str(args.get("image_type") or "whole-disk"),
                             kernel=args.get("kernel"), ramdisk=args.get("ramdisk"))

    def _find(self, session: Any, target: CaptureTarget) -> tuple[Image, ImageVersion | None]:
        image = session.scalar(select(Image).where(Image.uuid == target.image))
        if image is None:
            raise Refused(409, "the image being captured was deleted meanwhile")
        found = [v for v in image.versions if v.version == target.version]
        return image, found[0] if found else None

    def record(self, target: CaptureTarget, version_id: str, manifest: Manifest
               ) -> dict[str, Any]:
        if target.student is not None:
            return self._record_state(target.student, version_id, manifest)
        with self.db.session() as session:
            image, taken = self._find(session, target)
            if taken is not None:
                raise Refused(409, f"image {image.name} got a version {target.version} "
                                   f"meanwhile: the capture was not kept")
            version = ImageVersion(
                uuid=version_id, image_id=image.id, version=target.version, source=version_id,
                checksum=manifest.image_sha256, disk_format="raw",
                image_type=target.image_type, kernel=target.kernel, ramdisk=target.ramdisk,
                boot_mode=target.boot_mode)
            set_state(version, "available")  # in the store under its uuid
            session.add(version)
            session.flush()
            session.refresh(version)
            return version_document(version)

    def _record_state(self, plan: dict[str, Any], store_id: str, manifest: Manifest
                      ) -> dict[str, Any]:
        if self.store is None:
            raise Refused(409, "this boot service saves no students' states")
        try:
            base = self.store.manifest(plan["image_version"])
        except StoreError:
            raise Refused(409, f"image version {plan['image_version']} is not in the image "
                               f"store: {plan['owner']}'s work was not saved") from None
        try:
            with self.db.session() as session:
                document, replaced = state_capture.record_capture(
                    session, self.states, plan["node"], plan, base, manifest, store_id)
        except state_capture.CaptureRefused as exc:
            raise Refused(409, str(exc)) from None
        if replaced is not None:
            forget_in_store(self.store, replaced)
        return document

    def recorded(self, target: CaptureTarget) -> dict[str, Any] | None:
        if target.student is not None:
            return None  # a lost answer: the deploy fails and a retry captures again
        with self.db.session() as session:
            _, version = self._find(session, target)
            return None if version is None else version_document(version)
