"""Students' states past their retention (ENCLUME_STUDENT_STATES_RETENTION_DAYS unused, not
pinned) are removed: their rows, then their manifests in the image store (the blocks no other
state or version shares go at the store's next garbage collection). Every conductor runs it:
removing what is already gone is a no-op."""

from __future__ import annotations

import logging
from datetime import datetime

from services.classroom.image_versions import forget_in_store
from services.classroom.student_states import expire_states
from services.common.config import Settings
from services.common.db import Database
from services.images.store import ImageStore

LOG = logging.getLogger(__name__)
PERIOD_S = 3600.0


def remove_expired_states(db: Database, settings: Settings, now: datetime) -> int:
    with db.session() as session:
        store_ids = expire_states(session, settings.student_states.retention_days, now)
    if store_ids:
        store = ImageStore(settings.effective_image_store_dir, settings.images.store_max_bytes)
        for store_id in store_ids:
            forget_in_store(store, store_id)
        LOG.info("removed %d student state(s) unused for %s days", len(store_ids),
                 settings.student_states.retention_days)
    return len(store_ids)
