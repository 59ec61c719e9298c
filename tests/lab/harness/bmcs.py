"""The virtual BMCs of a lab, in one place: IPMI, Redfish or Wake-on-LAN per machine.

Where they listen: the conductor (enclume-aio) runs in the lab's service host namespace, so the
BMC endpoints are made on 127.0.0.1 *of that namespace* (IPMI UDP ports of a `BmcFleet`, the
Redfish HTTP port), from this process (tests/lab/harness/nsenter.py): nothing listens in the
machine's root namespace, the test keeps the BMC objects at hand, and every QEMU process is a
child of this process, stopped by PID. The Wake-on-LAN listener is a namespace host of its own on
the provisioning switch, so a magic packet crosses the switch as on a real network.

    with VirtualBmcs(service_host, workdir, "admin", password) as bmcs:
        machine = bmcs.machine(lab.machine("node", switch, boot_device="disk"))
        driver_info = bmcs.ipmi(machine)        # ipmi_address/port/username/password
        ...                                     # enroll with it, power on through the API
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.lab.harness.bmc import QemuBackedMachine
from tests.lab.harness.bmc_redfish import RedfishBmc
from tests.lab.harness.bmc_wol import WolListener
from tests.lab.harness.netns import NetnsHost
from tests.lab.harness.nsenter import in_netns
from tests.lab.harness.qemu import QemuMachine
from tests.support.ipmi_bmc import BmcFleet
from tests.support.wol_listener import WOL_PORT

LOOPBACK = "127.0.0.1"


class VirtualBmcs:
    def __init__(self, service_host: NetnsHost, workdir: Path, username: str,
                 password: str) -> None:
        self.service_host = service_host
        self.workdir = workdir
        self.username = username
        self._password = password
        self._stack = ExitStack()
        self._fleet: BmcFleet | None = None
        self._redfish: RedfishBmc | None = None
        self.wol_listeners: list[WolListener] = []

    def __enter__(self) -> VirtualBmcs:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()

    def machine(self, machine: QemuMachine) -> QemuBackedMachine:
        """`machine` (not started) put under a BMC's control; stopped when the BMCs close."""
        backed = QemuBackedMachine(machine)
        self._stack.callback(backed.close)
        return backed

    def ipmi(self, machine: QemuBackedMachine) -> dict[str, Any]:
        """An IPMI BMC for `machine`; the node's driver_info to reach it."""
        if self._fleet is None:
            fleet = BmcFleet(self.username, self._password, host=LOOPBACK)
            self._stack.callback(fleet.stop)
            self._fleet = fleet
        fleet = self._fleet
        port = in_netns(self.service_host.name, lambda: fleet.add(machine))
        return {"ipmi_address": LOOPBACK, "ipmi_port": port, "ipmi_username": self.username,
                "ipmi_password": self._password}

    def redfish(self, machine: QemuBackedMachine) -> dict[str, Any]:
        """A Redfish system for `machine` (one emulator for all); the node's driver_info."""
        if self._redfish is None:
            redfish = RedfishBmc(self.service_host, self.workdir / "redfish", self.username,
                                 self._password)
            self._stack.callback(redfish.close)
            self._redfish = redfish
        system = self._redfish.add(machine)
        return {"redfish_address": self._redfish.address, "redfish_system_id": system,
                "redfish_username": self.username, "redfish_password": self._password}

    def wol(self, machine: QemuBackedMachine, listener_host: NetnsHost,
            port: int = WOL_PORT) -> dict[str, Any]:
        """Wake `machine` on magic packets reaching `listener_host`; the node's driver_info
        (the subnet-directed broadcast of the listener's network)."""
        listener = WolListener(listener_host, port)
        self._stack.callback(listener.close)
        listener.add(machine)
        self.wol_listeners.append(listener)
        broadcast = listener_host.interface.network.broadcast_address
        return {"wol_host": str(broadcast), "wol_port": listener.port}
