"""The hardware types and interfaces conductors enable, as they register them in
``conductor_hardware_interfaces`` (Ironic's table): written by a conductor when it registers,
read by the API (through ``Membership``) to list drivers and to check node interfaces."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.common.hardware_types import HARDWARE_TYPES, HardwareType, UnknownHardwareType
from services.common.models import ConductorHardwareInterface


class EnabledHardware:
    """Hardware types by name (what the live conductors registered, or a process enables)."""

    def __init__(self, hardware_types: dict[str, HardwareType]) -> None:
        self.hardware_types = hardware_types

    def hardware_type(self, name: str) -> HardwareType:
        try:
            return self.hardware_types[name]
        except KeyError:
            raise UnknownHardwareType(f"Cannot find the hardware type {name}.") from None


def register(session: Session, conductor_id: int, hardware_types: Iterable[HardwareType]) -> None:
    """Replace the rows of a conductor by the interfaces of ``hardware_types``."""
    session.execute(delete(ConductorHardwareInterface)
                    .where(ConductorHardwareInterface.conductor_id == conductor_id))
    session.add_all(
        ConductorHardwareInterface(conductor_id=conductor_id, hardware_type=hw.name,
                                   interface_type=interface, interface_name=name,
                                   default=name == hw.default(interface))
        for hw in hardware_types
        for interface, names in hw.supported.items()
        for name in names
    )


def registered(session: Session, conductor_ids: Iterable[int]) -> EnabledHardware:
    """The hardware types the conductors registered: an interface allows what any of them
    enables, its default being the one they registered as default."""
    rows = session.scalars(
        select(ConductorHardwareInterface)
        .where(ConductorHardwareInterface.conductor_id.in_(list(conductor_ids)))
        .order_by(ConductorHardwareInterface.id)
    )
    supported: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        names = supported.setdefault(row.hardware_type, {}).setdefault(row.interface_type, [])
        if row.interface_name in names:
            continue
        if row.default:
            names.insert(0, row.interface_name)
        else:
            names.append(row.interface_name)
    return EnabledHardware({
        name: HardwareType(
            name=name, supported={iface: tuple(names) for iface, names in interfaces.items()},
            properties=HARDWARE_TYPES[name].properties if name in HARDWARE_TYPES else {})
        for name, interfaces in supported.items()
    })
