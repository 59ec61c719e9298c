"""GET /enclume/v1/: the resources of Enclume's own API."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from services.api.enclume.common import PREFIX, identity, link
from services.api.routing import api_router
from services.common.identity import Identity

router = api_router(include_in_schema=False)  # not Ironic: kept out of its OpenAPI document
RESOURCES = ("images", "image-store", "rooms", "sessions", "occurrences", "jobs",
             "student-states")


@router.get(PREFIX)
@router.get(f"{PREFIX}/")
def enclume_root(request: Request, _caller: Identity = Depends(identity)) -> dict[str, Any]:
    return {"id": "enclume-v1", "status": "CURRENT",
            "description": "Enclume's classroom API: images, the image store, rooms, sessions, "
                           "occurrences, jobs, students' states. Documented in "
                           "docs/classroom-api.md.",
            "links": link(request, ""),
            **{name: link(request, name) for name in RESOURCES}}
