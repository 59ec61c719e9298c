"""Students' saved states: a student's changes to one image version (issue #20).

A state's blocks and manifest live in the image store under ``store_id``, as captured image
versions do (services/images/capture.py); a row appears only once its capture is complete, so
a capture cut short leaves the student's previous states as they were. The schema is created by
migration 0012 (services/common/migrations).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.common.models import Base, new_uuid, utcnow

if TYPE_CHECKING:  # imported by services.common.models, as classroom_models is
    from services.common.classroom_models import ImageVersion, Room


class StudentState(Base):
    __tablename__ = "student_states"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    owner: Mapped[str] = mapped_column(String(255), index=True)  # the student's user name
    image_version_id: Mapped[int] = mapped_column(
        ForeignKey("image_versions.id", ondelete="CASCADE"), index=True)
    # The room it was saved in: that room's teachers may list, pin and delete it.
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"),
                                                index=True)
    label: Mapped[str] = mapped_column(String(255))
    store_id: Mapped[str] = mapped_column(String(64))  # its manifest in the image store
    size_bytes: Mapped[int] = mapped_column(BigInteger)  # the blocks that differ
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(default=utcnow)

    image_version: Mapped[ImageVersion] = relationship()
    room: Mapped[Room | None] = relationship()
