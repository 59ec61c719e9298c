"""Discovery mode (``enclume.discovery=1``, no ``enclume.node``): this machine is not enrolled.

The agent collects the inventory, posts it to the API (``POST /v1/continue_inspection``),
logs the node it became (or was found to be), then does ``enclume.after_discovery``:
``poweroff`` (default: a machine without BMC comes back powered off and enrolled), ``reboot``
or ``stay``. An unreachable API (or a 5xx: a conductor busy, a lock, the rules being fixed) is
tried again with back-off, from ``--lookup-retry`` seconds doubling up to
``--discovery-retry-max``; a refusal (4xx: discovery off, a node busy or deployed, a bad
inventory) is logged and ends the attempt. Afterwards the agent idles until it is stopped:
busybox init would start it again if it exited.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from agent import api_client, inventory, power
from agent.api_client import ApiError
from agent.config import AgentConfig
from agent.disks import discover

LOG = logging.getLogger("enclume-agent")


def post_inventory(config: AgentConfig, stopped: threading.Event,
                   document: dict[str, Any]) -> dict[str, Any] | None:
    """The API's answer, or None when it refused the inventory (or the agent was stopped)."""
    delay = config.lookup_retry_s
    while not stopped.is_set():
        try:
            return api_client.continue_inspection(config.api_url, document,
                                                  config.http_timeout_s)
        except ApiError as exc:
            if exc.status is not None and exc.status < 500:
                LOG.error("discovery: the API refused this machine's inventory: %s", exc)
                return None
            LOG.warning("discovery: posting the inventory failed (%s); trying again in %.1f s",
                        exc, delay)
        stopped.wait(delay)
        delay = min(delay * 2, config.discovery_retry_max_s)
    return None


def finish(config: AgentConfig) -> None:
    """What ``enclume.after_discovery`` says the machine does now."""
    if config.after_discovery == "poweroff":
        power.schedule(config.poweroff_command, config.power_action_delay_s)
    elif config.after_discovery == "reboot":
        power.schedule(config.reboot_command, config.power_action_delay_s)
    else:
        LOG.info("discovery: staying up (enclume.after_discovery=stay)")


def run(config: AgentConfig, stopped: threading.Event) -> int:
    disks = discover(config.disks)
    collected = inventory.collect(disks, {}, config.boot_mac)["inventory"]
    macs = [i["mac_address"] for i in collected["interfaces"]]
    LOG.info("discovery: posting the inventory of this machine (MACs %s, booted from %s)",
             ", ".join(macs) or "none", config.boot_mac or "an unknown NIC")
    answer = post_inventory(config, stopped, collected)
    if stopped.is_set():
        return 0
    if answer is not None:
        verb = "enrolled as" if answer.get("created") else "known as"
        LOG.info("discovery: this machine is %s node %s (%s)", verb, answer["uuid"],
                 answer.get("provision_state"))
    finish(config)
    stopped.wait()
    return 0
