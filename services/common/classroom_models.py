"""The classroom tables: images, rooms, sessions, their occurrences and room jobs.

Times: a session's ``starts_at``/``ends_at`` are wall-clock times (naive) in its room's time
zone, so that a weekly 14:00 class stays at 14:00 across daylight-saving changes. Occurrences
and jobs hold instants (UTC). The schema is created by migration 0007 and changed by later
ones (services/common/migrations).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.common.models import Base, Node, TimestampMixin, new_uuid, utcnow


class Image(TimestampMixin, Base):
    __tablename__ = "images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(Text)

    versions: Mapped[list[ImageVersion]] = relationship(
        back_populates="image", passive_deletes=True, order_by="ImageVersion.id")


class ImageVersion(Base):
    __tablename__ = "image_versions"
    __table_args__ = (UniqueConstraint("image_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"),
                                          index=True)
    version: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(2048))  # a URL, or a file name in the store
    checksum: Mapped[str] = mapped_column(String(64))  # sha256, lower-case hex
    disk_format: Mapped[str] = mapped_column(String(16))  # raw | qcow2
    image_type: Mapped[str] = mapped_column(String(16))  # whole-disk | partition
    kernel: Mapped[str | None] = mapped_column(String(2048))  # partition images only
    ramdisk: Mapped[str | None] = mapped_column(String(2048))
    boot_mode: Mapped[str] = mapped_column(String(8))  # bios | uefi
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # external (a catalogue entry only: deployed from ``source``) | ingesting | available (in
    # the image store, under ``uuid``) | failed (``reason`` says why); docs/images.md
    state: Mapped[str] = mapped_column(String(16), default="external",
                                       server_default="external")
    reason: Mapped[str | None] = mapped_column(Text)
    state_changed_at: Mapped[datetime | None] = mapped_column()

    image: Mapped[Image] = relationship(back_populates="versions")


class Room(TimestampMixin, Base):
    __tablename__ = "rooms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    time_zone: Mapped[str] = mapped_column(String(64))  # IANA, e.g. Europe/Paris
    idle_vlan: Mapped[int | None] = mapped_column(Integer)
    class_vlan: Mapped[int | None] = mapped_column(Integer)
    # The PCs' IPv4 subnet (CIDR) and the directed broadcast address magic packets go to
    # (default: the subnet's broadcast); migration 0010.
    subnet: Mapped[str | None] = mapped_column(String(18))
    wol_broadcast: Mapped[str | None] = mapped_column(String(15))
    # How a room restore sends the image: "unicast" (HTTP to each PC) or "multicast" (one
    # uftp session, HTTP repair); migration 0012.
    transfer: Mapped[str] = mapped_column(String(16), default="unicast",
                                          server_default="unicast")
    # The web page's grid: the PCs, in the room's order, fill these rows and columns row by
    # row (both None: as many columns as fit); migration 0014.
    layout_rows: Mapped[int | None] = mapped_column(Integer)
    layout_columns: Mapped[int | None] = mapped_column(Integer)
    # Logins at the PCs' boot prompt and its language; None: ENCLUME_PC_LOGIN_AT_BOOT and
    # ENCLUME_PC_LOGIN_LANGUAGE decide (migration 0018).
    pc_logins: Mapped[bool | None] = mapped_column(Boolean)
    login_language: Mapped[str | None] = mapped_column(String(8))
    default_image_id: Mapped[int | None] = mapped_column(
        ForeignKey("images.id", ondelete="SET NULL"))

    pcs: Mapped[list[RoomPC]] = relationship(passive_deletes=True, order_by="RoomPC.id")
    teachers: Mapped[list[RoomTeacher]] = relationship(passive_deletes=True,
                                                       order_by="RoomTeacher.user_name")
    allowed_images: Mapped[list[RoomImage]] = relationship(passive_deletes=True,
                                                           order_by="RoomImage.id")
    default_image: Mapped[Image | None] = relationship()


class RoomPC(Base):
    """A PC (a node) of a room; ``node_id`` is unique: a PC is in at most one room."""

    __tablename__ = "room_pcs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"),
                                         index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"),
                                         unique=True)

    node: Mapped[Node] = relationship()


class RoomTeacher(Base):
    __tablename__ = "room_teachers"
    __table_args__ = (UniqueConstraint("room_id", "user_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    user_name: Mapped[str] = mapped_column(String(255), index=True)


class RoomImage(Base):
    """An image allowed in a room (every version of it)."""

    __tablename__ = "room_images"
    __table_args__ = (UniqueConstraint("room_id", "image_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"),
                                          index=True)

    image: Mapped[Image] = relationship()


class ClassSession(TimestampMixin, Base):
    """One class in one room: once, weekly (an RRULE), or the events of an iCalendar file."""

    __tablename__ = "class_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    name: Mapped[str | None] = mapped_column(String(255))
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"),
                                         index=True)
    image_version_id: Mapped[int] = mapped_column(
        ForeignKey("image_versions.id", ondelete="RESTRICT"), index=True)
    recurrence: Mapped[str] = mapped_column(String(16))  # once | weekly | ical
    # Wall-clock times in the room's zone (naive): of the only or first occurrence.
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    rrule: Mapped[str | None] = mapped_column(Text)  # weekly: RRULE with UNTIL or COUNT
    calendar: Mapped[str | None] = mapped_column(Text)  # ical: the iCalendar text
    before: Mapped[str] = mapped_column(String(16))  # restore-full | restore-delta | none
    after: Mapped[str] = mapped_column(String(16))  # restore | power-off | nothing
    created_by: Mapped[str | None] = mapped_column(String(255))
    # Occurrences exist up to this instant (UTC); later ones are created as time goes on.
    expanded_until: Mapped[datetime | None] = mapped_column()

    room: Mapped[Room] = relationship()
    image_version: Mapped[ImageVersion] = relationship()


class Occurrence(Base):
    """One planned run of a session, claimed by the timetable runner with a conditional
    UPDATE (``state='planned'`` → ``'claimed'``), so that it runs once across the cluster."""

    __tablename__ = "occurrences"
    __table_args__ = (
        UniqueConstraint("session_id", "planned_start"),
        Index("ix_occurrences_state_planned_start", "state", "planned_start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("class_sessions.id", ondelete="CASCADE"))
    planned_start: Mapped[datetime] = mapped_column()
    planned_end: Mapped[datetime] = mapped_column()
    # planned | claimed | running | done | missed | cancelled
    state: Mapped[str] = mapped_column(String(16), default="planned")
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claimed_at: Mapped[datetime | None] = mapped_column()
    # Why it was missed, or why its job or "after" action was skipped (migration 0010).
    reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime | None] = mapped_column(default=None, onupdate=utcnow)

    session: Mapped[ClassSession] = relationship()


class Job(TimestampMixin, Base):
    """One room action (wake, restore, power-off) and its per-PC rows."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"),
                                         index=True)
    kind: Mapped[str] = mapped_column(String(16))  # wake | restore | power-off
    requested_by: Mapped[str | None] = mapped_column(String(255))
    occurrence_id: Mapped[int | None] = mapped_column(
        ForeignKey("occurrences.id", ondelete="SET NULL"), index=True)
    image_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("image_versions.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    # When it first ended (done, failed-partly, failed); a PC retried later does not move it.
    finished_at: Mapped[datetime | None] = mapped_column()

    room: Mapped[Room] = relationship()
    occurrence: Mapped[Occurrence | None] = relationship()
    image_version: Mapped[ImageVersion | None] = relationship()
    pcs: Mapped[list[JobPC]] = relationship(passive_deletes=True, order_by="JobPC.id")


class JobPC(Base):
    __tablename__ = "job_pcs"
    __table_args__ = (UniqueConstraint("job_id", "node_uuid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    node_uuid: Mapped[str] = mapped_column(String(36))
    step: Mapped[str | None] = mapped_column(String(64))
    percent: Mapped[int | None] = mapped_column(Integer)
    bytes_done: Mapped[int | None] = mapped_column(BigInteger)
    bytes_total: Mapped[int | None] = mapped_column(BigInteger)
    outcome: Mapped[str | None] = mapped_column(String(16))  # succeeded | failed | skipped
    # restores: delta | full | delta+full (a delta that fell back) | download (not by blocks)
    restore_mode: Mapped[str | None] = mapped_column(String(16))
    fetched_bytes: Mapped[int | None] = mapped_column(BigInteger)  # what the agent fetched
    image_bytes: Mapped[int | None] = mapped_column(BigInteger)  # the image's (raw) size
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime | None] = mapped_column(default=None, onupdate=utcnow)
