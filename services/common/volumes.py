"""Volume connectors and targets (Ironic API 1.32): what the API and the conductor share.

A connector says how storage sees a node (an iSCSI initiator's IQN, a MAC, a WWPN...), a target
is a volume the node attaches or boots from. Both belong to a node; the API creates them, the
conductor that owns the node changes and deletes them under its lock, with Ironic's state rules
(ironic/conductor/manager.py): changes only while the node is powered off, deletion also while
it is enrolled, manageable or adopt failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.common import states
from services.common.exceptions import Conflict
from services.common.models import VolumeConnector, VolumeTarget

# Where a volume may be deleted whatever the power state (Ironic's DELETE_ALLOWED_STATES).
DELETE_ANY_POWER_STATES = frozenset({states.S.MANAGEABLE.value, states.S.ENROLL.value,
                                     states.S.ADOPTFAIL.value})
POWER_OFF = "power off"


@dataclass(frozen=True)
class VolumeKind:
    model: type[VolumeConnector] | type[VolumeTarget]
    collection: str  # "connectors" or "targets": /v1/volume/<collection>
    label: str  # "volume connector": Ironic's messages
    own_fields: tuple[str, ...]  # besides uuid, node_uuid and extra, in the documents' order

    @property
    def title(self) -> str:
        return self.label.capitalize()

    def conflict(self, exc: Exception, values: dict[str, Any]) -> Conflict:
        """Ironic's 409 for a unique-constraint violation (SQLite or PostgreSQL)."""
        text = str(getattr(exc, "orig", exc)).lower()
        if "connector_id" in text:
            return Conflict(f"A volume connector with type {values.get('type')} and connector "
                            f"ID {values.get('connector_id')} already exists.")
        if "boot_index" in text:
            return Conflict(f"A volume target with boot index '{values.get('boot_index')}' for "
                            "the same node already exists.")
        return Conflict(f"A {self.label} with UUID {values.get('uuid')} already exists.")


CONNECTORS = VolumeKind(VolumeConnector, "connectors", "volume connector",
                        ("type", "connector_id"))
TARGETS = VolumeKind(VolumeTarget, "targets", "volume target",
                     ("volume_type", "properties", "boot_index", "volume_id"))
KINDS = {kind.collection: kind for kind in (CONNECTORS, TARGETS)}
