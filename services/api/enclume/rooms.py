"""/enclume/v1/rooms: rooms, their PCs and teachers. Teachers see their rooms only (others are
404); admins and operators create, change and delete rooms."""

from __future__ import annotations

from typing import Any

from fastapi import Body, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from services.api.deps import database
from services.api.enclume.common import PREFIX, identity, lead_policy, listing, now
from services.api.enclume.views import ROOM_FIELDS, room_document
from services.api.responses import rendered
from services.api.routing import api_router
from services.classroom import rooms
from services.classroom.access import find_room, require_staff, visible_rooms
from services.classroom.fields import known_keys
from services.classroom.plans import room_plan
from services.common.classroom_models import Room, RoomImage, RoomPC
from services.common.db import Database
from services.common.identity import Identity

router = api_router(include_in_schema=False)  # not Ironic: kept out of its OpenAPI document


def _list_of(body: Any, key: str) -> Any:
    return known_keys(f"{key} request", body, frozenset({key})).get(key, [])


@router.get(f"{PREFIX}/rooms")
def list_rooms(request: Request, caller: Identity = Depends(identity),
               db: Database = Depends(database)) -> dict[str, Any]:
    with db.session() as session:
        statement = visible_rooms(select(Room), caller).options(
            selectinload(Room.pcs).joinedload(RoomPC.node), selectinload(Room.teachers),
            selectinload(Room.allowed_images).joinedload(RoomImage.image),
            joinedload(Room.default_image))
        return listing(request, session, statement, Room, "rooms",
                       "rooms", ROOM_FIELDS, {"name", "created_at", "updated_at"},
                       lambda room: room_document(request, room))


@router.get(f"{PREFIX}/rooms/{{ident}}")
def show_room(ident: str, request: Request, caller: Identity = Depends(identity),
              db: Database = Depends(database)) -> dict[str, Any]:
    with db.session() as session:
        room = find_room(session, caller, ident)
        return room_document(request, room, room_plan(session, room, now(),
                                                       lead_policy(request)))


@router.post(f"{PREFIX}/rooms", status_code=201)
def create_room(request: Request, body: Any = Body(...), caller: Identity = Depends(identity),
                db: Database = Depends(database)) -> Response:
    require_staff(caller, "create rooms")
    with db.session() as session:
        document = room_document(request, rooms.create_room(session, body))
    return rendered(document, 201, {"Location": document["links"][0]["href"]})


@router.patch(f"{PREFIX}/rooms/{{ident}}")
def update_room(ident: str, request: Request, body: Any = Body(...),
                caller: Identity = Depends(identity),
                db: Database = Depends(database)) -> dict[str, Any]:
    with db.session() as session:
        room = find_room(session, caller, ident)
        return room_document(request, rooms.update_room(session, caller, room, body))


@router.delete(f"{PREFIX}/rooms/{{ident}}", status_code=204)
def delete_room(ident: str, caller: Identity = Depends(identity),
                db: Database = Depends(database)) -> Response:
    with db.session() as session:
        room = find_room(session, caller, ident)
        require_staff(caller, "delete rooms")
        session.delete(room)
    return Response(status_code=204)


@router.post(f"{PREFIX}/rooms/{{ident}}/pcs")
def add_pcs(ident: str, request: Request, body: Any = Body(...),
            caller: Identity = Depends(identity),
            db: Database = Depends(database)) -> dict[str, Any]:
    with db.session() as session:
        room = find_room(session, caller, ident)
        require_staff(caller, "change a room's PCs")
        rooms.add_pcs(session, room, _list_of(body, "pcs"))
        return room_document(request, room)


@router.delete(f"{PREFIX}/rooms/{{ident}}/pcs/{{pc}}", status_code=204)
def remove_pc(ident: str, pc: str, caller: Identity = Depends(identity),
              db: Database = Depends(database)) -> Response:
    with db.session() as session:
        room = find_room(session, caller, ident)
        require_staff(caller, "change a room's PCs")
        rooms.remove_pc(session, room, pc)
    return Response(status_code=204)


@router.post(f"{PREFIX}/rooms/{{ident}}/teachers")
def add_teachers(ident: str, request: Request, body: Any = Body(...),
                 caller: Identity = Depends(identity),
                 db: Database = Depends(database)) -> dict[str, Any]:
    with db.session() as session:
        room = find_room(session, caller, ident)
        require_staff(caller, "change a room's teachers")
        rooms.add_teachers(session, room, _list_of(body, "teachers"))
        return room_document(request, room)


@router.delete(f"{PREFIX}/rooms/{{ident}}/teachers/{{user}}", status_code=204)
def remove_teacher(ident: str, user: str, caller: Identity = Depends(identity),
                   db: Database = Depends(database)) -> Response:
    with db.session() as session:
        room = find_room(session, caller, ident)
        require_staff(caller, "change a room's teachers")
        rooms.remove_teacher(session, room, user)
    return Response(status_code=204)
