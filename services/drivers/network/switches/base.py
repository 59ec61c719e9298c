"""What every switch driver offers: put access ports (untagged) into VLANs, in one session."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from services.common.validation import MAX_VLAN, MIN_VLAN, is_vlan_id
from services.drivers.base import DriverError

# Interface names as switches spell them (GigabitEthernet1/0/5, Ethernet1, ge-0/0/5,
# ethernet1/1/5, Port-channel3 ...). Nothing else reaches a CLI: no spaces, no line breaks.
INTERFACE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9/._:-]{0,63}")


class SwitchError(DriverError):
    """A switch refused a change or could not be reached; the message names the switch."""


@dataclass(frozen=True)
class PortVlan:
    """One access port of a switch, to be made an untagged member of one VLAN."""

    port_id: str
    vlan: int


class SwitchDriver(Protocol):
    name: str

    def check_port_id(self, port_id: str) -> str | None:
        """Why `port_id` cannot be a port of this switch, or None when it can."""

    def set_access_vlans(self, changes: Sequence[PortVlan]) -> None:
        """Apply all `changes` in one session (one login, one commit); SwitchError on failure."""


def check_interface_name(port_id: str) -> str | None:
    if not INTERFACE_NAME.fullmatch(port_id):
        return (f"port_id {port_id!r} is not an interface name (letters, digits and / . _ : - "
                "only, at most 64 characters)")
    return None


def check_vlan(vlan: object, what: str) -> int:
    """`vlan` as an int in 1..4094 (numeric strings accepted), else DriverError naming `what`."""
    if isinstance(vlan, bool):
        raise DriverError(f"{what} must be a VLAN id between {MIN_VLAN} and {MAX_VLAN}, "
                          f"not {vlan!r}.")
    try:
        number = int(vlan)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise DriverError(f"{what} must be a VLAN id between {MIN_VLAN} and {MAX_VLAN}, "
                          f"not {vlan!r}.") from None
    if not is_vlan_id(number) or (isinstance(vlan, float) and vlan != number):
        raise DriverError(f"{what} must be a VLAN id between {MIN_VLAN} and {MAX_VLAN}, "
                          f"not {vlan!r}.")
    return number
