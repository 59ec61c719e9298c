"""The agent's endpoints (Ironic's ramdisk API), public like Ironic's: the agent proves itself
with the one-time token it got at its first lookup.

- ``GET /v1/lookup?addresses=<mac>,<mac>[&node_uuid=<uuid>]``: the node of those MACs, in a
  state that expects an agent (or, with fast track on for it, resting in ``enroll``,
  ``manageable`` or ``available``: an agent that restarted there), and the agent's
  configuration; the token only at the first lookup after the ramdisk was prepared
  (``******`` after that; in a resting state, a new one once the earlier agent has been silent
  for ENCLUME_AGENT_HEARTBEAT_TIMEOUT_S). A MAC of the node is required:
  a node UUID alone finds nothing (400), unlike Ironic, where it handed out the token.
- ``POST /v1/heartbeat/<node uuid>`` ``{"callback_url", "agent_token", "agent_version"}``: 202;
  the callback URL's host must be the IP address the heartbeat came from (403), so no one can
  point the conductor's commands elsewhere; handed to the conductor that owns the node, which
  checks it (401 without a token, 403 with a wrong one, 409 in a state that expects no agent or
  from another callback URL than the token's first) and continues the node's work in a worker.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any
from urllib.parse import urlsplit

from fastapi import Body, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.api.deps import conductor, database
from services.api.routing import api_router
from services.common import fast_track, validation
from services.common.agent_checks import callback_url_problem, check_version
from services.common.db import Database
from services.common.exceptions import Invalid, NodeNotFound, NotFound
from services.common.macs import parse_mac
from services.common.metrics import AGENT_HEARTBEATS
from services.common.models import Node, Port
from services.common.node_fields import AGENT_TOKEN
from services.common.secrets import MASK, mask
from services.common.states import expects_agent
from services.common.validation import is_uuid
from services.conductor.interface import ConductorAPI

router = api_router(prefix="/v1")

NO_AGENT_NODE = "No node in a state that expects an agent was found for these addresses."


def _macs(addresses: str | None) -> list[str]:
    if not addresses:
        return []
    found = (parse_mac(item.strip()) for item in addresses.split(","))
    return [mac for mac in found if mac]


def _find(session: Session, macs: list[str], node_uuid: str | None,
          fast_track_default: bool) -> Node:

    def expects(node: Node) -> bool:  # or rests with fast track on: its agent may restart
        return fast_track.accepts_agent(node.provision_state, node.driver_info or {},
                                        fast_track_default)

    if node_uuid is not None:
        if not is_uuid(node_uuid):
            raise Invalid(f"node_uuid must be a UUID, not {node_uuid!r}.")
        node = session.scalar(select(Node).where(Node.uuid == node_uuid.lower()))
        if node is None or not {p.address for p in node.ports} & set(macs):
            raise NotFound(NO_AGENT_NODE)
        candidates = [node]
    else:
        nodes = session.scalars(select(Node).join(Port, Port.node_id == Node.id)
                                .where(Port.address.in_(macs))).unique().all()
        candidates = [n for n in nodes if expects(n)]
        if len(candidates) > 1:
            raise NotFound(f"Several nodes expecting an agent have these addresses "
                           f"({', '.join(sorted(n.uuid for n in candidates))}); pass node_uuid.")
    if not candidates or not expects(candidates[0]):
        raise NotFound(NO_AGENT_NODE)
    return candidates[0]


def _node_document(node: Node) -> dict[str, Any]:
    return {"uuid": node.uuid, "properties": mask(node.properties),
            "instance_info": mask(node.instance_info),
            "driver_internal_info": mask(node.driver_internal_info),
            "provision_state": node.provision_state}


@router.get("/lookup")
def lookup(request: Request, addresses: str | None = None, node_uuid: str | None = None,
           db: Database = Depends(database), manager: ConductorAPI = Depends(conductor)
           ) -> dict[str, Any]:
    macs = _macs(addresses)
    if not macs:
        raise Invalid("Lookup needs addresses: comma-separated MAC addresses of the node.")
    with db.session() as session:
        found = _find(session, macs, node_uuid, request.app.state.settings.deploy.fast_track)
        uuid, issued = found.uuid, bool(found.driver_internal_info.get(AGENT_TOKEN))
        resting = not expects_agent(found.provision_state)  # the conductor decides
    token = None if issued and not resting else manager.issue_agent_token(uuid)
    with db.session() as session:
        node = session.scalar(select(Node).where(Node.uuid == uuid))
        if node is None:
            raise NotFound(NO_AGENT_NODE)
        document = _node_document(node)
    settings = request.app.state.settings
    return {"node": document,
            "config": {"heartbeat_timeout": settings.deploy.agent_heartbeat_timeout_s,
                       "agent_token": token or MASK, "agent_token_required": True}}


def _check_callback_host(request: Request, callback_url: str) -> None:
    """The agent serves its commands on the address it calls from (the agent advertises the
    address its route to the API leaves from): any other host could be a thief's."""
    client = request.client.host if request.client else ""
    host = urlsplit(callback_url).hostname or ""
    if _ip(host) is None:
        raise Invalid("callback_url's host must be an IP address (the agent's own).")
    if _ip(host) != _ip(client):
        raise Invalid(f"callback_url's host {host} is not the address this heartbeat came "
                      "from.", code=403)


def _ip(text: str) -> IPv4Address | IPv6Address | None:
    try:
        address = ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


@router.post("/heartbeat/{node_ident}", status_code=202)
def heartbeat(request: Request, node_ident: str, body: Any = Body(...),
              db: Database = Depends(database),
              manager: ConductorAPI = Depends(conductor)) -> Response:
    try:
        _heartbeat(request, node_ident, body, db, manager)
    except Exception:
        AGENT_HEARTBEATS.labels("refused").inc()
        raise
    AGENT_HEARTBEATS.labels("accepted").inc()
    return Response(status_code=202)


def _heartbeat(request: Request, node_ident: str, body: Any, db: Database,
               manager: ConductorAPI) -> None:
    if not isinstance(body, dict):
        raise Invalid("Invalid heartbeat: expected a JSON object.")
    if isinstance(body.get("callback_url"), str):
        validation.text("callback_url", body["callback_url"])
    problem = callback_url_problem(body.get("callback_url"))
    if problem:
        raise Invalid(problem)
    token, version = body.get("agent_token"), check_version(body.get("agent_version"))
    if token is not None and not isinstance(token, str):
        raise Invalid("agent_token must be a string.")
    _check_callback_host(request, body["callback_url"])
    if not is_uuid(node_ident):
        raise NodeNotFound(node_ident)
    with db.session() as session:
        if session.scalar(select(Node.id).where(Node.uuid == node_ident.lower())) is None:
            raise NodeNotFound(node_ident)
    manager.heartbeat(node_ident.lower(), body["callback_url"], token, version)
