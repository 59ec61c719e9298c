"""/enclume/v1/images/{image}/uploads: a version's bytes sent in resumable pieces (staff only).

1. ``POST …/uploads`` ``{version, size, checksum, disk_format?, image_type?, boot_mode?,
   kernel?, ramdisk?, filename?}`` → 201, the upload (``id``, ``offset`` 0); refused at once
   (507) when the store has no room for ``size`` bytes. Without ``disk_format`` the format is
   read from the image's header when it is ingested.
2. ``PATCH …/uploads/{id}`` with ``Upload-Offset: N`` (the bytes received so far) and the
   next bytes as the body, streamed to disk (not bounded by ENCLUME_MAX_REQUEST_BODY_BYTES);
   a cut request keeps what arrived. 409 when N is not the upload's offset.
3. ``GET …/uploads/{id}`` → the upload, its ``offset`` (where to resume).
4. ``POST …/uploads/{id}/commit`` → 201, the new version (``available``), once its sha256
   matched; any failure (a wrong checksum: 400) removes the upload and keeps nothing.
``DELETE …/uploads/{id}`` abandons one; ``enclume image gc`` removes idle ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Body, Depends, Header, Request, Response
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.types import Scope

from services.api.deps import database
from services.api.enclume.common import PREFIX, identity, link
from services.api.enclume.stores import store_errors, uploads
from services.api.enclume.views import version_document
from services.api.responses import rendered
from services.api.routing import api_router
from services.classroom import images
from services.classroom.access import require_staff
from services.classroom.image_versions import forget_in_store, set_state
from services.common import validation
from services.common.classroom_models import Image, ImageVersion
from services.common.db import Database
from services.common.exceptions import Conflict, Invalid, NotFound
from services.common.identity import Identity
from services.common.models import new_uuid
from services.images.uploads import Upload, Uploads

router = api_router(include_in_schema=False)
ACTION = "upload image versions"
UPLOAD_FIELDS = frozenset({"version", "size", "checksum", "disk_format", "image_type",
                           "boot_mode", "kernel", "ramdisk", "filename"})
WRITE_BYTES = 1024 * 1024  # received bytes are written to disk in pieces of this size
_BODY_ROUTE = re.compile(rf"^{PREFIX}/images/[^/]+/uploads/[0-9a-f]{{32}}$")


def is_upload_body(scope: Scope) -> bool:
    """The request streams an upload's bytes: exempt from the API's body size limit."""
    return scope.get("method") == "PATCH" and bool(_BODY_ROUTE.match(scope.get("path", "")))


def _document(request: Request, image: Image | _Named, upload: Upload) -> dict[str, Any]:
    return {"id": upload.id, "image": image.name, "version": upload.details["version"],
            "size": upload.size, "offset": upload.offset, "checksum": upload.sha256,
            "disk_format": upload.details.get("disk_format"), "created_by": upload.created_by,
            "created_at": _instant(upload.created_at), "updated_at": _instant(upload.updated_at),
            "links": link(request, f"images/{image.uuid}/uploads/{upload.id}")}


@dataclass(frozen=True)
class _Named:
    name: str
    uuid: str


def _instant(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def _upload_of(store_uploads: Uploads, image: Image | _Named, upload_id: str) -> Upload:
    with store_errors():
        upload = store_uploads.get(upload_id)
    if upload.details.get("image_uuid") != image.uuid:
        raise NotFound(f"Image {image.name} has no upload {upload_id}.")
    return upload


def _refuse_taken_version(image: Image, version: str) -> None:
    if any(v.version == version for v in image.versions):
        raise Conflict(f"Image {image.name} already has a version {version}.")


@dataclass(frozen=True)
class _Found:
    image: _Named
    image_id: int
    upload: Upload


def _find(db: Database, store_uploads: Uploads, ident: str, upload_id: str,
          unused_version: bool = False) -> _Found:
    """The image and its upload (404 if either is unknown); ``unused_version``: 409 when the
    image has meanwhile got a version of the upload's name."""
    with db.session() as session:
        image = images.find_image(session, ident)
        upload = _upload_of(store_uploads, image, upload_id)
        if unused_version:
            _refuse_taken_version(image, upload.details["version"])
        return _Found(_Named(image.name, image.uuid), image.id, upload)


