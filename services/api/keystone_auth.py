"""The ``keystone`` strategy: an X-Auth-Token validated by keystonemiddleware's auth_token.

auth_token is WSGI middleware; ``KeystoneTokens`` drives it as such, in a worker thread (it
calls Keystone synchronously): a WSGI environ holding only the caller's token goes through
``AuthProtocol`` to a tiny application that keeps the identity headers auth_token set (roles,
system or project scope). auth_token keeps Keystone's answers in its cache (in process or
memcached) until ``token_cache_s`` or the token's own expiry, whichever comes first, so an
expired token is refused even when cached. What it refuses (401, Keystone unreachable: 503)
is answered as Ironic's JSON errors by ``KeystoneAuthMiddleware``. The token is checked once,
when the request arrives (as Ironic does): a request that started with a valid token finishes
even if the token expires meanwhile; the next one is refused. keystonemiddleware is the
optional extra ``enclume[keystone]``, imported only by this strategy.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from services.api.auth import exempt_from_auth, refuse
from services.common.config_service_sections import KeystoneSettings
from services.common.identity import Identity, KeystoneScope

_LOG = logging.getLogger(__name__)
_RESULT = "enclume.keystone_result"  # where the inner application leaves what it saw


@dataclass(frozen=True)
class TokenAnswer:
    status: int
    identity: Identity | None = None
    www_authenticate: bytes | None = None


def _accepted(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    environ[_RESULT].append(dict(environ))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b""]


def _header_set(value: str | None) -> frozenset[str]:
    return frozenset(part.strip() for part in (value or "").split(",") if part.strip())


class KeystoneTokens:
    def __init__(self, settings: KeystoneSettings) -> None:
        from keystonemiddleware import auth_token  # the optional extra: only when used
        from oslo_config import cfg

        assert settings.auth_url is not None and settings.password is not None
        conf: dict[str, Any] = {
            # A configuration object of its own, not oslo.config's process-wide one.
            "oslo_config_config": cfg.ConfigOpts(),
            "auth_type": "password", "auth_url": settings.auth_url,
            "username": settings.username, "password": settings.password,
            "project_name": settings.project_name,
            "user_domain_name": settings.user_domain_name,
            "project_domain_name": settings.project_domain_name,
            "www_authenticate_uri": settings.auth_url, "interface": settings.interface,
            "http_connect_timeout": str(int(settings.timeout_s)),
            "http_request_max_retries": "1",
            "token_cache_time": str(settings.token_cache_s),
            "delay_auth_decision": "false", "include_service_catalog": "false",
            "service_type": "baremetal",
        }
        if settings.cafile:
            conf["cafile"] = str(settings.cafile)
        if settings.memcached_servers:
            conf["memcached_servers"] = ",".join(settings.memcached_servers)
        self._protocol = auth_token.AuthProtocol(_accepted, conf)
        self.www_authenticate = f'Keystone uri="{settings.auth_url}"'.encode()

    def validate(self, token: str) -> TokenAnswer:
        """Blocking (Keystone is called): run it in a worker thread."""
        seen: list[dict[str, Any]] = []
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "SCRIPT_NAME": "",
                   "QUERY_STRING": "", "SERVER_NAME": "enclume", "SERVER_PORT": "80",
                   "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
                   "wsgi.input": io.BytesIO(), "wsgi.errors": io.StringIO(),
                   "HTTP_X_AUTH_TOKEN": token, _RESULT: seen}
        statuses: list[str] = []
        headers: list[tuple[str, str]] = []

        def start_response(status: str, response_headers: list[tuple[str, str]],
                           exc_info: Any = None) -> None:
            statuses.append(status)
            headers.extend(response_headers)

        body = self._protocol(environ, start_response)
        b"".join(body)
        status = int(statuses[0].split()[0]) if statuses else 500
        if status != 200 or not seen:
            challenge = next((v for k, v in headers if k.lower() == "www-authenticate"), None)
            return TokenAnswer(status if status != 200 else 500, None,
                               challenge.encode() if challenge else None)
        return TokenAnswer(200, _identity(seen[0]))


def _identity(environ: dict[str, Any]) -> Identity:
    roles = _header_set(environ.get("HTTP_X_ROLES"))
    system = environ.get("HTTP_OPENSTACK_SYSTEM_SCOPE") == "all"
    scope = KeystoneScope(roles, system, environ.get("HTTP_X_PROJECT_ID"),
                          environ.get("HTTP_X_PROJECT_NAME"), environ.get("HTTP_X_DOMAIN_ID"))
    # The classroom API (/enclume/v1) knows its own roles: the system's admins and members.
    classroom: set[str] = set()
    if system and "admin" in roles:
        classroom.add("admin")
    elif system and "member" in roles:
        classroom.add("operator")
    user = environ.get("HTTP_X_USER_NAME") or environ.get("HTTP_X_USER_ID") or "keystone"
    return Identity(user, frozenset(classroom), keystone=scope)


class KeystoneAuthMiddleware:
    def __init__(self, app: ASGIApp, tokens: KeystoneTokens, public_metrics: bool = False) -> None:
        self.app = app
        self.tokens = tokens
        self.public_metrics = public_metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if exempt_from_auth(scope, self.public_metrics):
            await self.app(scope, receive, send)
            return
        token = next((value.decode("latin-1") for key, value in scope["headers"]
                      if key.lower() == b"x-auth-token"), None)
        try:
            answer = (await to_thread.run_sync(self.tokens.validate, token) if token
                      else TokenAnswer(401))
        except Exception as exc:  # keystoneauth's connection errors that auth_token lets out
            _LOG.warning("Keystone could not validate a token: %s", type(exc).__name__)
            answer = TokenAnswer(503)
        if answer.status >= 500:
            await refuse(send, 503, "Keystone cannot be reached to validate tokens; try "
                                    "again later.", [(b"retry-after", b"30")])
            return
        if answer.identity is None:
            await refuse(send, 401, "Authentication required: the X-Auth-Token was missing, "
                                    "expired, revoked or not valid.",
                         [(b"www-authenticate",
                           answer.www_authenticate or self.tokens.www_authenticate)])
            return
        scope.setdefault("state", {})["identity"] = answer.identity
        await self.app(scope, receive, send)
