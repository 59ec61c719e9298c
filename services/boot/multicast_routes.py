"""The boot service's multicast sessions over HTTP (``services.boot.multicast_sender``).

- ``POST /multicast-sessions`` ``{"version_id": ..., "expected": N}``: open a session streaming
  that version to N receivers; 201 and the session (``id``, ``group``, ``port``, ``state``...).
- ``GET /multicast-sessions/<id>``: the session.
- ``POST /multicast-sessions/<id>/joined`` ``{"client_id": "0x0a000a0b"}``: a receiver (an
  agent's uftpd, its id) has joined; the stream starts when all expected have. The answer is
  the session with ``late``: true when the stream had started without it (the agent then
  repairs over HTTP at once).
- ``DELETE /multicast-sessions/<id>``: stop the sender, free its group and port.

Each needs an image token for the session's version in ``X-Image-Token`` (403 without), as the
version's range reads do (``services.boot.image_blocks``): the conductor that may hand a version
to agents may stream it, and the agents it handed the token to may say they joined.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.boot.multicast_sender import (
    CLIENT_ID,
    MulticastSession,
    MulticastSessions,
    SessionError,
)
from services.images import tokens
from services.images.errors import StoreError, UnknownVersion

PREFIX = "/multicast-sessions"


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def _refused(secret: bytes, request: Request, version_id: str) -> Response | None:
    refused = tokens.refusal(secret, version_id, request.headers.get(tokens.HEADER))
    return None if refused is None else _error(403, refused)


def multicast_routes(sessions: MulticastSessions, secret: bytes) -> list[Route]:

    async def open_session(request: Request) -> Response:
        try:
            body: Any = json.loads(await request.body())
            version_id, expected = str(body["version_id"]), body.get("expected", 1)
        except (ValueError, KeyError, TypeError):
            return _error(400, 'send {"version_id": "<version>", "expected": <receivers>}')
        if isinstance(expected, bool) or not isinstance(expected, int) or expected < 1:
            return _error(400, "expected must be a whole number of receivers, at least 1")
        refused = _refused(secret, request, version_id)
        if refused is not None:
            return refused
        try:
            session = sessions.open(version_id, expected)
        except UnknownVersion as exc:
            return _error(404, str(exc))
        except StoreError as exc:
            return _error(400, str(exc))
        except SessionError as exc:
            return _error(503, str(exc))
        return JSONResponse(session.document(), status_code=201)

    def found(request: Request) -> MulticastSession | Response:
        session = sessions.get(request.path_params["session_id"])
        if session is None:
            return _error(404, "no such multicast session")
        return _refused(secret, request, session.version_id) or session

    def status(request: Request) -> Response:
        session = found(request)
        if isinstance(session, Response):
            return session
        return JSONResponse(session.document())

    async def joined(request: Request) -> Response:
        session = found(request)
        if isinstance(session, Response):
            return session
        try:
            body: Any = json.loads(await request.body() or b"{}")
            client_id = body.get("client_id")
        except (ValueError, AttributeError):
            return _error(400, 'send {"client_id": "0x<8 hex digits>"}')
        if client_id is not None and not (isinstance(client_id, str)
                                          and CLIENT_ID.fullmatch(client_id)):
            return _error(400, "client_id must be uftpd's id, 0x and 8 hex digits")
        in_time = await run_in_threadpool(sessions.joined, session, client_id)
        return JSONResponse({**session.document(), "late": not in_time})

    def close(request: Request) -> Response:
        session = found(request)
        if isinstance(session, Response):
            return session
        sessions.close(session.id)
        return JSONResponse(session.document())

    return [Route(PREFIX, open_session, methods=["POST"]),
            Route(PREFIX + "/{session_id}", status, methods=["GET"]),
            Route(PREFIX + "/{session_id}", close, methods=["DELETE"]),
            Route(PREFIX + "/{session_id}/joined", joined, methods=["POST"])]
