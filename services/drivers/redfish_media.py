"""A Redfish system's virtual media drives: the one of a kind (a CD for the deploy ISO of the
``redfish-virtual-media`` boot interface; a CD, floppy or USB disk for the API's vmedia
attach, 1.89), found among the system's virtual media (else its managers'), as Ironic's
redfish drivers find them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sushy

from services.common.hardware_types import VMEDIA_DEVICES
from services.drivers.base import DriverError

__all__ = ["MEDIA_TYPES", "VMEDIA_DEVICES", "drive_of", "drives"]

if TYPE_CHECKING:
    from sushy.resources.manager.virtual_media import VirtualMedia
    from sushy.resources.system.system import System

# Ironic's VMEDIA_DEVICES and the Redfish media types that serve each.
MEDIA_TYPES: dict[str, tuple[str, ...]] = {
    "cdrom": (sushy.VirtualMediaType.CD, sushy.VirtualMediaType.DVD),
    "floppy": (sushy.VirtualMediaType.FLOPPY, sushy.VirtualMediaType.USB_STICK),
    "disk": (sushy.VirtualMediaType.USB_STICK,),
}


def drives(system: System) -> list[VirtualMedia]:
    collections = [system.virtual_media] if system.virtual_media is not None else []
    if not collections:
        collections = [manager.virtual_media for manager in system.managers]
    return [device for collection in collections for device in collection.get_members()]


def drive_of(system: System, device_type: str) -> VirtualMedia:
    for device in drives(system):
        if any(kind in MEDIA_TYPES[device_type] for kind in device.media_types or []):
            return device
    words = {"cdrom": "virtual CD or DVD drive", "floppy": "virtual floppy or USB stick",
             "disk": "virtual USB stick"}
    raise DriverError(f"the BMC offers no {words[device_type]} for this system")
