"""The ``iscsi`` deploy interface: the agent exports its disk over iSCSI and the conductor
writes the image into it with qemu-img.

On the first heartbeat in ``wait call-back`` the conductor resumes the deploy (the node is
``deploying`` while it holds it), fetches the image into its own cache and verifies the checksum
before anything is written, has the agent export the disk with per-deploy CHAP credentials
(kept in memory only), converts the image into the disk, and stops the export. A failure after
the export started stops it and asks the agent to erase the disk's metadata, so no half-written
image is left bootable.

A catalogue version beside the URL (``image_version``, what room restores set) is recorded as
what the disk holds; ``image_restore`` delta is written in full (the history says so); a version
only the image store has (named by ``image_source``) is refused: the direct interface's agent
reads the store.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from services.common.bootconfig.image_cache import ImageCache, ImageError, StartedAtFirstUse
from services.common.config import Settings
from services.drivers import agent_client
from services.drivers.base import DriverError, Resume
from services.drivers.deploy import block_restore, image, qemu_img, steps
from services.drivers.deploy.agent_deploy import AgentDeploy
from services.drivers.deploy.qemu_img import IscsiTarget
from services.drivers.driver_info import InvalidParameter

if TYPE_CHECKING:
    from services.conductor.task import Task

LOG = logging.getLogger(__name__)

START_TARGET = "iscsi.start_iscsi_target"
STOP_TARGET = "iscsi.stop_iscsi_target"
ERASE_METADATA = "deploy.erase_devices_metadata"
IQN_PREFIX = "iqn.2008-10.org.openstack"  # Ironic's, so existing tooling recognises it


def chap_credentials() -> tuple[str, str]:
    """A user name and a 16-character password (within every initiator's CHAP limits)."""
    return f"enclume-{secrets.token_hex(4)}", secrets.token_urlsafe(12)


def portal_of(result: dict[str, Any], agent_url: str, default_port: int) -> tuple[str, int]:
    """The portal the agent reports; an unspecified address means the agent's own."""
    host, _, port = str(result.get("portal") or "").rpartition(":")
    agent_host = urlsplit(agent_url).hostname or ""
    if not host or host in ("0.0.0.0", "[::]", "::"):
        host = agent_host
    try:
        number = int(port) if port else default_port
    except ValueError:
        raise DriverError(f"the agent reported an unusable iSCSI portal "
                          f"{result.get('portal')!r}") from None
    if not host:
        raise DriverError("the agent reported no iSCSI portal address")
    return host.strip("[]"), number


class IscsiWriter:
    name = "iscsi"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cache = StartedAtFirstUse(lambda: ImageCache(
            settings.effective_conductor_image_cache_dir, settings.images.cache_max_bytes,
            settings.images.download_timeout_s))

    def validate(self, task: Task) -> None:
        version_id, in_store_only = block_restore.named_version(task.node, self.settings)
        if in_store_only:
            raise InvalidParameter(f"The iscsi deploy interface writes an image from its URL; "
                                   f"image version {version_id} is named by image_source, so "
                                   f"only the image store has it: use the direct deploy "
                                   f"interface (its agent reads the store).")
        block_restore.restore_mode(task.node)  # a wrong value is refused as for direct
        deployed = image.deploy_image(task.node)
        if deployed.image_type != image.WHOLE_DISK:
            raise InvalidParameter("The iscsi deploy interface writes whole-disk images only; "
                                   "use the direct deploy interface for partition images.")
        if deployed.configdrive:
            raise InvalidParameter("The iscsi deploy interface does not write config drives; "
                                   "use the direct deploy interface.")

    def write(self, task: Task, resume: Resume) -> str | None:
        resume()
        node = task.node
        source = image.deploy_image(node).source
        timeout = self.settings.deploy.agent_command_timeout_s
        try:
            with self.cache().image(source) as path:
                source_format = qemu_img.image_format(path)
                username, password = chap_credentials()
                iqn = f"{IQN_PREFIX}:{node.uuid}"
                result = steps.run_to_end(task, START_TARGET, {
                    "iqn": iqn, "username": username, "password": password,
                    "portal_port": self.settings.deploy.iscsi_portal_port,
                    "target_disk": image.target_disk(node)}, timeout)
                host, port = portal_of(result, str(node.driver_internal_info.get(
                    agent_client.AGENT_URL, "")), self.settings.deploy.iscsi_portal_port)
                target = IscsiTarget(host, port, str(result.get("iscsi_target_iqn") or iqn),
                                     int(result.get("lun", 0)), username, password)
                self._write(task, path, source_format, target)
        except ImageError as exc:
            raise DriverError(f"the image could not be fetched and verified: {exc}") from None
        task.record("deploying", f"The conductor wrote the image ({source_format}, "
                                 f"{source.algorithm} verified) over iSCSI.")
        self._record_version(task)
        return None

    def _record_version(self, task: Task) -> None:
        """What the disk holds now (a room's next restore reads it); a delta asked for was a
        full write here, and the history says so."""
        version_id, _ = block_restore.named_version(task.node, self.settings)
        block_restore.record_written(task, version_id, {"method": "iscsi", "mode": "full"})
        if block_restore.restore_mode(task.node) == "delta":
            task.record("deploying", "The iscsi deploy interface writes whole images: the "
                                     "delta restore asked for was a full write.")

    def _write(self, task: Task, path: Any, source_format: str, target: IscsiTarget) -> None:
        timeout = self.settings.deploy.agent_command_timeout_s
        try:
            qemu_img.write_to_iscsi(path, source_format, target,
                                    self.settings.deploy.iscsi_write_timeout_s)
        except DriverError:
            self._stop_quietly(task, timeout)
            try:
                steps.run_to_end(task, ERASE_METADATA, {},
                                 self.settings.deploy.iscsi_write_timeout_s)
            except DriverError as exc:
                task.record("deploying", f"Erasing the half-written disk failed: {exc}",
                            severity="WARNING")
            raise
        steps.run_to_end(task, STOP_TARGET, {}, timeout)

    def _stop_quietly(self, task: Task, timeout: float) -> None:
        try:
            steps.run_to_end(task, STOP_TARGET, {}, timeout)
        except DriverError as exc:
            LOG.warning("node %s: stopping the iSCSI export failed: %s", task.node.uuid, exc)


def iscsi_deploy(settings: Settings) -> AgentDeploy:
    return AgentDeploy(settings, IscsiWriter(settings))
