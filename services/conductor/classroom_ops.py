"""What a room job asks of a node beyond provisioning and power: a class's end that neither
restores nor powers its PCs off moves each one's switch ports back to the idle VLAN and ends
its login (services/drivers/deploy/login_step.leave_class_vlan), under the node's lock, on the
conductor that owns the node (over RPC from the conductor that owns the room)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from services.common.exceptions import Invalid
from services.drivers.deploy import login_step

if TYPE_CHECKING:
    from services.conductor.runner import TaskRunner


class ClassroomOperations:
    """Mixed into ConductorManager: its ``runner`` locks."""

    runner: TaskRunner

    def leave_class_vlan(self, node_uuid: str, class_ended_at: str) -> dict[str, Any]:
        """``{"moved", "state", "error"}``: whether the ports moved, the node's provision
        state, the switch's failure. 409 while the node is locked (the job retries).
        ``class_ended_at`` (ISO 8601): a PC provisioned since then is another use's, left
        alone."""
        try:
            ended = datetime.fromisoformat(class_ended_at)
        except (TypeError, ValueError):
            raise Invalid(f"class_ended_at must be an ISO 8601 time, got {class_ended_at!r}"
                          ) from None
        with self.runner.locked(node_uuid) as task:
            return login_step.leave_class_vlan(task, datetime.now(UTC), ended)
