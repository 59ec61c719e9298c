"""/enclume/v1/images: the image catalogue. Everyone of the classroom may read it; admins and
operators change it."""

from __future__ import annotations

from typing import Any

from fastapi import Body, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from services.api.deps import database
from services.api.enclume.common import PREFIX, identity, listing
from services.api.enclume.views import IMAGE_FIELDS, image_document, version_document
from services.api.responses import rendered
from services.api.routing import api_router
from services.classroom import images
from services.classroom.access import require_staff
from services.common.classroom_models import Image
from services.common.db import Database
from services.common.exceptions import Conflict, NotFound
from services.common.identity import Identity

router = api_router(include_in_schema=False)  # not Ironic: kept out of its OpenAPI document


@router.get(f"{PREFIX}/images")
def list_images(request: Request, _caller: Identity = Depends(identity),
                db: Database = Depends(database)) -> dict[str, Any]:
    with db.session() as session:
        return listing(request, session, select(Image), Image, "images", "images",
                       IMAGE_FIELDS, {"name", "created_at"},
                       lambda image: image_document(request, image))


@router.get(f"{PREFIX}/images/{{ident}}")
def show_image(ident: str, request: Request, _caller: Identity = Depends(identity),
               db: Database = Depends(database)) -> dict[str, Any]:
    with db.session() as session:
        return image_document(request, images.find_image(session, ident))


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
def add_version(ident: str, body: Any = Body(...), caller: Identity = Depends(identity),
                db: Database = Depends(database)) -> Response:
    require_staff(caller, "change the image catalogue")
    with db.session() as session:
        version = images.add_version(session, images.find_image(session, ident), body)
        return rendered(version_document(version), 201)


@router.delete(f"{PREFIX}/images/{{ident}}", status_code=204)
def delete_image(ident: str, caller: Identity = Depends(identity),
                 db: Database = Depends(database)) -> Response:
    require_staff(caller, "change the image catalogue")
    try:
        with db.session() as session:
            session.delete(images.find_image(session, ident))
    except IntegrityError:
        raise Conflict(f"Image {ident} is used by sessions; delete them first.") from None
    return Response(status_code=204)


@router.delete(f"{PREFIX}/images/{{ident}}/versions/{{version}}", status_code=204)
def delete_version(ident: str, version: str, caller: Identity = Depends(identity),
                   db: Database = Depends(database)) -> Response:
    require_staff(caller, "change the image catalogue")
    try:
        with db.session() as session:
            image = images.find_image(session, ident)
            found = [v for v in image.versions if v.version == version]
            if not found:
                raise NotFound(f"Image {image.name} has no version {version}.")
            session.delete(found[0])
    except IntegrityError:
        raise Conflict(f"Version {version} of image {ident} is used by sessions.") from None
    return Response(status_code=204)
