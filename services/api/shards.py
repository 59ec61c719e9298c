"""/v1/shards (API 1.82): how many nodes each shard holds, as Ironic counts them."""

from __future__ import annotations

from typing import Any

from fastapi import Depends
from sqlalchemy import func, select

from services.api.deps import api_version, database
from services.api.routing import api_router
from services.api.versions import Version
from services.common.db import Database
from services.common.exceptions import NotFound
from services.common.models import Node

router = api_router(prefix="/v1/shards")

VERSION: Version = (1, 82)


@router.get("")
def list_shards(version: Version = Depends(api_version),
                db: Database = Depends(database)) -> dict[str, Any]:
    if version < VERSION:
        raise NotFound("The API version does not allow shards")
    with db.session() as session:
        rows = session.execute(select(func.count(Node.id), Node.shard).group_by(Node.shard))
        counted = sorted(rows, key=lambda row: row[0], reverse=True)
    # Ironic names the nodes without a shard "None" (its str() of the NULL).
    return {"shards": [{"name": str(shard), "count": count} for count, shard in counted]}
