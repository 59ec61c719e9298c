"""/enclume/v1/session-service/{node}: the session service of a deployed OS heartbeats here
and fetches its commands (docs/session-service.md).

Authenticated by the deploy's token alone (``Authorization: Bearer <token>``; the path is left
alone by the auth middleware): a wrong or expired token, or an unknown node, is a 401 that
says no more. A heartbeat records the OS's boot time and answers the command waiting for the
service, holding the request up to ``wait_s`` (at most ENCLUME_SESSION_SERVICE_WAIT_S) for one
to be asked (a long poll). The held requests of one API process share one look at the database
every ``POLL_S`` (which nodes have a command waiting, off the event loop), so 400 waiting PCs
cost two queries a second, not 800.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import anyio
from fastapi import Body, Depends, Request
from sqlalchemy import select

from services.api.deps import database
from services.api.enclume.common import PREFIX, now
from services.api.routing import api_router
from services.common import session_service
from services.common.db import Database
from services.common.exceptions import EnclumeError, Invalid
from services.common.lookups import by_uuid_or_name
from services.common.models import Node
from services.common.session_models import SessionService

router = api_router(include_in_schema=False)  # not Ironic: kept out of its OpenAPI document

PATH_PREFIX = f"{PREFIX}/session-service/"
POLL_S = 0.5
REFUSED = "The session token is wrong or expired (each deploy issues a new one)."


def _token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise EnclumeError(REFUSED, code=401)
    return token.strip()


def _booted_at(body: dict[str, Any]) -> datetime | None:
    value = body.get("booted_at")
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise Invalid("Invalid booted_at: expected an ISO 8601 time with its UTC offset.")
    return moment


def _wait_s(body: dict[str, Any], limit: float) -> float:
    value = body.get("wait_s", 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise Invalid("Invalid wait_s: expected a number of seconds, 0 or more.")
    return min(float(value), limit)


def _heartbeat(db: Database, node: str, token: str, booted_at: datetime | None) -> tuple[
        int, str | None]:
    with db.session() as session:
        node_id = session.scalar(select(Node.id).where(by_uuid_or_name(Node, node)))
        try:
            row = session_service.authenticate(session, node_id or -1, token)
        except session_service.BadToken:
            raise EnclumeError(REFUSED, code=401) from None
        moment = now()
        session_service.heartbeat(row, booted_at, moment)
        return row.node_id, session_service.take_command(row, moment)


class WaitingCommands:
    """The nodes with a command waiting, read at most once per ``POLL_S`` for all callers."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._nodes: frozenset[int] = frozenset()
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    def _read(self) -> frozenset[int]:
        with self.db.session() as session:
            return frozenset(session.scalars(select(SessionService.node_id).where(
                SessionService.command.is_not(None))))

    async def has(self, node_id: int) -> bool:
        async with self._lock:
            if time.monotonic() - self._read_at >= POLL_S:
                self._nodes = await anyio.to_thread.run_sync(self._read)
                self._read_at = time.monotonic()
        return node_id in self._nodes


def _waiting_commands(request: Request, db: Database) -> WaitingCommands:
    waiting: WaitingCommands | None = getattr(request.app.state, "session_commands", None)
    if waiting is None:
        waiting = request.app.state.session_commands = WaitingCommands(db)
    return waiting


def _command(db: Database, node_id: int) -> str | None:
    with db.session() as session:
        row = session_service.find(session, node_id)
        return None if row is None else session_service.take_command(row, now())


@router.post(f"{PATH_PREFIX}{{node}}")
async def session_heartbeat(node: str, request: Request, body: Any = Body(default=None),
                            db: Database = Depends(database)) -> dict[str, Any]:
    """The service is up (booted at ``booted_at``); the command waiting for it, if any."""
    settings = request.app.state.settings
    body = {} if body is None else body
    if not isinstance(body, dict):
        raise Invalid("The heartbeat's body must be a JSON object.")
    token, booted_at = _token(request), _booted_at(body)
    deadline = time.monotonic() + _wait_s(body, settings.session_service.wait_s)
    node_id, command = await anyio.to_thread.run_sync(_heartbeat, db, node, token, booted_at)
    waiting = _waiting_commands(request, db)
    while command is None and time.monotonic() < deadline:
        await anyio.sleep(POLL_S)
        if not await waiting.has(node_id):
            continue
        if await request.is_disconnected():
            break  # a command taken now would be lost: the next heartbeat gets it
        command = await anyio.to_thread.run_sync(_command, db, node_id)
    return {"command": command, "heartbeat_s": settings.session_service.wait_s}
