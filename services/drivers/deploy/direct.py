"""The ``direct`` deploy interface: the agent downloads the image and streams it to the disk.

The agent verifies the checksum while it writes; on any failure (checksum, short download,
write error) it leaves the disk unbootable and the command fails with its reason, which becomes
the node's last_error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.common.config import Settings
from services.drivers.base import WAIT, Resume
from services.drivers.deploy import config_drive, image, steps
from services.drivers.deploy.agent_deploy import AgentDeploy

if TYPE_CHECKING:
    from services.conductor.task import Task

WRITE_IMAGE = "standby.write_image"
WRITE_STEP = {"interface": "deploy", "step": "write_image", "priority": 80, "argsinfo": None}


class DirectWriter:
    name = "direct"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def validate(self, task: Task) -> None:
        image.write_image_params(task.node, self.settings)

    def write(self, task: Task, resume: Resume) -> str | None:
        task.node.deploy_step = dict(WRITE_STEP)
        result = steps.advance(task, WRITE_IMAGE, lambda: config_drive.with_session_token(
                                   task, self.settings,
                                   image.write_image_params(task.node, self.settings)),
                               self.settings.agent_command_timeout_s)
        if result is None:
            return WAIT
        task.record("deploying", "The agent wrote the image and verified its checksum.")
        return None


def direct_deploy(settings: Settings) -> AgentDeploy:
    return AgentDeploy(settings, DirectWriter(settings))
