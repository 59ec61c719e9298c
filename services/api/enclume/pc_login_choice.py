"""POST /enclume/v1/pc-logins/choice: the PC's agent passes on what the logged-in user chose.

A login (pc_logins.py) answers a ticket: the user's identity signed for that PC, valid
``TICKET_S`` (the key of the web page's session cookies, another salt). The agent sends it back
with the choice; resuming needs one of the user's **own** states made on the session's image
version (another's is 404, by id too; another version's is 409) and marks it used (its
retention counts from now). The answer names what the agent restores; who chose what is
recorded on the node (``pc_logins.record_login``) through its conductor, under the node's lock
like every write to a node, before the answer leaves: the conductor's deploy, held at its
login step, reads it there.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import Body, Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from services.api.deps import conductor, database
from services.api.enclume.common import now
from services.api.enclume.pc_logins import PATH, TOKEN_HEADER
from services.api.enclume.student_states import state_document
from services.api.routing import api_router
from services.api.ui.cookies import secret_key
from services.classroom import pc_logins
from services.classroom.fields import choice, known_keys
from services.classroom.student_states import find_own_state
from services.common.config import Settings
from services.common.db import Database
from services.common.exceptions import EnclumeError, Forbidden, Invalid, NodeLocked
from services.common.identity import Identity
from services.common.models import Node
from services.common.optimistic import retrying_stale
from services.conductor.interface import ConductorAPI

router = api_router(include_in_schema=False)
TICKET_S = 600
SALT = "enclume-pc-login"
ACTIONS = ("fresh", "resume", "maintenance")
LOCKED_RETRY_S = 15.0  # a heartbeat's work holds the node's lock for a moment
LOCKED_PAUSE_S = 0.2


class Tickets:
    def __init__(self, settings: Settings) -> None:
        self.serializer = URLSafeTimedSerializer(secret_key(settings), salt=SALT)

    def issue(self, identity: Identity, node_uuid: str) -> str:
        return self.serializer.dumps({"user": identity.user, "roles": sorted(identity.roles),
                                      "rooms": sorted(identity.rooms), "node": node_uuid})

    def read(self, ticket: Any, node_uuid: str) -> Identity:
        try:
            data = self.serializer.loads(ticket, max_age=TICKET_S) \
                if isinstance(ticket, str) else None
        except BadSignature:
            data = None
        if not isinstance(data, dict):
            raise EnclumeError("The login has expired or is not valid: log in again.", 401)
        if data.get("node") != node_uuid:
            raise Forbidden("This login was made at another PC: log in again here.")
        return Identity(data["user"], frozenset(data["roles"]), frozenset(data["rooms"]))


def _record(db: Database, api: ConductorAPI, node_uuid: str, identity: Identity,
            answer: dict[str, Any]) -> None:
    """``record_login`` written by the node's conductor (compare-and-set on the node's
    driver_internal_info, again while another write or the lock gets in the way)."""
    def attempt() -> None:
        with db.session() as session:
            node = session.scalar(select(Node).where(Node.uuid == node_uuid))
            assert node is not None  # place_of found it
            current = dict(node.driver_internal_info or {})
            pc_logins.record_login(node, identity, answer, now())
            wanted = dict(node.driver_internal_info)
            session.rollback()
        api.update_node(node_uuid, {"driver_internal_info": wanted},
                        expected={"driver_internal_info": current})

    deadline = time.monotonic() + LOCKED_RETRY_S
    while True:
        try:
            retrying_stale(attempt)
            return
        except NodeLocked:  # locally, or through the RPC (rpc.py raises the same class)
            if time.monotonic() > deadline:
                raise
            time.sleep(LOCKED_PAUSE_S)


@router.post(f"{PATH}/choice")
def pc_login_choice(request: Request, body: Any = Body(...),
                    db: Database = Depends(database),
                    api: ConductorAPI = Depends(conductor)) -> dict[str, Any]:
    body = known_keys("PC login choice", body, frozenset({"node", "ticket", "action", "state"}))
    action = choice("action", body.get("action"), ACTIONS)
    tickets: Tickets = request.app.state.pc_login_tickets
    with db.session() as session:
        place = pc_logins.place_of(session, body.get("node"), request.headers.get(TOKEN_HEADER),
                                   now())
        identity = tickets.read(body.get("ticket"), place.node.uuid)
        allowed = {c["action"] for c in pc_logins.choices(session, identity, place)}
        if "fresh" in allowed:
            allowed.add("resume")  # which state may be resumed is find_own_state's answer
        if action not in allowed:
            raise Forbidden(f"{identity.user} may not choose {action} here (may: "
                            f"{', '.join(sorted(allowed))}).")
        answer: dict[str, Any] = {"action": action, "user": identity.user}
        if place.class_session is not None:
            answer["image_version"] = place.class_session.image_version.uuid
        if action == "resume":
            if not isinstance(body.get("state"), str):
                raise Invalid("Resuming needs 'state', the UUID of one of your states.")
            state = find_own_state(session, identity, body["state"],
                                   place.class_session.image_version)  # type: ignore[union-attr]
            state.last_used_at = now()
            session.flush()
            answer["state"] = {**state_document(request, state), "store_id": state.store_id}
        node_uuid = place.node.uuid
    _record(db, api, node_uuid, identity, answer)
    return answer
