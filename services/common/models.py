"""The data model. The schema itself is created and changed only by the alembic migrations."""

from __future__ import annotations

import uuid as uuidlib
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.common.ring import ring_hash
from services.common.states import ProvisionState


def utcnow() -> datetime:
    return datetime.now(UTC)


@compiles(DateTime, "mysql")
def _datetime_with_microseconds(_type: DateTime, _compiler: Any, **_kw: Any) -> str:
    """MariaDB's DATETIME keeps whole seconds: leases, heartbeats and change detection need
    microseconds, as PostgreSQL and SQLite keep them (the mariadb_datetime_precision
    migration converts older columns)."""
    return "DATETIME(6)"


def new_uuid() -> str:
    return str(uuidlib.uuid4())


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(default=None, onupdate=utcnow)


class Node(TimestampMixin, Base):
    __tablename__ = "nodes"
    __table_args__ = (
        Index("ix_nodes_group_ring_hash", "conductor_group", "ring_hash"),
        # The boot service's change detection reads max(updated_at) twice a second.
        Index("ix_nodes_updated_at", "updated_at"),
    )

    def __init__(self, **values: Any) -> None:
        values.setdefault("uuid", new_uuid())
        super().__init__(**values)
        self.ring_hash = ring_hash(self.uuid)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    # Where the node sits on the conductors' hash ring (services/common/ring.py).
    ring_hash: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str | None] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    driver: Mapped[str] = mapped_column(String(255))

    bios_interface: Mapped[str | None] = mapped_column(String(255))
    boot_interface: Mapped[str | None] = mapped_column(String(255))
    console_interface: Mapped[str | None] = mapped_column(String(255))
    deploy_interface: Mapped[str | None] = mapped_column(String(255))
    firmware_interface: Mapped[str | None] = mapped_column(String(255))
    inspect_interface: Mapped[str | None] = mapped_column(String(255))
    management_interface: Mapped[str | None] = mapped_column(String(255))
    network_interface: Mapped[str | None] = mapped_column(String(255))
    power_interface: Mapped[str | None] = mapped_column(String(255))
    raid_interface: Mapped[str | None] = mapped_column(String(255))
    rescue_interface: Mapped[str | None] = mapped_column(String(255))
    storage_interface: Mapped[str | None] = mapped_column(String(255))
    vendor_interface: Mapped[str | None] = mapped_column(String(255))

    driver_info: Mapped[dict[str, Any]] = mapped_column(default=dict)
    driver_internal_info: Mapped[dict[str, Any]] = mapped_column(default=dict)
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    instance_info: Mapped[dict[str, Any]] = mapped_column(default=dict)
    instance_uuid: Mapped[str | None] = mapped_column(String(36), unique=True)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    traits: Mapped[list[Any]] = mapped_column(default=list)

    provision_state: Mapped[str] = mapped_column(
        String(32), default=ProvisionState.ENROLL.value, index=True
    )
    target_provision_state: Mapped[str | None] = mapped_column(String(32))
    provision_updated_at: Mapped[datetime | None] = mapped_column()
    power_state: Mapped[str | None] = mapped_column(String(32))
    target_power_state: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)

    maintenance: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    maintenance_reason: Mapped[str | None] = mapped_column(Text)
    fault: Mapped[str | None] = mapped_column(String(255))
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    protected_reason: Mapped[str | None] = mapped_column(Text)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    retired_reason: Mapped[str | None] = mapped_column(Text)
    automated_clean: Mapped[bool | None] = mapped_column(Boolean)
    console_enabled: Mapped[bool] = mapped_column(Boolean, default=False)

    reservation: Mapped[str | None] = mapped_column(String(255), index=True)
    reservation_expires_at: Mapped[datetime | None] = mapped_column()
    conductor_affinity: Mapped[str | None] = mapped_column(String(255))
    conductor_group: Mapped[str] = mapped_column(String(255), default="", index=True)
    resource_class: Mapped[str | None] = mapped_column(String(80), index=True)
    owner: Mapped[str | None] = mapped_column(String(255))
    lessee: Mapped[str | None] = mapped_column(String(255))
    # Plain column: the allocation's node_id is the foreign key, a second one would be circular.
    allocation_id: Mapped[int | None] = mapped_column(Integer, index=True)

    clean_step: Mapped[dict[str, Any]] = mapped_column(default=dict)
    deploy_step: Mapped[dict[str, Any]] = mapped_column(default=dict)
    service_step: Mapped[dict[str, Any]] = mapped_column(default=dict)
    raid_config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    target_raid_config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    network_data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    inspection_started_at: Mapped[datetime | None] = mapped_column()
    inspection_finished_at: Mapped[datetime | None] = mapped_column()
    chassis_id: Mapped[int | None] = mapped_column(ForeignKey("chassis.id"), index=True)
    # API 1.75: what the management interface last reported or set (None: not known).
    boot_mode: Mapped[str | None] = mapped_column(String(16))
    secure_boot: Mapped[bool | None] = mapped_column(Boolean)
    # API 1.82: a free label that splits the nodes between schedulers.
    shard: Mapped[str | None] = mapped_column(String(255), index=True)
    # API 1.83: the UUID of the node this one is a child of.
    parent_node: Mapped[str | None] = mapped_column(String(36), index=True)
    # API 1.95: never power this node off on request (Ironic's disable_power_off).
    disable_power_off: Mapped[bool] = mapped_column(Boolean, default=False,
                                                    server_default=false())
    # API 1.109: the hardware's health as the BMC last reported it (OK, Warning, Critical).
    health: Mapped[str | None] = mapped_column(String(32))
    # API 1.104: the name of the instance on the node (Nova's display name, say).
    instance_name: Mapped[str | None] = mapped_column(String(255), index=True)

    ports: Mapped[list[Port]] = relationship(back_populates="node", passive_deletes=True)
    portgroups: Mapped[list[Portgroup]] = relationship(back_populates="node",
                                                       passive_deletes=True)


