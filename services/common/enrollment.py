"""How a node comes into being: the one constructor of new nodes, used by the API's
``POST /v1/nodes`` and by discovery. The values are checked first by the API
(``services.api.node_rules.values_for_create``); the provision state comes from the state
machine (``states.initial_state``), the only owner of provision states."""

from __future__ import annotations

from typing import Any

from services.common import states
from services.common.models import Node


def new_node(values: dict[str, Any], enroll: bool = True) -> Node:
    """A new node of checked ``values``: in ``enroll`` (``available`` for API < 1.11)."""
    return Node(**values, provision_state=states.initial_state(enroll=enroll).value)
