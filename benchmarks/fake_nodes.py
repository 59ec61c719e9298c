"""Benchmark helper: fake-hardware nodes as the API would store them, inserted in bulk.

A node enrolled through ``POST /v1/nodes`` with ``{"driver": "fake-hardware"}`` gets every
``*_interface`` set to the hardware type's default (``services/api/node_rules.py``) and its
``ring_hash`` computed by the ``Node`` constructor. The nodes made here are the same, moved on to
``available`` and ``power off`` as after manage and provide, and written with SQLAlchemy in a
few large batches instead of 10,000 API calls.
"""

from __future__ import annotations

import time

from sqlalchemy import func, select

from services.common.db import Database
from services.common.models import Node, utcnow
from services.common.node_fields import INTERFACES
from services.common.states import ProvisionState
from services.drivers.base import POWER_OFF
from services.drivers.registry import FAKE_HARDWARE

DRIVER = "fake-hardware"
DEFAULT_INTERFACES = {f"{name}_interface": FAKE_HARDWARE.default(name) for name in INTERFACES}
BATCH = 1000


def new_node(index: int) -> Node:
    """One available, powered-off fake-hardware node named ``bench-<index>``."""
    return Node(name=f"bench-{index:05d}", driver=DRIVER, **DEFAULT_INTERFACES,
                provision_state=ProvisionState.AVAILABLE.value, power_state=POWER_OFF,
                provision_updated_at=utcnow())


def insert_nodes(db: Database, count: int, batch: int = BATCH) -> float:
    """Insert ``count`` nodes, ``batch`` per transaction; returns the seconds it took."""
    started = time.monotonic()
    for first in range(0, count, batch):
        with db.session() as session:
            session.add_all(new_node(i) for i in range(first, min(first + batch, count)))
    return time.monotonic() - started


def count_nodes(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Node)) or 0)
