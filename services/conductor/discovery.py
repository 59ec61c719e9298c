"""The conductor's side of discovery: enroll an unknown machine, or update a known node from
the inventory its discovery ramdisk posted.

Both use the code of the ``agent`` inspect interface (services/drivers/inspect/inventory.py):
properties, ports for new MACs and the kept inventory are what an inspection would give.
- A new node is built by the one node constructor (services/common/enrollment.py) and written
  with its ports, inventory and history in one transaction: a failure leaves nothing behind.
- A known node is updated only in a state where nothing works on it; in ``inspect wait`` its
  inspection ends with this inventory (as Ironic's continue_inspection). Any other state is a
  409 and nothing changes. Rules never touch a known node.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common import states
from services.common.enrollment import new_node
from services.common.exceptions import Conflict, TemporaryFailure
from services.common.models import Node, Port, utcnow
from services.conductor.task import Task
from services.drivers.deploy.ramdisk import forget_agent
from services.drivers.inspect import inventory as inspected
from services.drivers.registry import Drivers

S = states.ProvisionState
EVENT_TYPE = "discovered"
# States in which a posted inventory may update a known node.
UPDATABLE_STATES = frozenset({S.ENROLL, S.MANAGEABLE, S.AVAILABLE, S.INSPECTFAIL,
                              S.INSPECTWAIT})


class NodeBusy(Conflict):
    def __init__(self, node_uuid: str, state: str) -> None:
        super().__init__(f'Node {node_uuid} is in state "{state}": a discovery inventory '
                         f'changes nothing on a node that is deployed or being worked on.')


def summary(node: Node, created: bool) -> dict[str, Any]:
    """What the agent is told (the endpoint is public: no more than this)."""
    return {"uuid": node.uuid, "created": created, "provision_state": node.provision_state}


def enroll(session: Session, values: dict[str, Any], inventory: dict[str, Any],
           boot_mac: str | None, applied_rules: list[str], drivers: Drivers,
           conductor: str) -> Node:
    """Create the node of an unknown machine in ``enroll`` (in ``session``, not committed)."""
    macs = inspected.macs_of(inventory)
    if session.scalar(select(Port.id).where(Port.address.in_(macs)).limit(1)) is not None:
        # Another post of this machine (a retry) enrolled it a moment ago.
        raise TemporaryFailure("This machine was enrolled by another request a moment ago; "
                               "retry to update it.")
    dropped_name = None
    if values.get("name") and session.scalar(select(Node.id).where(Node.name == values["name"])):
        dropped_name = values["name"]
        values = {key: value for key, value in values.items() if key != "name"}
    node = new_node(values)
    session.add(node)
    session.flush()
    task = Task(session, node, drivers.for_node(node), conductor)
    inspected.apply(task, inventory)
    if boot_mac:
        port = session.scalar(select(Port).where(Port.node_id == node.id,
                                                 Port.address == boot_mac))
        if port is not None:
            port.pxe_enabled = True
    task.record(EVENT_TYPE, f"Discovered: enrolled from the inventory of its discovery ramdisk "
                            f"(MACs {', '.join(macs)}; booted from "
                            f"{boot_mac or 'an unknown NIC'}); rules applied: "
                            f"{', '.join(applied_rules) or 'none'}; driver {node.driver}.")
    if dropped_name:
        task.record(EVENT_TYPE, f"The name {dropped_name!r} given by the rules belongs to "
                                f"another node: enrolled without a name.", severity="WARNING")
    return node


def update(task: Task, inventory: dict[str, Any]) -> None:
    """Update a known node from a discovery inventory, or NodeBusy (nothing changed)."""
    node = task.node
    state = node.provision_state
    if state not in UPDATABLE_STATES:
        raise NodeBusy(node.uuid, state)
    inspected.apply(task, inventory)
    task.record(EVENT_TYPE, f'Discovered again in state "{state}": properties, ports and '
                            f'inventory updated from its discovery ramdisk\'s inventory.')
    if state == S.INSPECTWAIT:
        # The inspection waited for this machine's inventory: it has it now.
        task.driver.boot.clean_up_ramdisk(task)
        forget_agent(task)
        node.inspection_finished_at = utcnow()
        task.process_event("done")
