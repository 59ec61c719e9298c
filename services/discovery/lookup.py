"""Which node an inventory belongs to: the node with a port of one of its MACs, else (for
machines whose NICs are not enrolled) the node in ``inspect wait`` whose driver_info names its
BMC address, as Ironic's inspection lookup does.

The BMC address is only looked for among nodes in ``inspect wait``: any other node would refuse
the inventory anyway (services/conductor/discovery.py), and this keeps the scan of driver_info
to the few nodes being inspected instead of every node, at every public request."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common import states
from services.common.exceptions import Conflict
from services.common.models import Node, Port

LOG = logging.getLogger(__name__)


class AmbiguousMachine(Conflict):
    """Told to an anonymous caller: the nodes are named in the log only."""

    def __init__(self, what: str, uuids: list[str]) -> None:
        LOG.warning("discovery: the %s of a machine belong to several nodes (%s); remove the "
                    "wrong ports or addresses", what, ", ".join(sorted(uuids)))
        super().__init__(f"The {what} of this machine belong to several nodes: nothing was "
                         f"changed; an operator must remove the wrong ports or addresses.")


def find_node(session: Session, macs: tuple[str, ...] | list[str],
              bmc_address: str | None) -> str | None:
    """The UUID of the node this machine is, or None for an unknown machine."""
    by_mac = sorted(set(session.scalars(select(Node.uuid).join(Port, Port.node_id == Node.id)
                                        .where(Port.address.in_(list(macs))))))
    if len(by_mac) > 1:
        raise AmbiguousMachine("MAC addresses", by_mac)
    if by_mac:
        return by_mac[0]
    if not bmc_address:
        return None
    wanted = bmc_address.strip("[]").lower()
    inspecting = select(Node.uuid, Node.driver_info).where(
        Node.provision_state == states.ProvisionState.INSPECTWAIT.value)
    by_bmc = [uuid for uuid, info in session.execute(inspecting)
              if wanted in bmc_addresses(info or {})]
    if len(by_bmc) > 1:
        raise AmbiguousMachine("BMC address", by_bmc)
    return by_bmc[0] if by_bmc else None


def bmc_addresses(driver_info: dict[str, object]) -> set[str]:
    """The hosts of the ``*_address`` entries of a driver_info (``ipmi_address``, the host of
    ``redfish_address`` URLs), lower-case, without IPv6 brackets."""
    found = set()
    for key, value in driver_info.items():
        if not key.endswith("_address") or not isinstance(value, str) or not value:
            continue
        host = urlsplit(value).hostname if "//" in value else value.strip("[]")
        if host:
            found.add(host.lower())
    return found
