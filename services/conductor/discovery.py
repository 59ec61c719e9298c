"""The conductor's side of discovery: enroll an unknown machine, or update a known node from
the inventory its discovery ramdisk posted.

Both use the code of the ``agent`` inspect interface (services/drivers/inspect/inventory.py):
properties, ports for new MACs and the kept inventory are what an inspection would give.
- A new node is built by the one node constructor (services/common/enrollment.py) and written
  with its ports, inventory and history in one transaction: a failure leaves nothing behind.
- A known node is updated only when it waits for this inventory: in ``inspect wait`` its
  inspection ends with it (as Ironic's continue_inspection), and a node discovery created that
  is still in ``enroll`` untouched by an operator (services/discovery/untrusted.py) takes its
  new properties, ports and inventory (a history event only when the inventory changed). Any
  other node is a 409 and nothing changes: the endpoint is public, and knowing a MAC must not
  let anyone rewrite an operator's node. Discovery rules never touch a known node.
- Inspection rules (API 1.96) run on every applied inventory, as Ironic's run on inspection
  and discovery data: one failing ends a waiting inspection in ``inspect failed``, and refuses
  the inventory of a discovered node (409, nothing changed).

Messages leaving here are for an anonymous caller: the detail goes to the log only.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.common import states
from services.common.enrollment import new_node
from services.common.exceptions import Conflict, DriverError, TemporaryFailure
from services.common.models import Node, NodeInventory, Port, utcnow
from services.conductor.flows import steps
from services.conductor.task import Task
from services.discovery import untrusted
from services.discovery.public import BUSY, PUBLIC_MESSAGES, REFUSED, TOO_MANY  # noqa: F401
from services.drivers.deploy.ramdisk import forget_agent
from services.drivers.inspect import inventory as inspected
from services.drivers.registry import Drivers

LOG = logging.getLogger(__name__)
S = states.ProvisionState
EVENT_TYPE = "discovered"



class NodeRefused(Conflict):
    def __init__(self, node: Node) -> None:
        LOG.warning('discovery: refused an inventory for node %s in state "%s" (discovery '
                    'updates only nodes in inspect wait, or that it enrolled and nobody has '
                    'managed yet)', node.uuid, node.provision_state)
        super().__init__(REFUSED)


def enrolled_and_untouched(session: Session) -> int:
    """How many nodes discovery created that no operator has taken on yet."""
    return session.scalar(select(func.count()).select_from(Node)
                          .where(untrusted.untrusted())) or 0


def summary(node: Node, created: bool) -> dict[str, Any]:
    """What the agent is told (the endpoint is public: no more than this)."""
    return {"uuid": node.uuid, "created": created, "provision_state": node.provision_state}


def enroll(session: Session, values: dict[str, Any], inventory: dict[str, Any],
           boot_mac: str | None, applied_rules: list[str], drivers: Drivers,
           conductor: str, max_untouched: int) -> Node:
    """Create the node of an unknown machine in ``enroll`` (in ``session``, not committed),
    marked as discovered (untrusted.MARKER); TemporaryFailure(TOO_MANY) when ``max_untouched``
    such nodes exist already (concurrent requests may pass it by a few)."""
    waiting = enrolled_and_untouched(session)
    if waiting >= max_untouched:
        LOG.error("discovery: %d discovered nodes wait in enroll for an operator "
                  "(ENCLUME_DISCOVERY_MAX_ENROLL_NODES=%d): machine %s not enrolled", waiting,
                  max_untouched, boot_mac or "?")
        raise TemporaryFailure(TOO_MANY)
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
    node.driver_internal_info = {**(node.driver_internal_info or {}), untrusted.MARKER: True}
    session.add(node)
    session.flush()
    task = Task(session, node, drivers.for_node(node), conductor)
    _apply_untrusted(task, inventory)
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


def _apply_untrusted(task: Task, inventory: dict[str, Any]) -> None:
    """Apply the inventory to a node discovery enrolled; an inspection rule's failure refuses
    the inventory (409, the transaction rolled back)."""
    try:
        inspected.apply(task, inventory)
    except DriverError as exc:
        LOG.warning("discovery: node %s: %s", task.node.uuid, exc)
        raise Conflict(f"The inspection rules refused this inventory: {exc}") from None


def update(task: Task, inventory: dict[str, Any]) -> None:
    """Update a known node from a discovery inventory, or NodeRefused (nothing changed)."""
    node = task.node
    state = node.provision_state
    if state == S.INSPECTWAIT:
        try:
            inspected.apply(task, inventory)
        except DriverError as exc:  # an inspection rule failed it, say
            steps.fail(task, steps.event_type(state), exc)
            return
        task.record(EVENT_TYPE, "Its inspection ended with the inventory its discovery ramdisk "
                                "posted.")
        # The inspection waited for this machine's inventory: it has it now.
        task.driver.boot.clean_up_ramdisk(task)
        forget_agent(task)
        node.inspection_finished_at = utcnow()
        task.process_event("done")
        return
    if not untrusted.is_untrusted(node):
        raise NodeRefused(node)
    stored = task.session.scalar(select(NodeInventory.inventory_data)
                                 .where(NodeInventory.node_id == node.id))
    if stored == inventory:
        return  # a repeated post: nothing to change, nothing to record
    _apply_untrusted(task, inventory)
    task.record(EVENT_TYPE, "Discovered again before an operator took it on: properties, ports "
                            "and inventory updated from its discovery ramdisk's inventory.")
