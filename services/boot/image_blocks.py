"""Range reads of the image store's versions, for agents restoring disks block by block.

- ``GET /image-versions/<version id>/manifest``: the version's block manifest (JSON, byte for
  byte as stored, so its sha256 is what the conductor tells the agent to expect).
- ``GET|HEAD /image-versions/<version id>/disk``: the version's raw (virtual) disk, with a single
  HTTP Range (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``) answered 206; zero blocks are read as
  zeros. Blocks are reached through a version only, never by their hash.

Both answer only a request carrying a valid image token for that version in the
``X-Image-Token`` header (``services/images/tokens.py``): 403 without one, with one expired or
made for another version.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from services.images import tokens
from services.images.errors import StoreError, UnknownVersion
from services.images.store import ImageStore

PREFIX = "/image-versions"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class _BadRange(ValueError):
    pass


def parse_range(header: str, size: int) -> tuple[int, int]:
    """``(start, end)`` inclusive of one byte range; _BadRange when unsatisfiable or several."""
    match = _RANGE.match(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        raise _BadRange(header)
    first, last = match.groups()
    if first == "":
        count = int(last)
        if count == 0:
            raise _BadRange(header)
        return max(size - count, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise _BadRange(header)
    return start, end


def _text(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return PlainTextResponse(message + "\n", status_code=status, headers=headers)


def _manifest_json(store: ImageStore, secret: bytes, request: Request,
                   version_id: str) -> bytes | Response:
    """The version's manifest, or the error response: 403 no valid token, 404 unknown, 400 an
    invalid id."""
    refused = tokens.refusal(secret, version_id, request.headers.get(tokens.HEADER))
    if refused is not None:
        return _text(403, refused)
    try:
        return store.manifest_json(version_id)
    except UnknownVersion as exc:
        return _text(404, str(exc))
    except StoreError as exc:
        return _text(400, str(exc))


def image_block_routes(store: ImageStore, secret: bytes) -> list[Route]:
    """The routes; ``secret`` is the image tokens' HMAC secret (``tokens.load_secret``)."""

    def manifest(request: Request) -> Response:
        body = _manifest_json(store, secret, request, request.path_params["version_id"])
        if isinstance(body, Response):
            return body
        return Response(body, media_type="application/json",
                        headers={"Cache-Control": "no-store"})

    def disk(request: Request) -> Response:
        version_id: str = request.path_params["version_id"]
        found = _manifest_json(store, secret, request, version_id)
        if isinstance(found, Response):
            return found
        size = store.manifest(version_id).size
        headers = {"Accept-Ranges": "bytes"}
        status, start, end = 200, 0, size - 1
        wanted = request.headers.get("range")
        if wanted is not None:
            try:
                start, end = parse_range(wanted, size)
            except _BadRange:
                return _text(416, f"one byte range inside the {size}-byte disk, please",
                             {"Content-Range": f"bytes */{size}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        headers["Content-Length"] = str(end - start + 1)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers,
                            media_type="application/octet-stream")
        return StreamingResponse(store.read_range(version_id, start, end - start + 1),
                                 status_code=status, headers=headers,
                                 media_type="application/octet-stream")

    return [Route(PREFIX + "/{version_id}/manifest", manifest, methods=["GET"]),
            Route(PREFIX + "/{version_id}/disk", disk, methods=["GET", "HEAD"])]
