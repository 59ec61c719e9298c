"""Authentication: ``noauth``, ``http_basic`` (htpasswd, bcrypt, as Ironic standalone does it),
``users_file`` (bcrypt and roles, services/common/identity.py), ``ldap`` (the university's
directory, services/common/ldap_identity.py; a directory that cannot answer is a 503) or
``keystone`` (tokens, services/api/keystone_auth.py).

noauth is refused off loopback unless explicitly allowed; without authentication every request
acts as an admin. The middleware puts the caller's ``Identity`` in ``scope["state"]`` and keeps
Ironic's /v1 for the admin, operator and service roles (teachers and students get 403 there).
"""

from __future__ import annotations

import base64
import ipaddress

from anyio import to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from services.api.errors import error_body
from services.common.config import Settings
from services.common.identity import (
    DirectoryUnavailable,
    Htpasswd,
    Identity,
    IdentitySource,
    UsersFile,
)
from services.common.metrics_asgi import METRICS_PATH

# /v1/continue_inspection: inventories of discovered machines, public as in Ironic, refused
# while discovery is off (services/api/discovery.py).
PUBLIC_PATHS = frozenset({"/", "/v1", "/v1/", "/v1/lookup", "/v1/continue_inspection"})
# The agent's heartbeats: public as in Ironic, the agent proves itself with its token; so does
# a deployed OS's session service (services/api/enclume/session_service.py), and an agent
# passing on a user's login at its PC (services/api/enclume/pc_logins.py), and the web
# consoles' page (enclume-aio: their URL carries the console's token).
PUBLIC_PREFIXES = ("/v1/heartbeat/", "/enclume/v1/session-service/", "/enclume/v1/pc-logins",
                   "/console/")
REALM = b'Basic realm="Baremetal API"'
# Enclume's own API: its endpoints check roles and rooms themselves (services/api/enclume).
ENCLUME_PREFIX = "/enclume/"
# The web page logs its visitors in with a session cookie of its own (services/api/ui).
WEB_PAGE_PATHS = ("/ui", "/ui/")
STRATEGIES = ("noauth", "http_basic", "users_file", "ldap", "keystone")


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
    strategy = settings.auth.strategy or (
        "noauth" if is_loopback(settings.api.host) else "http_basic"
    )
    if strategy not in STRATEGIES:
        raise AuthConfigError(f"unknown auth strategy {strategy!r}: use "
                              f"{', '.join(STRATEGIES)}")
    if strategy == "noauth" and not is_loopback(settings.api.host) and not (
        settings.auth.allow_noauth_off_loopback
    ):
        raise AuthConfigError(
            f"noauth on {settings.api.host} would let anyone on the network control machines; "
            "use ENCLUME_AUTH_STRATEGY=http_basic with ENCLUME_HTPASSWD_FILE, or set "
            "ENCLUME_ALLOW_NOAUTH_OFF_LOOPBACK=true"
        )
    if strategy == "http_basic" and not (
        settings.auth.htpasswd_file and settings.auth.htpasswd_file.is_file()
    ):
        raise AuthConfigError("http_basic needs ENCLUME_HTPASSWD_FILE naming an htpasswd file "
                              "of bcrypt entries")
    users_file = settings.auth.users_file
    if strategy == "users_file" and not (users_file and users_file.is_file()):
        raise AuthConfigError("users_file needs ENCLUME_USERS_FILE naming a YAML users file")
    if strategy == "ldap" and not settings.ldap.url:
        raise AuthConfigError("ldap needs ENCLUME_LDAP_URL naming the directory")
    if strategy == "keystone" and not (settings.keystone.auth_url
                                       and settings.keystone.password):
        raise AuthConfigError("keystone needs ENCLUME_KEYSTONE_AUTH_URL and "
                              "ENCLUME_KEYSTONE_PASSWORD (the service user's)")
    if strategy == "ldap" and settings.ldap.users_file_fallback and not (
        users_file and users_file.is_file()
    ):
        raise AuthConfigError("ENCLUME_LDAP_USERS_FILE_FALLBACK needs ENCLUME_USERS_FILE naming "
                              "a YAML users file")
    return strategy


def identity_source(settings: Settings, strategy: str) -> IdentitySource | None:
    """The identity source of ``strategy``; None for noauth. A broken users file is refused."""
    if strategy == "http_basic":
        assert settings.auth.htpasswd_file is not None
        return Htpasswd(settings.auth.htpasswd_file)
    if strategy == "users_file":
        assert settings.auth.users_file is not None
        try:
            return UsersFile(settings.auth.users_file)
        except ValueError as exc:
            raise AuthConfigError(str(exc)) from None
    if strategy == "ldap":
        from services.common.ldap_identity import LdapSource  # ldap3 costs memory: only when used

        try:
            local = UsersFile(settings.auth.users_file) if settings.auth.users_file else None
            return LdapSource(settings.ldap, local)
        except ValueError as exc:
            raise AuthConfigError(str(exc)) from None
    if strategy == "keystone":
        # /v1 takes tokens; the web page and PC logins take the users file's users, if any.
        if settings.auth.users_file is None:
            return NoUsers()
        return identity_source(settings, "users_file")
    return None


class NoUsers:
    """The identity source of a strategy without passwords (keystone with no users file):
    the web page's logins find nobody, rather than letting everyone in as noauth would."""

    def authenticate(self, user: str, password: str) -> Identity | None:
        return None

    def identity_of(self, user: str) -> Identity | None:
        return None

    def users(self) -> list[Identity]:
        return []


def exempt_from_auth(scope: Scope, public_metrics: bool) -> bool:
    """Paths anyone may call (discovery, the agent's, the web page's own login, /metrics)."""
    path = scope["path"] if scope["type"] == "http" else ""
    return (scope["type"] != "http" or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
            or path == WEB_PAGE_PATHS[0] or path.startswith(WEB_PAGE_PATHS[1])
            or (public_metrics and path == METRICS_PATH))


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
    def __init__(self, app: ASGIApp, source: IdentitySource, public_metrics: bool = False) -> None:
        self.app = app
        self.source = source
        self.public_metrics = public_metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if exempt_from_auth(scope, self.public_metrics):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        credentials = _credentials(scope)
        try:
            # In a thread: bcrypt is slow on purpose and a directory may take its time.
            identity = (await to_thread.run_sync(self.source.authenticate, *credentials)
                        if credentials else None)
        except DirectoryUnavailable:
            await refuse(send, 503, "The user directory (LDAP) cannot be reached: try again "
                                     "later.", [(b"retry-after", b"30")])
            return
        if identity is None:
            await refuse(send, 401, "Authentication required: HTTP basic credentials were "
                                     "missing or wrong.", [(b"www-authenticate", REALM)])
            return
        if not path.startswith(ENCLUME_PREFIX) and not identity.may_use_ironic:
            await refuse(send, 403, "Access was denied: the Ironic API is for the admin, "
                                     "operator and service roles.", [])
            return
        scope.setdefault("state", {})["identity"] = identity
        await self.app(scope, receive, send)


async def refuse(send: Send, status: int, message: str,
                  headers: list[tuple[bytes, bytes]]) -> None:
    body = error_body(status, message)
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), *headers,
        (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
