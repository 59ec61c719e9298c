"""The virtual lab of the tests: vde_switch, network-namespace hosts and QEMU machines.

    with Lab(tmp_path) as lab:
        switch = lab.switch()
        server = lab.host("server", switch, "10.0.0.1/24", "fd00::1/64")
        machine = lab.machine("node", switch, firmware="uefi")
        machine.start()
        machine.wait_for_serial("login:", timeout=120)
"""

from services.drivers.network.switches.vde import VdeCommandError
from tests.lab.harness.aio import EnclumeAio, start_enclume_aio
from tests.lab.harness.boot_service import BootService, start_boot_service
from tests.lab.harness.lab import Lab, Terminated, check_prerequisites
from tests.lab.harness.netns import NetnsHost
from tests.lab.harness.processes import LabError, ManagedProcess, require_tool, wait_until
from tests.lab.harness.qemu import DirectKernel, QemuMachine, find_ovmf, random_mac
from tests.lab.harness.qmp import QmpError, qmp_execute
from tests.lab.harness.vde import DEFAULT_VLAN, VdeSwitch

__all__ = [
    "DEFAULT_VLAN",
    "BootService",
    "DirectKernel",
    "EnclumeAio",
    "Lab",
    "LabError",
    "ManagedProcess",
    "NetnsHost",
    "QemuMachine",
    "QmpError",
    "Terminated",
    "VdeCommandError",
    "VdeSwitch",
    "check_prerequisites",
    "find_ovmf",
    "qmp_execute",
    "random_mac",
    "require_tool",
    "start_boot_service",
    "start_enclume_aio",
    "wait_until",
]
