"""/v1/drivers: the enabled hardware types and the conductors that run them."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from services.api.collection import parse_bool
from services.api.deps import api_version, enabled_drivers, members
from services.api.routing import api_router
from services.api.versions import Version
from services.api.views import links
from services.common.enabled_hardware import EnabledHardware
from services.common.exceptions import Invalid, NotAcceptable, NotFound
from services.common.hardware_types import HardwareType
from services.common.membership import Membership
from services.common.node_fields import INTERFACES
from services.common.raid_config import logical_disk_properties

router = api_router(prefix="/v1/drivers")

RAID_VERSION: Version = (1, 12)  # RAID configuration, its properties


def _document(request: Request, hardware_type: HardwareType, hosts: list[str], detail: bool,
              version: Version) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": hardware_type.name,
        "hosts": hosts,
        "type": "dynamic",
        "links": links(request, "drivers", hardware_type.name),
        "properties": links(request, "drivers", f"{hardware_type.name}/properties"),
    }
    if detail and version >= (1, 30):
        for interface in INTERFACES:
            if interface == "firmware" and version < FIRMWARE_INTERFACE_VERSION:
                continue
            document[f"default_{interface}_interface"] = hardware_type.default(interface)
            document[f"enabled_{interface}_interfaces"] = list(hardware_type.supported[interface])
    return document


FIELDS_VERSION: Version = (1, 77)
FIRMWARE_INTERFACE_VERSION: Version = (1, 86)


def _requested_fields(request: Request, version: Version) -> list[str] | None:
    """``?fields=`` (API 1.77; Ironic's bare 406 below it)."""
    raw = request.query_params.get("fields")
    if raw is None:
        return None
    if version < FIELDS_VERSION:
        raise NotAcceptable("Not Acceptable")
    return [name.strip() for name in raw.split(",") if name.strip()]


def _only(document: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """The fields asked for (and the links), as Ironic's sanitize_dict keeps them."""
    if fields is None:
        return document
    kept = {key: value for key, value in document.items() if key in fields or key == "links"}
    unknown = set(fields) - set(kept)
    if unknown:
        raise Invalid(f'Field(s) "{", ".join(sorted(unknown))}" are not valid')
    return kept


def _hosts(membership: Membership) -> dict[str, list[str]]:
    hosts: dict[str, list[str]] = {}
    for member in membership.members().values():
        for name in member.hardware_types:
            hosts.setdefault(name, []).append(member.hostname)
    return hosts


@router.get("")
def list_drivers(request: Request, version: Version = Depends(api_version),
                 membership: Membership = Depends(members),
                 drivers: EnabledHardware = Depends(enabled_drivers)) -> dict[str, Any]:
    kind = request.query_params.get("type")
    if kind not in (None, "classic", "dynamic"):
        raise Invalid(f"Invalid driver type {kind!r}: use classic or dynamic.")
    detail = bool(parse_bool("detail", request.query_params.get("detail")))
    fields = _requested_fields(request, version)
    if fields is not None and detail:
        raise Invalid("Can not specify ?detail=True and fields in the same request.")
    hosts = _hosts(membership)
    drivers = [] if kind == "classic" else [
        _only(_document(request, hw, hosts.get(name, []), detail, version), fields)
        for name, hw in drivers.hardware_types.items() if name in hosts
    ]
    return {"drivers": drivers}


@router.get("/{name}")
def show_driver(name: str, request: Request, version: Version = Depends(api_version),
                membership: Membership = Depends(members),
                 drivers: EnabledHardware = Depends(enabled_drivers)) -> dict[str, Any]:
    fields = _requested_fields(request, version)
    hosts = _hosts(membership)
    if name not in drivers.hardware_types or name not in hosts:
        raise NotFound(f"Could not find the following driver(s) or hardware type(s): {name}.")
    return _only(_document(request, drivers.hardware_types[name], hosts[name], True, version),
                 fields)


@router.get("/{name}/properties")
def driver_properties(name: str, membership: Membership = Depends(members),
                 drivers: EnabledHardware = Depends(enabled_drivers)
                      ) -> dict[str, Any]:
    if name not in drivers.hardware_types:
        raise NotFound(f"Could not find the following driver(s) or hardware type(s): {name}.")
    return dict(drivers.hardware_types[name].properties)


@router.get("/{name}/raid/logical_disk_properties")
def raid_logical_disk_properties(name: str, version: Version = Depends(api_version),
                                 drivers: EnabledHardware = Depends(enabled_drivers)
                                 ) -> dict[str, str]:
    """What a logical disk of a RAID configuration may say (1.12): every raid interface takes
    Ironic's schema, so the answer is the schema's."""
    if version < RAID_VERSION:
        raise NotAcceptable("Request not acceptable.")
    if name not in drivers.hardware_types:
        raise NotFound(f"Could not find the following driver(s) or hardware type(s): {name}.")
    return logical_disk_properties()
