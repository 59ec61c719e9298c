"""BmcPower.reboot of a node that must never be powered off (API 1.95's disable_power_off).

The BMC's side is a recording stand-in of BmcPowerControl: the states in between that matter
here ("PoweringOn", an unreadable state) cannot be produced on demand by the IPMI and Redfish
emulators of the integration tests, which cover the reset itself (test_deploy_agent.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from services.common.config import Settings
from services.drivers.base import POWER_OFF, POWER_ON
from services.drivers.bmc import BmcPower, PowerCommand

ON = PowerCommand("on", "on", "power on")
OFF = PowerCommand("off", "off", "power off")
RESET = PowerCommand("reset", "on", "reset")


@dataclass
class RecordingControl:
    state: str
    name: str = "test BMC"
    commands: dict[str, PowerCommand] = field(
        default_factory=lambda: {POWER_ON: ON, POWER_OFF: OFF})
    reset: PowerCommand = RESET
    sent: list[str] = field(default_factory=list)

    def access(self, driver_info: dict[str, Any]) -> None:
        return None

    def read(self, access: None) -> str:
        return self.state

    def send(self, access: None, command: PowerCommand) -> None:
        self.sent.append(command.label)

    def poll(self, access: None) -> Any:
        return {"power on": "on", "power off": "off", "reset": "on"}[self.sent[-1]]

    def still(self, access: None, polled: Any, command: PowerCommand, timeout_s: float) -> str:
        return f"{command.label} not done"


def _reboot(state: str, disable_power_off: bool) -> list[str]:
    control = RecordingControl(state)
    node = SimpleNamespace(driver_info={}, disable_power_off=disable_power_off)
    BmcPower(control, Settings()).reboot(SimpleNamespace(node=node))  # type: ignore[arg-type]
    return control.sent


@pytest.mark.parametrize("state", [POWER_ON, "PoweringOn", "PoweringOff", "error"])
def test_a_node_never_powered_off_is_reset_whatever_its_bmc_reads_but_off(state: str) -> None:
    assert _reboot(state, disable_power_off=True) == ["reset"]


def test_a_node_never_powered_off_that_is_off_is_only_powered_on() -> None:
    assert _reboot(POWER_OFF, disable_power_off=True) == ["power on"]


@pytest.mark.parametrize("state", [POWER_ON, "PoweringOn"])
def test_other_nodes_are_powered_off_then_on(state: str) -> None:
    assert _reboot(state, disable_power_off=False) == ["power off", "power on"]
