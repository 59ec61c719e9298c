"""/enclume/v1/images: the image catalogue. Admins and operators read and change it; a teacher
reads the images allowed in their rooms. Uploads: image_uploads.py; the store: image_store.py."""

from __future__ import annotations

from typing import Any

from fastapi import Body, Depends, Request, Response
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError

from services.api.deps import database
from services.api.enclume.common import PREFIX, identity, listing
from services.api.enclume.stores import image_store
from services.api.enclume.views import IMAGE_FIELDS, image_document, version_document
from services.api.responses import rendered
from services.api.routing import api_router
from services.classroom import images
from services.classroom.access import require_staff, room_visible_to
from services.classroom.image_fetch import start_fetch
from services.classroom.image_versions import (
    find_image_version,
    forget_in_store,
    refuse_if_used,
    set_state,
)
from services.common.classroom_models import Image, Room, RoomImage
from services.common.db import Database
from services.common.exceptions import Conflict, Invalid, NotFound
from services.common.identity import Identity
from services.common.lookups import by_uuid_or_name
from services.common.validation import shown

router = api_router(include_in_schema=False)  # not Ironic: kept out of its OpenAPI document
FETCHED_SCHEMES = ("http://", "https://", "file://")


def _visible(statement: Select[Any], caller: Identity) -> Select[Any]:
    """Staff see every image; a teacher the images allowed in a room they may see."""
    if caller.is_staff:
        return statement
    allowed = select(RoomImage.image_id).join(Room, Room.id == RoomImage.room_id).where(
        room_visible_to(caller))
    return statement.where(Image.id.in_(allowed))


@router.get(f"{PREFIX}/images")
def list_images(request: Request, caller: Identity = Depends(identity),
                db: Database = Depends(database)) -> dict[str, Any]:
    with db.session() as session:
        return listing(request, session, _visible(select(Image), caller), Image, "images",
                       "images", IMAGE_FIELDS, {"name", "created_at"},
                       lambda image: image_document(request, image))


@router.get(f"{PREFIX}/images/{{ident}}")
def show_image(ident: str, request: Request, caller: Identity = Depends(identity),
               db: Database = Depends(database)) -> dict[str, Any]:
    with db.session() as session:
        image = session.scalar(_visible(select(Image).where(by_uuid_or_name(Image, ident)),
                                        caller))
        if image is None:
            raise NotFound(f"Image {ident} could not be found.")
        return image_document(request, image)


@router.post(f"{PREFIX}/images", status_code=201)
def create_image(request: Request, body: Any = Body(...), caller: Identity = Depends(identity),
                 db: Database = Depends(database)) -> Response:
    require_staff(caller, "change the image catalogue")
    with db.session() as session:
        image = images.create_image(session, body)
        document = image_document(request, image)
    return rendered(document, 201, {"Location": document["links"][0]["href"]})


@router.patch(f"{PREFIX}/images/{{ident}}")
def update_image(ident: str, request: Request, body: Any = Body(...),
                 caller: Identity = Depends(identity),
                 db: Database = Depends(database)) -> dict[str, Any]:
    require_staff(caller, "change the image catalogue")
    with db.session() as session:
        image = images.update_image(session, images.find_image(session, ident), body)
        return image_document(request, image)


@router.post(f"{PREFIX}/images/{{ident}}/versions", status_code=201)
def add_version(ident: str, request: Request, body: Any = Body(...),
                caller: Identity = Depends(identity),
                db: Database = Depends(database)) -> Response:
    """With ``"fetch": true`` the source URL is ingested into the store in the background."""
    require_staff(caller, "change the image catalogue")
    fetch = body.pop("fetch", False) if isinstance(body, dict) else False
    if not isinstance(fetch, bool):
        raise Invalid(f"Invalid fetch {shown(fetch)}: true or false.")
    if fetch and not str(body.get("source", "")).lower().startswith(FETCHED_SCHEMES):
        raise Invalid("Only an http, https or file URL source can be fetched into the store.")
    with db.session() as session:
        version = images.add_version(session, images.find_image(session, ident), body)
        if fetch:
            set_state(version, "ingesting")
        document, version_uuid = version_document(version), version.uuid
    if fetch:
        start_fetch(db, image_store(request), version_uuid)
    return rendered(document, 201)


@router.delete(f"{PREFIX}/images/{{ident}}", status_code=204)
def delete_image(ident: str, request: Request, caller: Identity = Depends(identity),
                 db: Database = Depends(database)) -> Response:
    require_staff(caller, "change the image catalogue")
    try:
        with db.session() as session:
            image = images.find_image(session, ident)
            stored = [v.uuid for v in image.versions if v.state != "external"]
            session.delete(image)
    except IntegrityError:
        raise Conflict(f"Image {ident} is used by sessions; delete them first.") from None
    for version_uuid in stored:
        forget_in_store(image_store(request), version_uuid)
    return Response(status_code=204)


@router.delete(f"{PREFIX}/images/{{ident}}/versions/{{version}}", status_code=204)
def delete_version(ident: str, version: str, request: Request,
                   caller: Identity = Depends(identity),
                   db: Database = Depends(database)) -> Response:
    """409 while a room restores it by default or a session uses it; its blocks are freed by
    the next garbage collection."""
    require_staff(caller, "change the image catalogue")
    try:
        with db.session() as session:
            found = find_image_version(images.find_image(session, ident), version)
            refuse_if_used(session, found)
            stored = found.uuid if found.state != "external" else None
            session.delete(found)
    except IntegrityError:
        raise Conflict(f"Version {version} of image {ident} is used by sessions.") from None
    if stored is not None:
        forget_in_store(image_store(request), stored)
    return Response(status_code=204)
