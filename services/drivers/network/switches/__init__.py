"""Switch drivers: `vde` (management socket) and the SSH CLI drivers on netmiko."""

from __future__ import annotations

from services.drivers.network.inventory import SwitchConfig
from services.drivers.network.switches.base import PortVlan, SwitchDriver, SwitchError

__all__ = ["PortVlan", "SwitchDriver", "SwitchError", "make_switch_driver"]


def make_switch_driver(config: SwitchConfig, timeout_s: float) -> SwitchDriver:
    if config.driver == "vde":
        from services.drivers.network.switches.vde import VdeSwitchDriver

        assert config.socket is not None  # checked when the file was read
        return VdeSwitchDriver(config.name, config.socket, timeout_s)
    # netmiko (and paramiko) load only where an SSH switch is configured.
    from services.drivers.network.switches.netmiko_cli import NetmikoSwitchDriver

    return NetmikoSwitchDriver(config, timeout_s)
