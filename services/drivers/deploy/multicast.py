"""Room restores by multicast, the conductor's side (docs/architecture.md, "Multicast room
restores").

- ``open_session``: a room job asks the boot service for a session streaming one version to
  the PCs it starts now (``POST <boot URL>/multicast-sessions``, with an image token of the
  version); None when it cannot (then the PCs restore by unicast, as the room's fallback).
- A PC started in a session carries it in instance_info: ``transfer: multicast`` and
  ``multicast_session: {"id", "port", "group"}``. Its deploy then runs the agent's
  ``deploy.multicast_restore`` (the parameters of ``deploy.restore_blocks`` and the session)
  instead of ``deploy.restore_blocks``: the agent receives the stream, then verifies and repairs
  over HTTP, so a PC that misses the stream still finishes.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from services.common.config import Settings
from services.common.models import Node
from services.drivers.driver_info import InvalidParameter
from services.images import tokens as image_tokens

LOG = logging.getLogger(__name__)
MULTICAST_RESTORE = "deploy.multicast_restore"
TRANSFER, SESSION = "transfer", "multicast_session"
TRANSFERS = ("unicast", "multicast")
SESSIONS_ROUTE = "/multicast-sessions"
BOOT_SERVICE_TIMEOUT_S = 10.0
START_MARGIN_S = 30.0  # an agent waits for the stream this much longer than the sender waits


def open_session(settings: Settings, version_id: str, expected: int) -> dict[str, Any] | None:
    url = f"{settings.effective_boot_url}{SESSIONS_ROUTE}"
    token = image_tokens.issue(image_tokens.load_secret(settings), version_id,
                               settings.images.token_ttl_s)
    try:
        answer = httpx.post(url, json={"version_id": version_id, "expected": expected},
                            headers={image_tokens.HEADER: token},
                            timeout=BOOT_SERVICE_TIMEOUT_S)
    except httpx.HTTPError as exc:
        LOG.warning("no multicast session from %s (unicast instead): %s", url, exc)
        return None
    if answer.status_code != 201:
        LOG.warning("no multicast session from %s (unicast instead): HTTP %d %s", url,
                    answer.status_code, answer.text[:300])
        return None
    document = answer.json()
    return {"id": str(document["id"]), "port": int(document["port"]),
            "group": str(document["group"])}


def session_of(node: Node) -> dict[str, Any] | None:
    """The multicast session instance_info puts the node in; None for unicast."""
    info = node.instance_info or {}
    transfer = info.get(TRANSFER) or "unicast"
    if transfer not in TRANSFERS:
        raise InvalidParameter(f"instance_info/{TRANSFER} must be one of "
                               f"{', '.join(TRANSFERS)}, not {transfer!r}.")
    session = info.get(SESSION)
    if transfer == "unicast" or session is None:
        return None  # multicast asked, no session (yet): the unicast fallback
    if not (isinstance(session, dict) and isinstance(session.get("id"), str)
            and isinstance(session.get("port"), int)):
        raise InvalidParameter(f"instance_info/{SESSION} must be the boot service's session "
                               f"({{\"id\": ..., \"port\": ...}}), not {session!r}.")
    return session


def multicast_params(settings: Settings, session: dict[str, Any],
                     restore_params: dict[str, Any]) -> dict[str, Any]:
    """``deploy.multicast_restore``'s parameters: the block restore's and the session."""
    joined = f"{settings.effective_boot_url}{SESSIONS_ROUTE}/{session['id']}/joined"
    group = {"group": session["group"]} if isinstance(session.get("group"), str) else {}
    return {**restore_params, "multicast": {
        "port": session["port"], **group, "joined_url": joined,
        "start_timeout_s": settings.multicast.start_wait_s + START_MARGIN_S,
        "receive_timeout_s": settings.multicast.receive_timeout_s}}
