"""Image tokens: who may read which version from the boot service.

The conductor hands the agent, with a restore command, a token scoped to one version id and
valid until an instant; the boot service serves that version's manifest and disk only to a
request carrying it in the ``X-Image-Token`` header. A token is ``<expires>.<hmac>``, the HMAC
(sha256) of ``<version id>\\n<expires>`` under a secret the conductors and boot services share:
``ENCLUME_IMAGE_TOKEN_SECRET`` or ``ENCLUME_IMAGE_TOKEN_SECRET_FILE``, else a file made once in
the data directory (enough for one host: aio and its boot child share it).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from services.common.config import Settings

HEADER = "X-Image-Token"
SECRET_FILE_NAME = "image-token.secret"


def load_secret(settings: Settings) -> bytes:
    if settings.image_token_secret_file is not None:
        return settings.image_token_secret_file.read_text().strip().encode()
    if settings.image_token_secret:
        return settings.image_token_secret.encode()
    return _host_secret(settings.data_dir / SECRET_FILE_NAME)


def _host_secret(path: Path) -> bytes:
    try:
        return path.read_text().strip().encode()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(32))
    try:
        os.link(partial, path)  # the first process to make it wins; the others read it
    except FileExistsError:
        pass
    finally:
        partial.unlink()
    return path.read_text().strip().encode()


def _mac(secret: bytes, version_id: str, expires: int) -> str:
    return hmac.new(secret, f"{version_id}\n{expires}".encode(), hashlib.sha256).hexdigest()


def issue(secret: bytes, version_id: str, ttl_s: float, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + ttl_s)
    return f"{expires}.{_mac(secret, version_id, expires)}"


def refusal(secret: bytes, version_id: str, token: str | None,
            now: float | None = None) -> str | None:
    """Why ``token`` does not open ``version_id`` (None: it does)."""
    if not token:
        return f"reading an image version needs its token in the {HEADER} header"
    expires_text, _, mac = token.partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12:
        return "the image token is malformed"
    if not hmac.compare_digest(mac.encode(), _mac(secret, version_id, int(expires_text)).encode()):
        return f"the image token is not valid for version {version_id}"
    if int(expires_text) < (time.time() if now is None else now):
        return "the image token has expired"
    return None
