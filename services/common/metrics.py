"""Every Prometheus metric of Enclume, declared once; services only increment them.

Each process has its own registry (prometheus_client's default one) and serves it at
``/metrics`` (``services/common/metrics_asgi.py``). Label values come from small fixed sets
(route templates, provision states, outcomes, protocol message types), never from node names,
UUIDs, MACs, addresses or anything a client sends, so a scrape costs the same whatever the
traffic and says nothing secret. Nothing here queries the database.

Importing prometheus_client costs about 0.5 MiB of RSS (measured in enclume-aio,
docs/benchmarks.md), which the memory budget allows.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from prometheus_client import Counter, Histogram

# Seconds, from a fast API answer to a long deploy state.
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_STATE_BUCKETS = (0.1, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
_CYCLE_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)

UNMATCHED_ROUTE = "unmatched"  # a request no route took (404): one label for all of them

HTTP_REQUEST_SECONDS = Histogram(
    "enclume_http_request_duration_seconds",
    "Time to answer an HTTP request, by method, route template and status class.",
    ("method", "route", "status"), buckets=_REQUEST_BUCKETS)

PROVISION_TRANSITIONS = Counter(
    "enclume_provision_transitions_total",
    "Provision state changes: an operation's outcome is the state it ends in (active, "
    "deploy failed, ...).",
    ("from_state", "to_state"))
PROVISION_STATE_SECONDS = Histogram(
    "enclume_provision_state_duration_seconds",
    "Time a node spent in a provision state, observed when it leaves the state.",
    ("state",), buckets=_STATE_BUCKETS)

POWER_SYNC_SECONDS = Histogram(
    "enclume_power_sync_cycle_seconds",
    "Time of one power sync cycle of a conductor over its idle nodes.",
    buckets=_CYCLE_BUCKETS)
POWER_SYNC_NODES = Counter(
    "enclume_power_sync_nodes_total",
    "Nodes read by power syncs, by outcome (same, changed, failed).",
    ("outcome",))

NODE_LOCKS = Counter(
    "enclume_node_lock_attempts_total",
    "Attempts to take a node's lock (its reservation), by outcome (taken, conflict).",
    ("outcome",))

AGENT_HEARTBEATS = Counter(
    "enclume_agent_heartbeats_total",
    "Agent heartbeats received by the API, by outcome (accepted, refused).",
    ("outcome",))

IMAGE_CACHE_LOOKUPS = Counter(
    "enclume_image_cache_lookups_total",
    "Deploy images asked of an image cache, by result (hit; miss: downloaded or being "
    "downloaded).",
    ("result",))

DHCP_MESSAGES = Counter(
    "enclume_dhcp_messages_total",
    "DHCP messages dnsmasq logged, by type (DHCPDISCOVER, DHCPOFFER, DHCPREQUEST, DHCPACK, ...).",
    ("type",))
TFTP_REQUESTS = Counter(
    "enclume_tftp_requests_total",
    "TFTP read requests, by outcome (started, refused, failed).",
    ("outcome",))
BOOT_SCRIPTS = Counter(
    "enclume_boot_scripts_total",
    "iPXE scripts served, by answer (chain, node, unknown: no port has the MAC, invalid).",
    ("answer",))

# dnsmasq's --log-dhcp lines: "dnsmasq-dhcp[12]: 1234 DHCPACK(eth0) 10.0.0.5 52:54:...".
_DHCP_LINE = re.compile(r"\b(DHCP[A-Z]{3,9}|PXE)\(")
_DHCP_TYPES = frozenset({"DHCPDISCOVER", "DHCPOFFER", "DHCPREQUEST", "DHCPACK", "DHCPNAK",
                         "DHCPDECLINE", "DHCPRELEASE", "DHCPINFORM", "PXE"})


def count_dnsmasq_line(line: str) -> None:
    """Count the DHCP message a dnsmasq log line reports, if it reports one."""
    found = _DHCP_LINE.search(line)
    if found and found.group(1) in _DHCP_TYPES:
        DHCP_MESSAGES.labels(found.group(1)).inc()


def count_transition(before: str, after: str, entered_at: datetime | None) -> None:
    """A node moved from ``before`` (entered at ``entered_at``) to ``after``."""
    PROVISION_TRANSITIONS.labels(before, after).inc()
    if entered_at is not None:
        if entered_at.tzinfo is None:  # SQLite gives back naive UTC
            entered_at = entered_at.replace(tzinfo=UTC)
        seconds = (datetime.now(UTC) - entered_at).total_seconds()
        PROVISION_STATE_SECONDS.labels(before).observe(max(0.0, seconds))


def status_class(status: int) -> str:
    return f"{status // 100}xx"