class Port(TimestampMixin, Base):
    __tablename__ = "ports"
    __table_args__ = (Index("ix_ports_updated_at", "updated_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    address: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str | None] = mapped_column(String(255), unique=True)  # API 1.88
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    local_link_connection: Mapped[dict[str, Any]] = mapped_column(default=dict)
    physical_network: Mapped[str | None] = mapped_column(String(64))
    pxe_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    is_smartnic: Mapped[bool] = mapped_column(Boolean, default=False)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    internal_info: Mapped[dict[str, Any]] = mapped_column(default=dict)
    portgroup_id: Mapped[int | None] = mapped_column(
        ForeignKey("portgroups.id", ondelete="SET NULL"), index=True)
    # API 1.97, 1.100, 1.101: free texts about the port.
    description: Mapped[str | None] = mapped_column(String(255))
    vendor: Mapped[str | None] = mapped_column(String(32))
    category: Mapped[str | None] = mapped_column(String(80))
    # API 1.111: may join a dynamic port group (Ironic's trait-based networking; stored only).
    available_for_dynamic_portgroup: Mapped[bool] = mapped_column(Boolean, default=True,
                                                                  server_default=true())

    node: Mapped[Node] = relationship(back_populates="ports")
    portgroup: Mapped[Portgroup | None] = relationship(back_populates="ports")


class Portgroup(TimestampMixin, Base):
    """A group of a node's ports bonded together (Ironic's port group, API 1.23+)."""

    __tablename__ = "portgroups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    name: Mapped[str | None] = mapped_column(String(255), unique=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    address: Mapped[str | None] = mapped_column(String(18), unique=True)
    standalone_ports_supported: Mapped[bool] = mapped_column(Boolean, default=True)
    mode: Mapped[str | None] = mapped_column(String(255))
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    internal_info: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # API 1.102, 1.103.
    physical_network: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(80))
    # API 1.111: made by trait-based networking (stored only here).
    dynamic_portgroup: Mapped[bool] = mapped_column(Boolean, default=False,
                                                    server_default=false())

    node: Mapped[Node] = relationship(back_populates="portgroups")
    ports: Mapped[list[Port]] = relationship(back_populates="portgroup")


class Chassis(TimestampMixin, Base):
    """A chassis that nodes may belong to (Ironic's, API 1.1): a description and extra."""

    __tablename__ = "chassis"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    description: Mapped[str | None] = mapped_column(String(255))
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)


class DeployTemplate(TimestampMixin, Base):
    """A deploy template (Ironic's, API 1.55): named by a trait; its deploy steps run in the
    deploys of nodes whose instance_info traits name it. The steps are kept as a JSON list
    of {interface, step, args, priority}."""

    __tablename__ = "deploy_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    steps: Mapped[list[Any]] = mapped_column(default=list)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)


