"""The agent's calls to the Enclume API: lookup (once) and heartbeat (every few seconds), or in
discovery mode the inventory (continue_inspection); ``post_json`` for the login prompt.

An https API is checked against the CA the boot service hands the ramdisk (``trust_ca``: the
kernel parameter ``enclume.api_ca_url=``, or ``--api-ca-file``), else the ramdisk's CA bundle.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from agent import __version__

LOG = logging.getLogger(__name__)
MASK = "******"
MIN_TOKEN_LENGTH = 32
MAX_CA_BYTES = 256 * 1024
_tls: ssl.SSLContext | None = None  # None: the default context (the ramdisk's CA bundle)


class ApiError(RuntimeError):
    """The API refused or could not be reached; ``status`` is the HTTP status when it answered,
    ``fault`` its own words (Ironic's faultstring), ``retry_after_s`` its Retry-After."""

    def __init__(self, message: str, status: int | None = None, fault: str | None = None,
                 retry_after_s: int | None = None, tls_failed: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.fault = fault
        self.retry_after_s = retry_after_s
        self.tls_failed = tls_failed  # the API's certificate was not trusted (or no TLS)


def trust_ca(pem: str) -> None:
    """Check https APIs against this CA (PEM) only, from now on; ValueError if it is no CA."""
    global _tls
    try:
        context = ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError) as exc:
        raise ValueError(f"not a PEM CA certificate: {exc}") from None
    if not context.get_ca_certs():
        raise ValueError("no CA certificate in it")
    _tls = context


def fetch_ca(url: str, timeout_s: float) -> str:
    """The CA certificate the boot service serves (fetched like the kernel and the ramdisk)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return str(response.read(MAX_CA_BYTES).decode("ascii"))
    except (urllib.error.URLError, OSError, UnicodeDecodeError) as exc:
        raise ApiError(f"cannot fetch the API's CA from {url}: "
                       f"{getattr(exc, 'reason', exc)}") from None


def _fault(body: bytes) -> str | None:
    try:
        document = json.loads(body)
        fault = json.loads(document["error_message"])["faultstring"]
    except (ValueError, KeyError, TypeError):
        return None
    return fault if isinstance(fault, str) else None


def _retry_after(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@dataclass(frozen=True)
class Lookup:
    node_uuid: str
    token: str
    heartbeat_timeout_s: float
    node: dict[str, Any]


def _call(request: urllib.request.Request, timeout_s: float) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=_tls) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()[:4000]
        body = raw[:500].decode(errors="replace")
        raise ApiError(f"HTTP {exc.code}: {body}", exc.code, _fault(raw),
                       _retry_after(exc.headers.get("Retry-After"))) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ApiError(f"cannot reach the API: {reason}",
                       tls_failed=isinstance(reason, ssl.SSLError)) from None


def lookup(api_url: str, macs: list[str], node_uuid: str | None, timeout_s: float) -> Lookup:
    query = {"addresses": ",".join(macs)}
    if node_uuid:
        query["node_uuid"] = node_uuid
    url = f"{api_url}/v1/lookup?{urllib.parse.urlencode(query)}"
    _, body = _call(urllib.request.Request(url, headers={"Accept": "application/json"}),
                    timeout_s)
    try:
        answer = json.loads(body)
        node, config = answer["node"], answer["config"]
        token = str(config.get("agent_token") or "")
        uuid = str(node["uuid"])
        timeout = float(config.get("heartbeat_timeout") or 300)
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiError(f"the lookup answer is not what the protocol says: {exc!r}") from None
    if token == MASK:
        raise ApiError("the API hid the agent token: another lookup already took it (the "
                       "conductor must prepare a new ramdisk boot to issue a new one)")
    if len(token) < MIN_TOKEN_LENGTH:
        raise ApiError(f"the lookup gave no usable agent token ({len(token)} characters)")
    return Lookup(node_uuid=uuid, token=token, heartbeat_timeout_s=timeout, node=node)


def heartbeat(api_url: str, node_uuid: str, callback_url: str, token: str,
              timeout_s: float) -> None:
    body = json.dumps({"callback_url": callback_url, "agent_token": token,
                       "agent_version": __version__}).encode()
    request = urllib.request.Request(
        f"{api_url}/v1/heartbeat/{urllib.parse.quote(node_uuid)}", data=body, method="POST",
        headers={"Content-Type": "application/json"})
    _call(request, timeout_s)


def post_json(url: str, document: dict[str, Any], headers: dict[str, str], timeout_s: float
              ) -> dict[str, Any]:
    """POST a JSON document, answer the JSON object the API sent back."""
    request = urllib.request.Request(
        url, data=json.dumps(document).encode(), method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json", **headers})
    _, answer = _call(request, timeout_s)
    try:
        found = json.loads(answer)
    except ValueError as exc:
        raise ApiError(f"the API's answer is not JSON: {exc}") from None
    if not isinstance(found, dict):
        raise ApiError("the API's answer is not a JSON object")
    return found


def continue_inspection(api_url: str, inventory: dict[str, Any], timeout_s: float
                        ) -> dict[str, Any]:
    """Post a discovery inventory (Ironic's ``POST /v1/continue_inspection``); the answer
    ``{"uuid", "created", "provision_state"}``."""
    body = json.dumps({"inventory": inventory}).encode()
    request = urllib.request.Request(
        f"{api_url}/v1/continue_inspection", data=body, method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json"})
    _, answer = _call(request, timeout_s)
    try:
        document = json.loads(answer)
        if not isinstance(document, dict) or not isinstance(document.get("uuid"), str):
            raise ValueError("no node uuid")
    except ValueError as exc:
        raise ApiError(f"the answer to the inventory is not what the protocol says: "
                       f"{exc}") from None
    return document


def route_address(api_url: str) -> str:
    """The local address this machine reaches the API from (no packet is sent)."""
    parts = urllib.parse.urlsplit(api_url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    info = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)
    with socket.socket(info[0][0], socket.SOCK_DGRAM) as probe:
        probe.connect(info[0][4])
        return str(probe.getsockname()[0])
