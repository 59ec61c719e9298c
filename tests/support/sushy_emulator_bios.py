"""sushy-emulator with BIOS settings and firmware versions on its fake driver: ``python -m
tests.support.sushy_emulator_bios --config FILE --fake`` (what ``RedfishEmulator(bios=True)``
starts).

sushy-tools 2.2.0 serves ``/Systems/{id}/BIOS``, ``/BIOS/Settings`` and ``Bios.ResetBios``, its
BIOS attribute registry, and an update service whose ``SimpleUpdate`` raises a system's
``BiosVersion`` (and refuses manager targets), but only its libvirt driver stores BIOS settings
and firmware versions; the fake driver the tests use answers 501 for them, and libvirt is not on
this machine. This entry point runs the unchanged emulator (its Flask app, routes, templates and
registry) with the fake driver given the libvirt driver's behaviour: the same default attributes
and versions, kept in the fake system's persistent state, reset to the defaults. Unlike
libvirt's, and like a strict BMC, its BIOS refuses a PATCH that names an attribute the
emulator's own registry does not list, a read-only one, or an enumeration value the registry
does not allow: HTTP 400 with the Redfish Base message, nothing applied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sushy_tools.emulator.main as emulator_main
from sushy_tools import error
from sushy_tools.emulator.resources.systems.fakedriver import FakeDriver
from sushy_tools.emulator.resources.systems.libvirtdriver import LibvirtDriver

REGISTRY_FILE = Path(emulator_main.__file__).parent / "templates" / "bios_registry.json"


def _registry() -> dict[str, dict[str, Any]]:
    document = json.loads(REGISTRY_FILE.read_text())
    return {entry["AttributeName"]: entry
            for entry in document["RegistryEntries"]["Attributes"]}


def _refusal(name: str, value: Any, registry: dict[str, dict[str, Any]]) -> str | None:
    entry = registry.get(name)
    if entry is None:
        return (f"The property {name} is not in the list of valid properties for the "
                f"resource.")
    if entry.get("ReadOnly"):
        return f"The property {name} is a read only property and cannot be assigned a value."
    allowed = [item.get("ValueName") for item in entry.get("Value") or []]
    if entry.get("Type") == "Enumeration" and value not in allowed:
        return (f"The value {value} for the property {name} is not in the list of acceptable "
                f"values.")
    return None


def get_bios(self: FakeDriver, identity: str) -> dict[str, Any]:
    system = self._get(identity)
    if "bios" not in system:
        self._update(system, bios=dict(LibvirtDriver.DEFAULT_BIOS_ATTRIBUTES))
    return dict(system["bios"])


def set_bios(self: FakeDriver, identity: str, attributes: dict[str, Any]) -> None:
    registry = _registry()
    refused = [reason for name, value in (attributes or {}).items()
               if (reason := _refusal(name, value, registry))]
    if refused:
        raise error.BadRequest(" ".join(refused))
    self._update(identity, bios={**get_bios(self, identity), **attributes})


def reset_bios(self: FakeDriver, identity: str) -> None:
    self._update(identity, bios=dict(LibvirtDriver.DEFAULT_BIOS_ATTRIBUTES))


def get_versions(self: FakeDriver, identity: str) -> dict[str, Any]:
    system = self._get(identity)
    if "versions" not in system:
        self._update(system, versions=dict(LibvirtDriver.DEFAULT_FIRMWARE_VERSIONS))
    return dict(system["versions"])


def set_versions(self: FakeDriver, identity: str, versions: dict[str, Any]) -> None:
    self._update(identity, versions={**get_versions(self, identity), **versions})


FakeDriver.get_versions = get_versions  # type: ignore[method-assign]
FakeDriver.set_versions = set_versions  # type: ignore[method-assign]
FakeDriver.get_bios = get_bios  # type: ignore[method-assign]
FakeDriver.set_bios = set_bios  # type: ignore[method-assign]
FakeDriver.reset_bios = reset_bios  # type: ignore[method-assign]

if __name__ == "__main__":
    emulator_main.main()
