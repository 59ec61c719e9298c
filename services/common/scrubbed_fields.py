"""Outward text stored in the database is scrubbed of secrets as it is assigned, whoever
assigns it (`services.common.secrets.scrub`), and every node's driver_info secrets loaded or
assigned in this process are remembered, so that no text this process writes shows them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from services.common.models import Allocation, Node, NodeHistory
from services.common.secrets import remember, scrub

# Texts an API user reads: errors, reasons, history events.
SCRUBBED = (Node.last_error, Node.maintenance_reason, Allocation.last_error, NodeHistory.event)


def _scrubbed(_target: Any, value: Any, _old: Any, _initiator: Any) -> Any:
    return scrub(value) if isinstance(value, str) else value


def _remember_assigned(_target: Any, value: Any, _old: Any, _initiator: Any) -> None:
    remember(value)


def _remember_loaded(node: Node, *_args: Any) -> None:
    remember(node.__dict__.get("driver_info"))


def install() -> None:
    """Idempotent: called where the models are used (services.common.db)."""
    for attribute in SCRUBBED:
        if not event.contains(attribute, "set", _scrubbed):
            event.listen(attribute, "set", _scrubbed, retval=True)
    if not event.contains(Node.driver_info, "set", _remember_assigned):
        event.listen(Node.driver_info, "set", _remember_assigned)
        event.listen(Node, "load", _remember_loaded)
        event.listen(Node, "refresh", _remember_loaded)

