"""``POST /v1/continue_inspection``: the inventory of a machine booted in discovery mode.

Ironic's endpoint (API 1.84, public like the lookup and the heartbeat), accepted at 1.84 and
later and at 1.1 (no version header: Inspector's drop-in), 404 in between as in Ironic.
Body ``{"inventory": {...}}`` (other keys, Ironic's plugin data, are ignored).
Only while discovery is on (``ENCLUME_BOOT_DISCOVERY``, else 403). The inventory is checked
with the inspect interface's own check (400 with the reason, nothing written); then:

- a node has a port with one of its MACs (or, in ``inspect wait``, its BMC address): the owning
  conductor ends its inspection, or updates it if discovery enrolled it and no operator has
  taken it on yet; any other node is 409 and nothing changes;
- no node: the rules (``ENCLUME_DISCOVERY_RULES_FILE``, read at start) give the new node's
  fields, checked as ``POST /v1/nodes`` checks them, and the conductor the ring gives the new
  UUID enrolls it with its ports, properties, inventory and a "discovered" history entry.

Answer (202): ``{"uuid", "created", "provision_state"}`` and nothing else: anyone on the
provisioning network can call this while discovery is on. Errors are generic for the same
reason (no node, state or host names); the detail is logged.
"""

from __future__ import annotations

import logging
import stat
from typing import Any

from fastapi import Body, Depends, Request

from services.api import node_rules
from services.api.deps import api_version, conductor, database, enabled_drivers
from services.api.routing import api_router
from services.api.versions import MIN_VERSION, Version, format_version
from services.common import validation
from services.common.config import Settings
from services.common.db import Database
from services.common.exceptions import EnclumeError, Invalid, NotFound
from services.common.inventory import MalformedInventory, check
from services.common.models import new_uuid
from services.common.secrets import is_secret_key
from services.conductor.interface import ConductorAPI
from services.discovery import lookup, rules
from services.discovery import public as conductor_discovery
from services.discovery.facts import Facts

LOG = logging.getLogger(__name__)
VERSION: Version = (1, 84)
router = api_router(prefix="/v1")

# A public endpoint: an inventory with more interfaces than any machine has would make as many
# ports; more disks than any machine has is only there to cost memory and storage.
MAX_INTERFACES = 128
MAX_DISKS = 256
# Errors of this public endpoint say nothing about nodes, states or hosts (the log does).
GENERIC_ERRORS = {
    409: conductor_discovery.REFUSED,
    503: conductor_discovery.BUSY,
}
GENERIC_ERROR = "Discovery could not handle this machine: nothing was changed."


class DiscoveryOff(EnclumeError):
    code = 403


def load_rules(settings: Settings) -> rules.RuleSet:
    """The discovery rules, checked at start (RuntimeError: the API refuses to start)."""
    enabled = settings.drivers.enabled_hardware_types
    if settings.discovery.enabled and settings.discovery.driver not in enabled:
        raise rules.RulesError(
            f"ENCLUME_DISCOVERY_DRIVER {settings.discovery.driver!r} is not an enabled hardware "
            f"type (ENCLUME_ENABLED_HARDWARE_TYPES: {', '.join(sorted(enabled))})")
    path = settings.discovery.rules_file
    if path is None:
        return rules.RuleSet()
    loaded = rules.load(path, enabled)
    secret_keys = {key for rule in loaded.rules for key in rule.actions.driver_info or {}
                   if is_secret_key(key)}
    if secret_keys and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        LOG.warning("the discovery rules file %s holds secrets (%s) and can be read by others "
                    "than its owner: chmod 600 it", path, ", ".join(sorted(secret_keys)))
    LOG.info("discovery rules: %d rule(s) from %s", len(loaded.rules), path)
    return loaded


def _checked_inventory(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or "inventory" not in body:
        raise Invalid('Invalid inspection data: expected {"inventory": {...}}.')
    try:
        inventory = check(body["inventory"])
    except MalformedInventory as exc:
        raise Invalid(f"{exc}.") from None
    validation.json_value("inventory", inventory)
    if len(inventory["interfaces"]) > MAX_INTERFACES:
        raise Invalid(f"The inventory lists {len(inventory['interfaces'])} interfaces; at most "
                      f"{MAX_INTERFACES} are accepted.")
    if len(inventory["disks"]) > MAX_DISKS:
        raise Invalid(f"The inventory lists {len(inventory['disks'])} disks; at most "
                      f"{MAX_DISKS} are accepted.")
    return inventory


def _processed(manager: ConductorAPI, node_uuid: str, inventory: dict[str, Any],
               **new: Any) -> dict[str, Any]:
    """The conductor's answer; its errors reach the anonymous caller only as generic ones."""
    try:
        return manager.process_discovery(node_uuid, inventory, **new)
    except EnclumeError as exc:
        if exc.message in conductor_discovery.PUBLIC_MESSAGES:
            raise
        LOG.warning("discovery: the conductor refused the inventory for node %s (%d): %s",
                    node_uuid, exc.code, exc.message)
        raise EnclumeError(GENERIC_ERRORS.get(exc.code, GENERIC_ERROR), exc.code) from None


@router.post("/continue_inspection", status_code=202)
def continue_inspection(request: Request, body: Any = Body(...),
                        version: Version = Depends(api_version),
                        db: Database = Depends(database),
                        manager: ConductorAPI = Depends(conductor)) -> dict[str, Any]:
    if MIN_VERSION < version < VERSION:  # 1.1 too, as Inspector's drop-in (Ironic's rule)
        raise NotFound(f"API version {format_version(VERSION)} or newer is required")
    settings: Settings = request.app.state.settings
    if not settings.discovery.enabled:
        raise DiscoveryOff("Discovery is off: inventories of unknown machines are not accepted "
                           "(ENCLUME_BOOT_DISCOVERY).")
    inventory = _checked_inventory(body)
    facts = Facts.of(inventory)
    if not facts.macs:
        raise Invalid("The inventory has no interface with a MAC address: nothing tells which "
                      "machine this is.")
    with db.session() as session:
        known = lookup.find_node(session, facts.macs, facts.bmc_address)
    if known is not None:
        return _processed(manager, known, inventory)
    ruleset: rules.RuleSet = request.app.state.discovery_rules
    outcome = ruleset.evaluate(facts)
    fields = {**outcome.node_fields(settings.discovery.driver), "uuid": new_uuid()}
    try:
        values = node_rules.values_for_create(fields, settings.api.default_resource_class,
                                              enabled_drivers(request))
    except Invalid as exc:
        # The rules' fault, not the machine's: the agent retries while an operator fixes them.
        LOG.error("discovery: the rules (%s) give machine %s values a node cannot have: %s",
                  ", ".join(outcome.applied) or "none", facts.main_mac, exc.message)
        raise EnclumeError("The discovery rules give this machine values a node cannot have; "
                           "the API's log says which.") from None
    return _processed(manager, values["uuid"], inventory, new_node=values,
                      boot_mac=facts.boot_mac, applied_rules=list(outcome.applied))
