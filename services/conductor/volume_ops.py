"""The conductor's writes to volume connectors and targets, under the lock of their node.

Ironic's rules (ironic/conductor/manager.py update/destroy_volume_*): a volume changes only while
its node is powered off; it is deleted while the node is powered off or in enroll, manageable
or adopt failed. Otherwise 400 InvalidStateRequested.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from services.common.exceptions import InvalidStateRequested, NotFound
from services.common.lookups import node_uuid_of_volume
from services.common.optimistic import check_unchanged
from services.common.volumes import DELETE_ANY_POWER_STATES, KINDS, POWER_OFF
from services.conductor.port_ops import update_row

if TYPE_CHECKING:
    from services.common.db import Database
    from services.conductor.runner import TaskRunner


class VolumeOperations:
    """Mixed into ConductorManager: its ``db`` and ``runner`` locks."""

    db: Database
    runner: TaskRunner

    def update_volume(self, kind: str, volume_uuid: str, values: dict[str, Any],
                      node_uuid: str | None = None,
                      expected: dict[str, Any] | None = None) -> None:
        """Write checked values of the connector or target (``kind``) ``volume_uuid``; maybe
        move it to node ``node_uuid``. ``expected``: as for `update_node`."""
        spec = KINDS[kind]
        try:
            with self.runner.locked(node_uuid_of_volume(self.db, spec.model, volume_uuid,
                                                        spec.title)) as task:
                row = task.session.scalar(select(spec.model).where(
                    spec.model.uuid == volume_uuid))
                if row is None:
                    raise NotFound(f"{spec.title} {volume_uuid} could not be found.")
                check_unchanged(row, expected, f"{spec.title} {volume_uuid}")
                node = task.node
                if node.power_state != POWER_OFF:
                    raise InvalidStateRequested(f"{spec.label} update", node.uuid,
                                                str(node.power_state))
                update_row(task, row, node_uuid, values)
                task.session.flush()
        except IntegrityError as exc:
            raise spec.conflict(exc, values) from None

    def destroy_volume(self, kind: str, volume_uuid: str) -> None:
        spec = KINDS[kind]
        with self.runner.locked(node_uuid_of_volume(self.db, spec.model, volume_uuid,
                                                    spec.title)) as task:
            row = task.session.scalar(select(spec.model).where(spec.model.uuid == volume_uuid))
            if row is None:
                return
            node = task.node
            if (node.provision_state not in DELETE_ANY_POWER_STATES
                    and node.power_state != POWER_OFF):
                raise InvalidStateRequested(f"{spec.label} deletion", node.uuid,
                                            str(node.power_state))
            task.session.delete(row)
