"""/enclume/v1/image-store: the store's usage, and its garbage collection (staff only).

``POST /enclume/v1/image-store/gc`` removes blocks no version uses, temp areas of dead ingests,
uploads idle for longer than ENCLUME_IMAGE_UPLOAD_TIMEOUT_S, and marks fetches that died with
their process failed; it answers what was freed and the usage after it.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from services.api.deps import database
from services.api.enclume.common import PREFIX, identity
from services.api.enclume.stores import image_store, store_errors, uploads
from services.api.routing import api_router
from services.classroom.access import require_staff
from services.classroom.image_fetch import fail_stale_fetches
from services.common.db import Database
from services.common.identity import Identity
from services.images.store import ImageStore

router = api_router(include_in_schema=False)


def _usage(store: ImageStore, pending_upload_bytes: int) -> dict[str, Any]:
    usage = store.usage()
    return {"used_bytes": usage.used_bytes, "max_bytes": usage.max_bytes,
            "blocks": usage.blocks, "versions": usage.versions,
            "upload_bytes": pending_upload_bytes}


@router.get(f"{PREFIX}/image-store")
def show_usage(request: Request, caller: Identity = Depends(identity)) -> dict[str, Any]:
    require_staff(caller, "read the image store's usage")
    return _usage(image_store(request), uploads(request).pending_bytes())


@router.post(f"{PREFIX}/image-store/gc")
def collect_garbage(request: Request, caller: Identity = Depends(identity),
                    db: Database = Depends(database)) -> dict[str, Any]:
    require_staff(caller, "collect the image store's garbage")
    store, store_uploads = image_store(request), uploads(request)
    with store_errors():
        removed_uploads = store_uploads.collect()
        collected = store.gc()
    failed = fail_stale_fetches(db, request.app.state.settings.image_upload_timeout_s)
    return {"freed_bytes": collected.bytes, "removed_blocks": collected.blocks,
            "removed_ingests": collected.stale_ingests, "removed_uploads": removed_uploads,
            "failed_fetches": failed,
            "usage": _usage(store, store_uploads.pending_bytes())}
