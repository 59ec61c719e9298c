"""Authentication, as Ironic standalone does it: ``noauth`` or ``http_basic`` (htpasswd, bcrypt).

noauth is refused off loopback unless explicitly allowed. Verified credentials are remembered
(as a salted digest, never the password) so that bcrypt's deliberate slowness is paid once per
user and password, not on every request; a change of the htpasswd file forgets them all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import secrets
import threading
from pathlib import Path

import bcrypt
from starlette.types import ASGIApp, Receive, Scope, Send

from services.api.errors import error_body
from services.common.config import Settings

# /v1/continue_inspection: inventories of discovered machines, public as in Ironic, refused
# while discovery is off (services/api/discovery.py).
PUBLIC_PATHS = frozenset({"/", "/v1", "/v1/", "/v1/lookup", "/v1/continue_inspection"})
# The agent's heartbeats: public as in Ironic, the agent proves itself with its token.
PUBLIC_PREFIXES = ("/v1/heartbeat/",)
REALM = b'Basic realm="Baremetal API"'


class AuthConfigError(RuntimeError):
    pass


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def effective_strategy(settings: Settings) -> str:
    """The strategy to run with, refusing noauth where the world could reach it."""
    strategy = settings.auth_strategy or (
        "noauth" if is_loopback(settings.api_host) else "http_basic"
    )
    if strategy not in ("noauth", "http_basic"):
        raise AuthConfigError(f"unknown auth strategy {strategy!r}: use noauth or http_basic")
    if strategy == "noauth" and not is_loopback(settings.api_host) and not (
        settings.allow_noauth_off_loopback
    ):
        raise AuthConfigError(
            f"noauth on {settings.api_host} would let anyone on the network control machines; "
            "use ENCLUME_AUTH_STRATEGY=http_basic with ENCLUME_HTPASSWD_FILE, or set "
            "ENCLUME_ALLOW_NOAUTH_OFF_LOOPBACK=true"
        )
    if strategy == "http_basic" and not (
        settings.htpasswd_file and settings.htpasswd_file.is_file()
    ):
        raise AuthConfigError("http_basic needs ENCLUME_HTPASSWD_FILE naming an htpasswd file "
                              "of bcrypt entries")
    return strategy


class Htpasswd:
    """Users of an htpasswd file with bcrypt hashes, re-read when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._users: dict[str, bytes] = {}
        self._mtime: float | None = None
        self._verified: set[bytes] = set()
        self._salt = secrets.token_bytes(16)
        self._guard = threading.Lock()

    def _reload_if_changed(self) -> None:
        mtime = os.stat(self.path).st_mtime
        if mtime == self._mtime:
            return
        users = {}
        for line in self.path.read_text().splitlines():
            user, sep, hashed = line.strip().partition(":")
            if sep and hashed.startswith(("$2y$", "$2b$", "$2a$")):
                users[user] = hashed.replace("$2y$", "$2b$", 1).encode()
        self._users, self._mtime, self._verified = users, mtime, set()

    def check(self, user: str, password: str) -> bool:
        digest = hmac.new(self._salt, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        with self._guard:
            self._reload_if_changed()
            if digest in self._verified:
                return True
            hashed = self._users.get(user)
        if hashed is None or not _bcrypt_matches(password, hashed):
            return False
        with self._guard:
            self._verified.add(digest)
        return True


def _bcrypt_matches(password: str, hashed: bytes) -> bool:
    """bcrypt's verdict; a password bcrypt refuses to hash (over 72 bytes) is simply wrong."""
    try:
        return bcrypt.checkpw(password.encode(), hashed)
    except ValueError:
        return False


def _credentials(scope: Scope) -> tuple[str, str] | None:
    for key, value in scope["headers"]:
        if key.lower() == b"authorization":
            scheme, _, encoded = value.decode("latin-1").partition(" ")
            if scheme.lower() != "basic":
                return None
            try:
                user, sep, password = base64.b64decode(encoded).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            return (user, password) if sep else None
    return None


class BasicAuthMiddleware:
    def __init__(self, app: ASGIApp, htpasswd: Htpasswd) -> None:
        self.app = app
        self.htpasswd = htpasswd

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if scope["type"] != "http" or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        credentials = _credentials(scope)
        if credentials and self.htpasswd.check(*credentials):
            await self.app(scope, receive, send)
            return
        body = error_body(401, "Authentication required: HTTP basic credentials were missing "
                               "or wrong.")
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"www-authenticate", REALM),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