class VolumeConnector(TimestampMixin, Base):
    """A node's volume connector (Ironic's, API 1.32): how storage sees the node."""

    __tablename__ = "volume_connectors"
    __table_args__ = (UniqueConstraint("type", "connector_id",
                                       name="uniq_volumeconnectors0type0connector_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    connector_id: Mapped[str] = mapped_column(String(255))
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)

    node: Mapped[Node] = relationship()


class VolumeTarget(TimestampMixin, Base):
    """A volume a node can attach or boot from (Ironic's, API 1.32)."""

    __tablename__ = "volume_targets"
    __table_args__ = (UniqueConstraint("node_id", "boot_index",
                                       name="uniq_volumetargets0node_id0boot_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    volume_type: Mapped[str] = mapped_column(String(64))
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    boot_index: Mapped[int] = mapped_column(Integer)
    volume_id: Mapped[str] = mapped_column(String(36))
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)

    node: Mapped[Node] = relationship()


class Conductor(TimestampMixin, Base):
    __tablename__ = "conductors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255), unique=True)
    conductor_group: Mapped[str] = mapped_column(String(255), default="")
    rpc_address: Mapped[str | None] = mapped_column(String(255))
    hardware_types: Mapped[list[Any]] = mapped_column(default=list)
    online: Mapped[bool] = mapped_column(Boolean, default=True)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)



class ConductorHardwareInterface(Base):
    """A hardware type's interface implementation that a conductor enables (the first row of
    an interface marked default), written when the conductor registers."""

    __tablename__ = "conductor_hardware_interfaces"
    __table_args__ = (
        UniqueConstraint("conductor_id", "hardware_type", "interface_type", "interface_name",
                         name="uniq_conductorhardwareinterfaces"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conductor_id: Mapped[int] = mapped_column(
        ForeignKey("conductors.id", ondelete="CASCADE"), index=True)
    hardware_type: Mapped[str] = mapped_column(String(255))
    interface_type: Mapped[str] = mapped_column(String(16))
    interface_name: Mapped[str] = mapped_column(String(255))
    default: Mapped[bool] = mapped_column(Boolean, default=False)

class Allocation(TimestampMixin, Base):
    __tablename__ = "allocations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    name: Mapped[str | None] = mapped_column(String(255), unique=True)
    node_id: Mapped[int | None] = mapped_column(
        ForeignKey("nodes.id", ondelete="SET NULL"), index=True
    )
    state: Mapped[str] = mapped_column(String(15), default="allocating")
    last_error: Mapped[str | None] = mapped_column(Text)
    resource_class: Mapped[str | None] = mapped_column(String(80))
    traits: Mapped[list[Any]] = mapped_column(default=list)
    candidate_nodes: Mapped[list[Any]] = mapped_column(default=list)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    owner: Mapped[str | None] = mapped_column(String(255))
    # Bumped by each PATCH, which writes only if it is still the version it read.
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    node: Mapped[Node | None] = relationship(foreign_keys=[node_id])


class NodeHistory(Base):
    __tablename__ = "node_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    conductor: Mapped[str | None] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(255))
    severity: Mapped[str] = mapped_column(String(255))
    event: Mapped[str] = mapped_column(Text)
    user: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(default=None, onupdate=utcnow)
    # API 1.113: the project of the request that caused it (none known to a conductor here).
    project: Mapped[str | None] = mapped_column(String(80))
    # API 1.115: the node's provision state and target then, and how long (s) it had been in
    # that state.
    state: Mapped[str | None] = mapped_column(String(255))
    target_provision_state: Mapped[str | None] = mapped_column(String(255))
    duration_seconds: Mapped[int | None] = mapped_column(Integer)


class NodeInventory(TimestampMixin, Base):
    """What inspection found on a node: the agent's inventory, as Ironic keeps it."""

    __tablename__ = "node_inventory"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"),
                                         unique=True)
    inventory_data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    plugin_data: Mapped[dict[str, Any]] = mapped_column(default=dict)


# The classroom and session service tables share this metadata (one schema, one set of
# migrations).
from services.common import (  # noqa: E402, F401
    classroom_models,
    rule_models,
    session_models,
    state_models,
)
from services.common.component_models import (  # noqa: E402, F401 (their old home's names)
    FIRMWARE_IDENTITY_FIELDS,
    BiosSetting,
    FirmwareComponent,
)
