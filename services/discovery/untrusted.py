"""Nodes that discovery created and no operator has taken on yet.

Such a node's driver_info comes from the rules, but what chose the rules (and its BMC address)
is an inventory anyone on the provisioning network could have posted. Until an operator moves
it out of ``enroll`` (``manage`` clears the marker), nothing talks to its BMC (power sync skips
every node in ``enroll``) and further discovery posts may still update it; docs/discovery.md,
Security.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, func

from services.common import states
from services.common.models import Node

# driver_internal_info key set on nodes created by discovery, removed by ``manage``.
MARKER = "discovered"


def is_untrusted(node: Node) -> bool:
    return (node.provision_state == states.ProvisionState.ENROLL
            and bool((node.driver_internal_info or {}).get(MARKER)))


def untrusted() -> ColumnElement[bool]:
    """SQL: the node is in ``enroll`` and was created by discovery."""
    marked = func.coalesce(Node.driver_internal_info[MARKER].as_boolean(), False)
    return and_(Node.provision_state == states.ProvisionState.ENROLL.value, marked.is_(True))


def without_marker(driver_internal_info: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (driver_internal_info or {}).items() if k != MARKER}
