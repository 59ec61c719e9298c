"""Read-only pages: the image catalogue (every classroom user, as the JSON API's images) and,
for admins and operators, the users and roles of the identity source."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from services.api.routing import api_router
from services.api.ui.web import PREFIX, PageNotFound, Visitor, database, render, ui_of, visitor
from services.common.classroom_models import Image
from services.common.db import Database

router = api_router(include_in_schema=False)


@router.get(f"{PREFIX}/images")
def images_page(request: Request, who: Visitor = Depends(visitor),
                db: Database = Depends(database)) -> Response:
    with db.session() as session:
        images = session.scalars(select(Image).options(selectinload(Image.versions))
                                 .order_by(Image.name))
        listed = [{"name": image.name, "description": image.description,
                   "versions": [{"version": v.version, "disk_format": v.disk_format,
                                 "image_type": v.image_type, "boot_mode": v.boot_mode,
                                 "created_at": v.created_at.strftime("%Y-%m-%d")}
                                for v in reversed(image.versions)]} for image in images]
    return render(request, "images.html", session=who.session, identity=who.identity,
                  images=listed)


@router.get(f"{PREFIX}/users")
def users_page(request: Request, who: Visitor = Depends(visitor)) -> Response:
    if not who.identity.is_staff:
        raise PageNotFound()  # as a room that is not theirs: teachers do not see this page
    source = ui_of(request).source
    users = [{"name": u.user, "roles": sorted(u.roles), "rooms": sorted(u.rooms)}
             for u in (source.users() if source is not None else [])]
    return render(request, "users.html", session=who.session, identity=who.identity,
                  users=users)
