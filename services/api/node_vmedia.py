"""``/v1/nodes/{ident}/vmedia`` (API 1.89; 404 below it): attach an image as a virtual CD,
floppy or USB disk (``POST``) and detach them (``DELETE``, ``?device_types=``), as Ironic
does: its schema and texts, 204, then a conductor's worker through the node's management
interface (services/conductor/flows/vmedia.py; Redfish's in services/drivers/redfish.py).
An interface that cannot do it fails in the worker: the node's last_error says so.
``GET`` (API 1.93; 404 below it, as Ironic) lists the BMC's drives at once, as a JSON list."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import Body, Depends, Request, Response

from services.api.deps import api_version, conductor, database, find_node_uuid
from services.api.routing import api_router
from services.api.versions import Version
from services.common.db import Database
from services.common.exceptions import Invalid
from services.common.hardware_types import VMEDIA_DEVICES
from services.conductor.interface import ConductorAPI

router = api_router(prefix="/v1/nodes/{ident}/vmedia")

VERSION: Version = (1, 89)
GET_VERSION: Version = (1, 93)
URL_SCHEMES = ("http", "https", "nfs", "cifs", "smb")  # Ironic's VMEDIA_SUPPORTED_URL_SCHEMES
ATTACH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "device_type": {"type": "string", "enum": list(VMEDIA_DEVICES)},
        "image_url": {"type": "string"},
        "image_download_source": {"type": "string", "enum": ["http", "local", "swift"]},
    },
    "required": ["device_type", "image_url"],
    "additionalProperties": False,
}


@router.get("")
def listed(ident: str, version: Version = Depends(api_version),
           db: Database = Depends(database),
           manager: ConductorAPI = Depends(conductor)) -> list[dict[str, Any]]:
    return manager.get_virtual_media(find_node_uuid(db, ident, version, GET_VERSION))


@router.post("", status_code=204)
def attach(ident: str, body: Any = Body(...), version: Version = Depends(api_version),
           db: Database = Depends(database),
           manager: ConductorAPI = Depends(conductor)) -> Response:
    import jsonschema  # as validation.py: loaded when first needed

    node_uuid = find_node_uuid(db, ident, version, VERSION)
    try:
        jsonschema.validate(body, ATTACH_SCHEMA)
    except jsonschema.ValidationError as exc:
        raise Invalid(f"Schema error for vmedia: {exc.message}") from None
    scheme = urlsplit(body["image_url"]).scheme
    if scheme not in URL_SCHEMES:
        raise Invalid(f"Unsupported or missing URL scheme: {scheme}")
    manager.attach_virtual_media(node_uuid, body["device_type"], body["image_url"],
                                 body.get("image_download_source", "local"))
    return Response(status_code=204)


@router.delete("", status_code=204)
def detach(ident: str, request: Request, version: Version = Depends(api_version),
           db: Database = Depends(database),
           manager: ConductorAPI = Depends(conductor)) -> Response:
    node_uuid = find_node_uuid(db, ident, version, VERSION)
    asked = request.query_params.get("device_types")
    device_types = [item for item in asked.split(",") if item] if asked else None
    invalid = [item for item in device_types or [] if item not in VMEDIA_DEVICES]
    if invalid:
        raise Invalid(f"Invalid device type(s) {', '.join(invalid)} (valid are "
                      f"{', '.join(VMEDIA_DEVICES)})")
    manager.detach_virtual_media(node_uuid, device_types)
    return Response(status_code=204)
