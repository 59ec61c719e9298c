"""What each switch CLI is told to make access ports untagged members of a VLAN.

The command sequences are those of OpenStack networking-generic-switch (its `PLUG_PORT_TO_NETWORK`
templates), so a switch that works with Ironic there works here the same way. The VLANs must
exist on the switch: Enclume changes port membership only, never the VLAN list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from services.drivers.network.switches.base import PortVlan


class Finish(Enum):
    """How a session's changes are made to stick."""

    SAVE = "save"  # applied line by line; then the running configuration is saved
    COMMIT = "commit"  # a candidate configuration, committed as one transaction (Junos)


@dataclass(frozen=True)
class CliDialect:
    name: str
    netmiko_device_type: str
    render: Callable[[Sequence[PortVlan]], list[str]]
    finish: Finish
    # Output lines that mean the switch refused a command (matched per line, re.M).
    error_pattern: str
    enter_enable_mode: bool = True
    config_command: str | None = None  # None: netmiko's default for the platform


def _ios_like(changes: Sequence[PortVlan], exit_interface: bool) -> list[str]:
    commands: list[str] = []
    for change in changes:
        commands += [f"interface {change.port_id}", "switchport mode access",
                     f"switchport access vlan {change.vlan}"]
        if exit_interface:
            commands.append("exit")
    return commands


def _junos(changes: Sequence[PortVlan]) -> list[str]:
    commands: list[str] = []
    for change in changes:
        unit = f"interfaces {change.port_id} unit 0 family ethernet-switching vlan members"
        # An access port has one VLAN: drop the old membership before adding the new one.
        commands += [f"delete {unit}", f"set {unit} {change.vlan}"]
    return commands


_CISCO_ERRORS = r"^\s*% ?(Invalid|Incomplete|Ambiguous|Error)[^\n]*"

DIALECTS: dict[str, CliDialect] = {
    dialect.name: dialect for dialect in (
        CliDialect("cisco_ios", "cisco_ios", lambda c: _ios_like(c, False), Finish.SAVE,
                   _CISCO_ERRORS),
        CliDialect("cisco_nxos", "cisco_nxos", lambda c: _ios_like(c, True), Finish.SAVE,
                   _CISCO_ERRORS + r"|^\s*ERROR:[^\n]*", enter_enable_mode=False),
        CliDialect("arista_eos", "arista_eos", lambda c: _ios_like(c, False), Finish.SAVE,
                   _CISCO_ERRORS),
        CliDialect("dell_os10", "dell_os10", lambda c: _ios_like(c, True), Finish.SAVE,
                   _CISCO_ERRORS, enter_enable_mode=False),
        # "configure private": other sessions' uncommitted changes stay out of our commit, and
        # ours are dropped if the session dies before it commits.
        CliDialect("juniper_junos", "juniper_junos", _junos, Finish.COMMIT,
                   r"^\s*(syntax error|error:|unknown command)[^\n]*",
                   enter_enable_mode=False, config_command="configure private"),
    )
}
