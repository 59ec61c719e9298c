"""The capture side of the image store: the agent of a node being captured sends its disk.

- ``POST /image-captures/<node uuid>/manifest``: the disk's block manifest; the answer
  ``{"missing": [sha256, ...]}`` lists the blocks to send (not in the store, not received by an
  earlier, interrupted attempt). 507 at once when they cannot fit in the store.
- ``GET /image-captures/<node uuid>/missing``: the same list, again.
- ``PUT /image-captures/<node uuid>/blocks/<sha256>``: one block's bytes, plain or as one zstd
  frame (``Content-Encoding: zstd``, decompressed bounded by the block size: 413 beyond it),
  checked against the hash (422 if they differ: nothing kept).
- ``POST /image-captures/<node uuid>/commit``: the version is made, whole, and recorded in the
  catalogue; the answer is its catalogue document.

Each request carries the agent's token in ``X-Agent-Token``; the node must be waiting for its
agent with a capture step planned (``CaptureAuthority``): that step, not the agent, says which
image and version are being made.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from services.classroom.image_capture import CaptureTarget, Refused
from services.images import manifest as manifests
from services.images.capture import CaptureIncomplete, UnknownCapture
from services.images.errors import ChecksumMismatch, StoreError, StoreFull, VersionExists
from services.images.manifest import Manifest, ManifestError
from services.images.store import ImageStore
from services.images.wire import BadEncoding, decode_block

PREFIX = "/image-captures"
TOKEN_HEADER = "X-Agent-Token"
MAX_MANIFEST_BYTES = 64 * 1024 * 1024


class CaptureAuthority(Protocol):
    def target(self, node_uuid: str, token: str | None) -> CaptureTarget:
        """The node's capture, if ``token`` is its agent's (else Refused: 401, 403, 404, 409)."""

    def record(self, target: CaptureTarget, version_id: str, manifest: Manifest
               ) -> dict[str, Any]:
        """Add the version made to the catalogue; its document (Refused 409 if it cannot)."""

    def recorded(self, target: CaptureTarget) -> dict[str, Any] | None:
        """The catalogue's document of the version, if a commit already made it."""


def _text(status: int, message: str) -> Response:
    return PlainTextResponse(message + "\n", status_code=status)


def _status(error: StoreError) -> int:
    if isinstance(error, StoreFull):
        return 507
    if isinstance(error, ChecksumMismatch):
        return 422
    if isinstance(error, UnknownCapture | CaptureIncomplete | VersionExists):
        return 409
    return 400


async def _bounded_body(request: Request, limit: int) -> bytes | None:
    """The request's body, or None as soon as it exceeds ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def image_capture_routes(store: ImageStore, authority: CaptureAuthority) -> list[Route]:
    def guarded(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                target = await run_in_threadpool(authority.target,
                                                 request.path_params["node_uuid"],
                                                 request.headers.get(TOKEN_HEADER))
                return await handler(request, target)
            except Refused as exc:
                return _text(exc.status, str(exc))
            except StoreError as exc:
                return _text(_status(exc), str(exc))
        return endpoint

    async def begin(request: Request, target: CaptureTarget) -> Response:
        raw = await request.body()
        if len(raw) > MAX_MANIFEST_BYTES:
            return _text(413, "the manifest is too large")
        try:
            manifest = manifests.parse(raw)
        except ManifestError as exc:
            return _text(400, str(exc))
        if manifest.block_size != manifests.BLOCK_SIZE:
            return _text(400, f"captured blocks are {manifests.BLOCK_SIZE} bytes")
        missing = await run_in_threadpool(store.capture(target.session).begin, manifest)
        return JSONResponse({"missing": missing})

    async def missing(_: Request, target: CaptureTarget) -> Response:
        return JSONResponse({"missing": await run_in_threadpool(
            store.capture(target.session).missing)})

    async def block(request: Request, target: CaptureTarget) -> Response:
        body = await _bounded_body(request, manifests.BLOCK_SIZE)
        if body is None:
            return _text(413, f"a block has at most {manifests.BLOCK_SIZE} bytes")
        try:
            data = await run_in_threadpool(decode_block, body,
                                           request.headers.get("content-encoding"),
                                           manifests.BLOCK_SIZE)
        except BadEncoding as exc:
            return _text(exc.status, str(exc))
        await run_in_threadpool(store.capture(target.session).stage,
                                request.path_params["digest"], data)
        return Response(status_code=204)

    async def commit(_: Request, target: CaptureTarget) -> Response:
        return JSONResponse(await run_in_threadpool(_commit, target))

    def _commit(target: CaptureTarget) -> dict[str, Any]:
        version_id = str(uuid.uuid4())
        session = store.capture(target.session)
        try:
            manifest = session.commit(version_id, target.source())
        except UnknownCapture:
            done = authority.recorded(target)  # the answer to a commit that made it was lost
            if done is None:
                raise
            return {**done, "size": store.manifest(done["uuid"]).size}
        try:
            recorded = authority.record(target, version_id, manifest)
        except BaseException:
            store.delete_version(version_id)
            raise
        return {**recorded, "size": manifest.size}

    return [Route(PREFIX + "/{node_uuid}/manifest", guarded(begin), methods=["POST"]),
            Route(PREFIX + "/{node_uuid}/missing", guarded(missing), methods=["GET"]),
            Route(PREFIX + "/{node_uuid}/blocks/{digest}", guarded(block), methods=["PUT"]),
            Route(PREFIX + "/{node_uuid}/commit", guarded(commit), methods=["POST"])]


