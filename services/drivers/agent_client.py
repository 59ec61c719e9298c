"""Commands to the agent running in a node's deploy ramdisk, over its callback URL.

The agent reports its URL and proves its token on each heartbeat; the conductor keeps both in
``driver_internal_info`` under Ironic's key names. A command is ``POST <agent_url>/v1/commands/``
with ``{"name": ..., "params": {...}}`` and the token in the ``X-Agent-Token`` header (never in
the URL, so it stays out of access logs).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from services.common.models import Node, utcnow
from services.drivers.base import DriverError

AGENT_URL = "agent_url"
AGENT_TOKEN = "agent_secret_token"
AGENT_LAST_HEARTBEAT = "agent_last_heartbeat"
TOKEN_HEADER = "X-Agent-Token"


class AgentUnavailable(DriverError):
    pass


def last_heartbeat(node: Node) -> datetime | None:
    raw = (node.driver_internal_info or {}).get(AGENT_LAST_HEARTBEAT)
    if not raw:
        return None
    try:
        return datetime.fromisoformat(str(raw)).replace(tzinfo=None)
    except ValueError:
        return None


def is_alive(node: Node, timeout_s: float) -> bool:
    """An agent heartbeated recently and left a URL to reach it."""
    seen = last_heartbeat(node)
    info = node.driver_internal_info or {}
    return (seen is not None and bool(info.get(AGENT_URL))
            and utcnow().replace(tzinfo=None) - seen < timedelta(seconds=timeout_s))


def run_command(node: Node, name: str, params: dict[str, Any] | None,
                timeout_s: float) -> dict[str, Any]:
    info = node.driver_internal_info or {}
    url, token = info.get(AGENT_URL), info.get(AGENT_TOKEN)
    if not url or not token:
        raise AgentUnavailable(f"no agent is running on node {node.uuid}")
    try:
        response = httpx.post(f"{str(url).rstrip('/')}/v1/commands/",
                              json={"name": name, "params": params or {}},
                              headers={TOKEN_HEADER: str(token)}, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise AgentUnavailable(f"the agent of node {node.uuid} did not answer {name}: "
                               f"{type(exc).__name__}") from None
    if response.status_code >= 400:
        raise DriverError(f"the agent of node {node.uuid} refused {name}: "
                          f"HTTP {response.status_code} {response.text[:200]}")
    answer: dict[str, Any] = response.json() if response.content else {}
    return answer
