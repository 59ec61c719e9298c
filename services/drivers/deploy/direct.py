"""The ``direct`` deploy interface: the agent writes the image to the disk itself.

A catalogue image version the image store holds is restored block by block
(``deploy.restore_blocks``, see ``block_restore``; ``deploy.multicast_restore`` when a room job
put the node in a multicast session, see ``multicast``); anything else is downloaded and streamed
to the disk (``standby.write_image``), a store version blocks cannot restore (a partition
image) from the store's disk with an image token. The agent verifies what it wrote (the
checksum while it streams, the manifest after a block restore); on any failure it leaves the
disk unbootable and the command fails with its reason, which becomes the node's last_error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.classroom.pc_logins import login_of
from services.common.config import Settings
from services.common.state_models import StudentState
from services.drivers.base import WAIT, DriverError, Resume
from services.drivers.deploy import (
    block_restore,
    config_drive,
    image,
    multicast,
    state_resume,
    steps,
)
from services.drivers.deploy.agent_deploy import AgentDeploy

if TYPE_CHECKING:
    from services.conductor.task import Task

WRITE_IMAGE = "standby.write_image"
RESTORE_BLOCKS = block_restore.RESTORE_BLOCKS


class DirectWriter:
    name = "direct"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _source(self, task: Task) -> tuple[block_restore.BlockSource | None,
                                           StudentState | None]:
        state = state_resume.resumed_state(task)
        return block_restore.block_source(task.node, self.settings,
                                          state.store_id if state else None), state

    def validate(self, task: Task) -> None:
        source, _ = self._source(task)
        if source is None or not source.by_blocks:
            self._write_params(task, source)

    def _write_params(self, task: Task, source: block_restore.BlockSource | None
                      ) -> dict[str, Any]:
        """``standby.write_image``'s parameters: from instance_info, or a version of the
        image store that blocks cannot restore."""
        if source is None:
            return image.write_image_params(task.node, self.settings)
        return block_restore.write_params(task.node, self.settings, source)

    def write(self, task: Task, resume: Resume) -> str | None:
        node, timeout_s = task.node, self.settings.deploy.agent_command_timeout_s
        source, state = self._source(task)
        if source is not None and source.by_blocks:
            # A student's state is theirs alone, and a PC restored after its user's login is
            # alone: neither takes the room's multicast stream.
            session = None if state is not None or login_of(node) else multicast.session_of(node)
            command = RESTORE_BLOCKS if session is None else multicast.MULTICAST_RESTORE

            def params() -> dict[str, Any]:
                restore = block_restore.restore_params(node, self.settings, source)
                if session is not None:
                    restore = multicast.multicast_params(self.settings, session, restore)
                return config_drive.with_session_token(task, self.settings, restore)
            result = steps.advance(task, command, params, timeout_s)
            if result is None:
                return WAIT
            if result.get("verified") is not True:  # an agent that did not check: never active
                raise DriverError(f"the agent restored image version {source.version_id} "
                                  f"without verifying the disk against its manifest")
            block_restore.record_restore(task, source, result)
            if state is not None:
                state_resume.mark_used(state)
            restored = source.version_id if state is None else \
                f"{source.base_version} with {state.owner}'s state {state.uuid}"
            task.record("deploying", f"The agent restored image version {restored} "
                                     f"({result.get('mode', source.mode)}, "
                                     f"{result.get('fetched_bytes')} bytes fetched) and "
                                     f"verified the disk against its manifest.")
            return None
        result = steps.advance(task, WRITE_IMAGE, lambda: config_drive.with_session_token(
            task, self.settings, self._write_params(task, source)), timeout_s)
        if result is None:
            return WAIT
        version_id, _ = block_restore.named_version(node, self.settings)
        block_restore.record_written(task, version_id, {
            "method": "write_image", "image_size": result.get("image_size")})
        task.record("deploying", "The agent wrote the image and verified its checksum.")
        return None


def direct_deploy(settings: Settings) -> AgentDeploy:
    return AgentDeploy(settings, DirectWriter(settings))
