"""sushy-emulator with RAID volumes on its fake driver: ``python -m
tests.support.sushy_emulator_raid --config FILE --fake`` (what ``RedfishEmulator(raid=True)``
starts; it has tests/support/sushy_emulator_bios.py's BIOS settings too).

sushy-tools 2.2.0 serves a system's ``Storage``, its ``Drives`` and ``Volumes`` from its config
file (``SUSHY_EMULATOR_STORAGE``, ``_DRIVES``, ``_VOLUMES``), and a ``POST`` to ``Volumes``
creates a volume, but only through its libvirt driver (a file in a libvirt storage pool): the
fake driver answers 501, and libvirt is not on this machine. Its volume keeps only ``Name``,
``VolumeType`` and ``CapacityBytes`` of the request (not ``RAIDType`` nor the drives it is
made of), two volumes created in the same second get the same ``Id``, and it has no ``DELETE``
for a volume. This entry point runs the unchanged emulator (its Flask app, routes, storage and
volume stores) with:

- the fake driver creating volumes as libvirt's does, keeping the request's ``RAIDType`` and
  ``Links.Drives``, with an ``Id`` of its own; like a strict BMC it refuses (HTTP 400, a
  Redfish Base message, nothing created) a RAID type its controller does not do
  (``SUPPORTED_RAID_TYPES``), a drive it does not have, or a capacity larger than the drives
  can hold at that RAID level;
- the volume document showing ``RAIDType`` and ``Links.Drives`` (the emulator's template plus
  those two), and ``DELETE`` of a volume removing it from the emulator's volume store.
"""

from __future__ import annotations

import itertools
from typing import Any

import flask
import jinja2
import sushy_tools.emulator.main as emulator_main
from sushy_tools import error
from sushy_tools.emulator import api_utils
from sushy_tools.emulator.resources.systems.fakedriver import FakeDriver

import tests.support.sushy_emulator_bios  # noqa: F401 (its BIOS and firmware patches)

SUPPORTED_RAID_TYPES = ("RAID0", "RAID1")
_NUMBERS = itertools.count(1)
# The emulator's volume.json with RAIDType and the drives of the volume.
VOLUME_TEMPLATE = """{
    "@odata.type": "#Volume.v1_4_0.Volume",
    "Id": {{ volume['Id']|string|tojson }},
    "Name": {{ volume['Name']|string|tojson }},
    "Status": {"@odata.type": "#Resource.Status", "State": "Enabled", "Health": "OK"},
    "Encrypted": false,
    {% if volume.get('VolumeType') %}"VolumeType": {{ volume['VolumeType']|tojson }},{% endif %}
    {% if volume.get('RAIDType') %}"RAIDType": {{ volume['RAIDType']|tojson }},{% endif %}
    "CapacityBytes": {{ volume['CapacityBytes']|tojson }},
    "Links": {"Drives": {{ volume.get('Drives', [])|tojson }}},
    "@odata.context": "/redfish/v1/$metadata#Volume.Volume",
    "@odata.id": {{ "/redfish/v1/Systems/%s/Storage/%s/Volumes/%s"|format(identity, storage_id,
                                                                           volume['Id'])|tojson }}
}"""


def _drive_capacities(system_id: str, links: list[Any]) -> list[int]:
    path = flask.request.path.rsplit("/Volumes", 1)[0]
    storage_id = path.rsplit("/", 1)[1]
    drives = {drive["Id"]: drive for drive in emulator_main.app.drives.get_drives(
        system_id, storage_id)}
    capacities = []
    for link in links:
        drive_id = str((link or {}).get("@odata.id", "")).rsplit("/", 1)[-1]
        if f"{path}/Drives/{drive_id}" != (link or {}).get("@odata.id") or \
                drive_id not in drives:
            raise error.BadRequest(f"The value {link!r} for the property Links/Drives is not a "
                                   f"drive of this storage.")
        capacities.append(int(drives[drive_id]["CapacityBytes"]))
    return capacities


def _usable_bytes(raid_type: str, capacities: list[int]) -> int:
    if raid_type == "RAID1":
        return min(capacities) if len(capacities) == 2 else 0
    return sum(capacities)


def find_or_create_storage_volume(self: FakeDriver, data: dict[str, Any]) -> str | None:
    if flask.request.method != "POST":
        return str(data["Id"])  # a volume the store holds: it exists
    request = flask.request.get_json(silent=True) or {}
    raid_type = request.get("RAIDType")
    if raid_type not in SUPPORTED_RAID_TYPES:
        raise error.BadRequest(f"The value {raid_type} for the property RAIDType is not in "
                               f"the list of acceptable values ({', '.join(SUPPORTED_RAID_TYPES)}"
                               f").")
    links = (request.get("Links") or {}).get("Drives") or []
    system_id = str(self.uuid(flask.request.view_args["identity"]))  # type: ignore[index]
    capacities = _drive_capacities(system_id, links)
    usable = _usable_bytes(raid_type, capacities)
    wanted = request.get("CapacityBytes", usable)
    if not isinstance(wanted, int) or not 0 < wanted <= usable:
        raise error.BadRequest(f"The value {wanted} for the property CapacityBytes is not in "
                               f"the range of acceptable values: the {raid_type} volume of "
                               f"{len(capacities)} drive(s) holds at most {usable} bytes.")
    data.update(Id=f"v{next(_NUMBERS)}", RAIDType=raid_type, CapacityBytes=wanted,
                Name=request.get("Name") or f"{raid_type} volume", Drives=links)
    return str(data["Id"])


@api_utils.ensure_instance_access
@api_utils.returns_json
def delete_volume(identity: str, stg_id: str, vol_id: str) -> flask.Response:
    app = emulator_main.app
    system_id = app.systems.uuid(identity)
    for volume in app.volumes.get_volumes_col(system_id, stg_id) or []:
        if volume["Id"] == vol_id:
            app.volumes.delete_volume(system_id, stg_id, volume)
            return flask.Response(status=204)
    raise error.NotFound()


FakeDriver.find_or_create_storage_volume = find_or_create_storage_volume  # type: ignore
emulator_main.app.add_url_rule(
    "/redfish/v1/Systems/<identity>/Storage/<stg_id>/Volumes/<vol_id>", "delete_volume",
    delete_volume, methods=["DELETE"])
emulator_main.app.jinja_loader = jinja2.ChoiceLoader([  # type: ignore[assignment]
    jinja2.DictLoader({"volume.json": VOLUME_TEMPLATE}), emulator_main.app.jinja_loader])

if __name__ == "__main__":
    emulator_main.main()