@router.post(f"{PREFIX}/images/{{ident}}/uploads", status_code=201)
def start_upload(ident: str, request: Request, body: Any = Body(...),
                 caller: Identity = Depends(identity),
                 db: Database = Depends(database)) -> Response:
    require_staff(caller, ACTION)
    if not isinstance(body, dict):
        raise Invalid("An upload is a JSON object: {version, size, checksum, ...}.")
    unknown = sorted(set(body) - UPLOAD_FIELDS)
    if unknown:
        raise Invalid(f"Unknown field(s) for an upload: {', '.join(unknown)}.")
    size = body.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise Invalid(f"Invalid size {validation.shown(size)}: the image's size in bytes.")
    version_body = {k: v for k, v in body.items() if k not in ("size", "filename")}
    version_body["source"] = body.get("filename") or "upload"
    details = images.checked_version(version_body)
    if "disk_format" not in body:
        details["disk_format"] = None  # read from the image's header when it is ingested
    with db.session() as session:
        image = images.find_image(session, ident)
        _refuse_taken_version(image, details["version"])
        details["image_uuid"] = image.uuid
        with store_errors():
            upload = uploads(request).start(size, details["checksum"], details, caller.user)
        document = _document(request, image, upload)
    return rendered(document, 201, {"Location": document["links"][0]["href"]})


@router.get(f"{PREFIX}/images/{{ident}}/uploads/{{upload_id}}")
def show_upload(ident: str, upload_id: str, request: Request,
                caller: Identity = Depends(identity),
                db: Database = Depends(database)) -> dict[str, Any]:
    require_staff(caller, ACTION)
    found = _find(db, uploads(request), ident, upload_id)
    return _document(request, found.image, found.upload)


@router.patch(f"{PREFIX}/images/{{ident}}/uploads/{{upload_id}}")
async def send_bytes(ident: str, upload_id: str, request: Request,
                     upload_offset: int = Header(..., alias="Upload-Offset", ge=0),
                     caller: Identity = Depends(identity),
                     db: Database = Depends(database)) -> Response:
    require_staff(caller, ACTION)
    store_uploads = uploads(request)
    found = await run_in_threadpool(_find, db, store_uploads, ident, upload_id)
    with store_errors():
        length = request.headers.get("content-length", "")
        writer = await run_in_threadpool(store_uploads.writer, upload_id, upload_offset,
                                         int(length) if length.isdigit() else None)
        pending = bytearray()
        try:
            try:
                async for chunk in request.stream():
                    pending += chunk
                    if len(pending) >= WRITE_BYTES:
                        await run_in_threadpool(writer.write, bytes(pending))
                        pending.clear()
            except ClientDisconnect:
                pass  # what arrived is kept: the client resumes from the offset
            await run_in_threadpool(writer.write, bytes(pending))
        finally:
            await run_in_threadpool(writer.close)
        upload = await run_in_threadpool(store_uploads.get, upload_id)
    return rendered(_document(request, found.image, upload), 200,
                    {"Upload-Offset": str(upload.offset)})


@router.post(f"{PREFIX}/images/{{ident}}/uploads/{{upload_id}}/commit", status_code=201)
def commit_upload(ident: str, upload_id: str, request: Request,
                  caller: Identity = Depends(identity),
                  db: Database = Depends(database)) -> Response:
    require_staff(caller, ACTION)
    store_uploads = uploads(request)
    found = _find(db, store_uploads, ident, upload_id, unused_version=True)
    upload = found.upload
    version_uuid = new_uuid()
    with store_errors():
        store_uploads.commit(upload_id, version_uuid)
    columns = {k: v for k, v in upload.details.items() if k != "image_uuid"}
    columns["disk_format"] = store_uploads.store.source(version_uuid)["disk_format"]
    try:
        with db.session() as session:
            version = ImageVersion(uuid=version_uuid, image_id=found.image_id, **columns)
            set_state(version, "available")
            session.add(version)
            session.flush()
            document = version_document(version, store_uploads.store)
    except IntegrityError:
        forget_in_store(store_uploads.store, version_uuid)
        raise Conflict(f"Image {ident} already has a version "
                       f"{upload.details['version']}.") from None
    return rendered(document, 201)


@router.delete(f"{PREFIX}/images/{{ident}}/uploads/{{upload_id}}", status_code=204)
def abandon_upload(ident: str, upload_id: str, request: Request,
                   caller: Identity = Depends(identity),
                   db: Database = Depends(database)) -> Response:
    require_staff(caller, ACTION)
    store_uploads = uploads(request)
    _find(db, store_uploads, ident, upload_id)
    with store_errors():
        store_uploads.abort(upload_id)
    return Response(status_code=204)
