"""A task: one unit of conductor work on one locked node, in one database session."""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Any

from sqlalchemy.orm import Session

from services.common import metrics, states
from services.common.models import Node, NodeHistory, utcnow
from services.drivers.node_driver import NodeDriver

LOG = logging.getLogger(__name__)


class Task:
    def __init__(self, session: Session, node: Node, driver: NodeDriver, conductor: str) -> None:
        self.session = session
        self.node = node
        self.driver = driver
        self.conductor = conductor

    def process_event(self, event: str) -> states.ProvisionState:
        """Move the node through the state machine (the only way provision_state changes)."""
        before, entered_at = self.node.provision_state, self.node.provision_updated_at
        new_state = states.apply(self.node, event)
        metrics.count_transition(before, new_state.value, entered_at)
        LOG.info("node %s: %s -> %s (%s)", self.node.uuid, before, new_state.value, event)
        return new_state

    def fail(self, event_type: str, message: str, event: str = "fail") -> None:
        """Record an error on the node and move it to the failure state of its operation."""
        self.node.last_error = message
        self.record(event_type, message, severity="ERROR")
        if states.allows(self.node.provision_state, event):
            self.process_event(event)

    def record(self, event_type: str, message: str, severity: str = "INFO",
               user: str | None = None) -> None:
        node = self.node
        since = node.provision_updated_at
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)  # SQLite gives naive UTC datetimes back
        self.session.add(
            NodeHistory(node_id=node.id, conductor=self.conductor, event_type=event_type,
                        severity=severity, event=message, user=user,
                        state=node.provision_state,
                        target_provision_state=node.target_provision_state,
                        duration_seconds=None if since is None
                        else int((utcnow() - since).total_seconds()))
        )

    def update_internal_info(self, **values: Any) -> None:
        # JSON columns track assignment, not in-place mutation.
        self.node.driver_internal_info = {**self.node.driver_internal_info, **values}

    def pop_internal_info(self, *keys: str) -> None:
        info = dict(self.node.driver_internal_info)
        for key in keys:
            info.pop(key, None)
        self.node.driver_internal_info = info

    def commit(self) -> None:
        self.session.commit()
