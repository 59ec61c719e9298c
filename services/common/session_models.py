"""The session service's table: one row per deployed node that was given a session token.

The schema is created only by migration 0011 (services/common/migrations).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from services.common.models import Base


class SessionService(Base):
    """The session service of a node's deployed OS: its token (only the hash), when it was
    last heard of, and the command waiting for it or last delivered to it."""

    __tablename__ = "session_services"

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"),
                                         unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))  # sha256 hex of the deploy's token
    issued_at: Mapped[datetime] = mapped_column()
    last_seen_at: Mapped[datetime | None] = mapped_column()
    booted_at: Mapped[datetime | None] = mapped_column()  # the OS's boot time, as it reports
    command: Mapped[str | None] = mapped_column(String(32))  # waiting to be fetched
    command_at: Mapped[datetime | None] = mapped_column()
    delivered_command: Mapped[str | None] = mapped_column(String(32))
    delivered_at: Mapped[datetime | None] = mapped_column()
