"""What the conductor caches of a node's components: its BIOS settings and firmware versions
(Ironic's bios_settings and firmware_information), of services/common/models.py's schema (it
imports this module and names these classes too)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from services.common.models import Base, TimestampMixin


class BiosSetting(TimestampMixin, Base):
    """A BIOS setting as the node's bios interface last read it, with its attribute registry
    entry where the BMC gives one (Ironic's bios_settings, API 1.40 and 1.74)."""

    __tablename__ = "bios_settings"
    __table_args__ = (UniqueConstraint("node_id", "name", name="uniq_bios_settings_node_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    value: Mapped[str | None] = mapped_column(Text)
    attribute_type: Mapped[str | None] = mapped_column(String(255))
    allowable_values: Mapped[list[Any] | None] = mapped_column(JSON)
    lower_bound: Mapped[int | None] = mapped_column(BigInteger)
    max_length: Mapped[int | None] = mapped_column(Integer)
    min_length: Mapped[int | None] = mapped_column(Integer)
    read_only: Mapped[bool | None] = mapped_column(Boolean)
    reset_required: Mapped[bool | None] = mapped_column(Boolean)
    unique: Mapped[bool | None] = mapped_column(Boolean)
    upper_bound: Mapped[int | None] = mapped_column(BigInteger)


FIRMWARE_IDENTITY_FIELDS = ("vendor", "model", "serial_number")  # API 1.114


class FirmwareComponent(TimestampMixin, Base):
    """A firmware component's versions as the node's firmware interface read them (Ironic's
    firmware_information, API 1.86)."""

    __tablename__ = "firmware_information"
    __table_args__ = (UniqueConstraint("node_id", "component",
                                       name="uniq_firmware_node_component"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    component: Mapped[str] = mapped_column(String(255))
    initial_version: Mapped[str | None] = mapped_column(String(255))
    current_version: Mapped[str | None] = mapped_column(String(255))
    last_version_flashed: Mapped[str | None] = mapped_column(String(255))
    # API 1.114: who made it, what it is.
    vendor: Mapped[str | None] = mapped_column(String(255))
    model: Mapped[str | None] = mapped_column(String(255))
    serial_number: Mapped[str | None] = mapped_column(String(255))
