"""Opening image URLs and reading their bodies into buffers, with short reads made errors."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from agent.errors import BadParams, CommandError

MAX_EXPLANATION_BYTES = 500  # longer error bodies are pages, not explanations
IMAGE_TOKEN_HEADER = "X-Image-Token"  # the boot service's image store wants it


def image_token(params: dict[str, Any]) -> str | None:
    """The ``image_token`` parameter (the conductor's read credential for one image version of
    the boot service), checked."""
    token = params.get("image_token")
    if token is not None and (not isinstance(token, str) or not token.isprintable()):
        raise BadParams("image_token must be the token the conductor was given (text)")
    return token


def token_headers(token: str | None) -> dict[str, str]:
    """The header carrying the image token, if any."""
    return {IMAGE_TOKEN_HEADER: token} if token else {}


@dataclass
class Download:
    url: str
    response: http.client.HTTPResponse
    total: int | None  # Content-Length, when the server sent one
    received: int = 0

    def readinto(self, buffer: memoryview) -> int:
        """Fill ``buffer`` as far as the body goes; 0 only at the end of the body."""
        filled = 0
        while filled < len(buffer):
            try:
                count = self.response.readinto(buffer[filled:])
            except http.client.IncompleteRead:
                count = 0
                self._short()
            except OSError as exc:
                raise CommandError(f"download of {self.url} failed after {self.received} "
                                   f"bytes: {exc.strerror or exc}") from None
            if not count:
                break
            filled += count
            self.received += count
        if filled == 0 and self.total is not None and self.received < self.total:
            self._short()
        return filled

    def _short(self) -> None:
        expected = f" of {self.total}" if self.total is not None else ""
        raise CommandError(f"short download of {self.url}: the server closed the connection "
                           f"after {self.received}{expected} bytes")

    def close(self) -> None:
        self.response.close()


def check_url(url: object, what: str) -> str:
    if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise BadParams(f"{what} must be an http(s) URL, got {url!r}")
    return url


def _explanation(error: urllib.error.HTTPError) -> str:
    """": <what the server said>" for a short plain-text error body (the boot service's image
    cache says why it refused: a checksum mismatch, an unreachable source), else ""."""
    if not error.headers.get("Content-Type", "").startswith("text/plain"):
        return ""
    try:
        body = error.read(MAX_EXPLANATION_BYTES + 1)
    except OSError:
        return ""
    text = body.decode(errors="replace").strip()
    if not text or len(body) > MAX_EXPLANATION_BYTES:
        return ""
    return ": " + " ".join(text.split())


def open_url(url: str, timeout_s: float, first_bytes: int | None = None,
             extra_headers: dict[str, str] | None = None) -> Download:
    """The body of ``url``; with ``first_bytes``, ask for only that much (a Range request; a
    server without ranges sends everything, of which the caller reads what it needs)."""
    headers = {"User-Agent": "enclume-agent", **(extra_headers or {})}
    if first_bytes is not None:
        headers["Range"] = f"bytes=0-{first_bytes - 1}"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        raise CommandError(f"cannot download {url}: HTTP {exc.code} {exc.reason}"
                           f"{_explanation(exc)}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CommandError(f"cannot download {url}: {reason}") from None
    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    return Download(url=url, response=response, total=total)
