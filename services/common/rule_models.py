"""Runbooks and inspection rules (Ironic's, API 1.92 and 1.96): rows the API writes, of
services/common/models.py's schema (it imports this module)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.common.models import Base, TimestampMixin, new_uuid


class Runbook(TimestampMixin, Base):
    """Ironic's runbook (API 1.92): named clean steps a node whose traits hold its name (from
    1.112: one of the runbook's traits) may run; the API writes them."""

    __tablename__ = "runbooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    steps: Mapped[list[Any]] = mapped_column(default=list)
    disable_ramdisk: Mapped[bool] = mapped_column(Boolean, default=False)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    owner: Mapped[str | None] = mapped_column(String(255))
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # API 1.112: a node with one of these traits may run the runbook; a description.
    description: Mapped[str | None] = mapped_column(String(255))
    traits: Mapped[list[Any]] = mapped_column(default=list)


class InspectionRule(TimestampMixin, Base):
    """Ironic's inspection rule (API 1.96): conditions on what inspection found and actions
    on the node; the API writes them."""

    __tablename__ = "inspection_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    description: Mapped[str | None] = mapped_column(String(255))
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    phase: Mapped[str] = mapped_column(String(16), default="main", index=True)
    conditions: Mapped[list[Any]] = mapped_column(default=list)
    actions: Mapped[list[Any]] = mapped_column(default=list)
