"""The web page's session cookie: who is logged in and their CSRF token, signed and dated.

The cookie holds ``{"user": NAME | None, "csrf": TOKEN}`` signed with itsdangerous (the
signer Flask and Starlette use) and a timestamp: one older than ``ENCLUME_UI_SESSION_HOURS``
or with a bad signature reads as no session. It is HttpOnly, SameSite=Lax and Secure when the
page is served over https. Roles and rooms are not in it: they are looked up in the identity
source on each request, so a change of the users file takes effect at once.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from services.common.config import Settings
from services.common.secret_files import host_secret

COOKIE = "enclume_ui"
SALT = "enclume-ui-session"


@dataclass(frozen=True)
class WebSession:
    user: str | None  # None: not logged in (the login form's CSRF token only)
    csrf: str


def secret_key(settings: Settings) -> str:
    """The signing key: ENCLUME_UI_SECRET_FILE, or DATA_DIR/ui-secret made at first start."""
    if settings.ui.secret_file is None:
        return host_secret(settings.process.data_dir / "ui-secret")
    path = settings.ui.secret_file
    key = path.read_text().strip()
    if len(key) < 32:
        raise ValueError(f"{path}: the web page's secret must be at least 32 characters")
    return key


class SessionCookies:
    def __init__(self, key: str, max_age_s: float) -> None:
        self.serializer = URLSafeTimedSerializer(key, salt=SALT)
        self.max_age_s = max_age_s

    def read(self, request: Request) -> WebSession | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self.serializer.loads(raw, max_age=self.max_age_s)
        except BadSignature:  # also an expired one (SignatureExpired)
            return None
        if not isinstance(data, dict) or not isinstance(data.get("csrf"), str):
            return None
        user = data.get("user")
        return WebSession(user if isinstance(user, str) else None, data["csrf"])

    def write(self, request: Request, response: Response, session: WebSession) -> None:
        value = self.serializer.dumps({"user": session.user, "csrf": session.csrf})
        response.set_cookie(COOKIE, value, max_age=int(self.max_age_s), path="/ui",
                            httponly=True, samesite="lax",
                            secure=request.url.scheme == "https")

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="lax")


def new_session(user: str | None) -> WebSession:
    return WebSession(user, secrets.token_urlsafe(32))


def csrf_matches(session: WebSession | None, token: str | None) -> bool:
    return bool(session and token) and hmac.compare_digest(session.csrf.encode(),
                                                           str(token).encode())
