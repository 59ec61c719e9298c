"""Commands to the agent running in a node's deploy ramdisk, over its callback URL.

The agent reports its URL and proves its token on each heartbeat; the conductor keeps both in
``driver_internal_info`` under Ironic's key names. A command is ``POST <agent_url>/v1/commands/``
with ``{"name": ..., "params": {...}}`` and the token in the ``X-Agent-Token`` header (never in
the URL, so it stays out of access logs).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from services.common.models import Node, utcnow
from services.common.node_fields import AGENT_TOKEN
from services.drivers.base import DriverError

AGENT_URL = "agent_url"
AGENT_LAST_HEARTBEAT = "agent_last_heartbeat"
AGENT_VERSION = "agent_version"
# The long command the conductor is waiting for: {"id": ..., "name": ...}.
AGENT_COMMAND = "agent_command"
# When a lookup in a fast-track resting state issued the token (services/conductor/agent.py).
AGENT_TOKEN_ISSUED = "agent_token_issued_at"
# Everything that belongs to one boot of the ramdisk: forgotten before the next one.
AGENT_KEYS = (AGENT_URL, AGENT_TOKEN, AGENT_LAST_HEARTBEAT, AGENT_VERSION, AGENT_COMMAND,
              AGENT_TOKEN_ISSUED)
TOKEN_HEADER = "X-Agent-Token"
# One client for every agent request of the process: httpx.request() makes a client, and with
# it an SSL context (the CA bundle loaded), per call, which was ~45% of enclume-aio's CPU while
# 40 PCs started a room restore (docs/benchmarks.md, "The start of a 40-PC room"). A Client is
# safe to share between threads; each request still gives its own timeout. Made at the first
# request, not at import: its SSL context and transports cost the server ~4 MiB it may never use.
@functools.cache
def _client() -> httpx.Client:
    return httpx.Client()


RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
COMMAND_STATUSES = (RUNNING, SUCCEEDED, FAILED)


class AgentUnavailable(DriverError):
    """The agent could not be reached (it may come back: the next heartbeat tries again)."""


class AgentBusy(DriverError):
    """The agent already runs a long command (HTTP 409)."""


class AgentCommandFailed(DriverError):
    """The agent ran a command and reports that it failed; the message is the agent's."""


def last_heartbeat(node: Node) -> datetime | None:
    return last_heartbeat_of(node.driver_internal_info or {})


def last_heartbeat_of(internal_info: Mapping[str, object]) -> datetime | None:
    """When the agent's last heartbeat was recorded (naive UTC), from driver_internal_info."""
    raw = internal_info.get(AGENT_LAST_HEARTBEAT)
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


def _endpoint(node: Node) -> tuple[str, str]:
    info = node.driver_internal_info or {}
    url, token = info.get(AGENT_URL), info.get(AGENT_TOKEN)
    if not url or not token:
        raise AgentUnavailable(f"no agent is running on node {node.uuid}")
    return f"{str(url).rstrip('/')}/v1/commands/", str(token)


def _request(node: Node, method: str, path: str, what: str, timeout_s: float,
             body: dict[str, Any] | None = None) -> httpx.Response:
    base, token = _endpoint(node)
    try:
        return _client().request(method, base + path, json=body, headers={TOKEN_HEADER: token},
                               timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise AgentUnavailable(f"the agent of node {node.uuid} did not answer {what}: "
                               f"{type(exc).__name__}") from None


def _document(node: Node, response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code == 409:
        raise AgentBusy(f"the agent of node {node.uuid} is busy and refused {what}: "
                        f"{response.text[:200]}")
    if response.status_code >= 400:
        raise DriverError(f"the agent of node {node.uuid} refused {what}: "
                          f"HTTP {response.status_code} {response.text[:200]}")
    try:
        answer = response.json() if response.content else {}
    except ValueError:
        raise DriverError(f"the agent of node {node.uuid} answered {what} with something "
                          f"that is not JSON") from None
    if not isinstance(answer, dict):
        raise DriverError(f"the agent of node {node.uuid} answered {what} with {answer!r}")
    return answer


def run_command(node: Node, name: str, params: dict[str, Any] | None,
                timeout_s: float) -> dict[str, Any]:
    """Send a command; the answer is the agent's command document (see ``status_of``)."""
    response = _request(node, "POST", "", name, timeout_s,
                        body={"name": name, "params": params or {}})
    return _document(node, response, name)


def get_command(node: Node, command_id: str, timeout_s: float) -> dict[str, Any]:
    """The command document of an earlier command, by its id."""
    response = _request(node, "GET", quote(command_id, safe=""),
                        f"the status of command {command_id}", timeout_s)
    if response.status_code == 404:
        raise DriverError(f"the agent of node {node.uuid} does not know command {command_id} "
                          f"(did the machine reboot?)")
    return _document(node, response, f"the status of command {command_id}")


def list_commands(node: Node, timeout_s: float) -> list[dict[str, Any]]:
    response = _request(node, "GET", "", "the list of commands", timeout_s)
    answer = _document(node, response, "the list of commands")
    commands = answer.get("commands", [])
    return [c for c in commands if isinstance(c, dict)] if isinstance(commands, list) else []


def status_of(node: Node, document: dict[str, Any]) -> str:
    """The command_status of a command document, checked to be one the protocol knows."""
    status = document.get("command_status")
    if status not in COMMAND_STATUSES:
        raise DriverError(f"the agent of node {node.uuid} answered an unknown command status "
                          f"{status!r}")
    return str(status)
