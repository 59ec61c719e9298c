"""A VLAN-capable layer-2 switch: a vde_switch process, driven through its management socket
by the vde switch driver's client (services/drivers/network/switches/vde.py)."""

from __future__ import annotations

from pathlib import Path

from services.drivers.network.switches.base import SwitchError
from services.drivers.network.switches.vde import VdeManagement
from tests.lab.harness.processes import (
    LabError,
    ManagedProcess,
    check_socket_path,
    require_tool,
    wait_until,
)

DEFAULT_VLAN = 0  # untagged; exists from the start
COMMAND_TIMEOUT_S = 5.0
START_TIMEOUT_S = 10.0


class VdeSwitch:
    """A vde_switch process in `workdir`, in the foreground (its console stdin kept open).

    Ports are created explicitly (`create_port`), so their VLAN can be set before anything plugs
    in and survives the plug leaving (a machine restarting keeps its switch port).
    """

    def __init__(self, workdir: Path, numports: int = 32) -> None:
        require_tool("vde_switch")
        workdir.mkdir(parents=True, exist_ok=True)
        self.socket_dir = check_socket_path(workdir / "ctl")
        self.management_socket = check_socket_path(workdir / "mgmt")
        self.numports = numports
        self._next_port = 1
        self.management = VdeManagement(self.management_socket, COMMAND_TIMEOUT_S, "lab")
        # Without its console on stdin the switch exits at once ("EOF on stdin").
        self.process = ManagedProcess(
            "vde_switch",
            ["vde_switch", "--sock", str(self.socket_dir), "--mgmt", str(self.management_socket),
             "--numports", str(numports)],
            workdir / "vde_switch.log", keep_stdin_open=True)
        try:
            wait_until(self._answers, START_TIMEOUT_S, "vde_switch's management socket",
                       on_timeout=lambda: f"alive: {self.process.alive()}")
        except BaseException:
            self.process.stop()
            raise

    def _answers(self) -> bool:
        self.process.check_alive()
        if not (self.management_socket.exists() and (self.socket_dir / "ctl").exists()):
            return False
        try:
            self.command("showinfo")
        except SwitchError:
            return False
        return True

    def command(self, command: str) -> str:
        """Run one management command; its output (the data lines); SwitchError on failure."""
        return self.management.command(command)

    def create_vlan(self, vlan: int) -> None:
        """Create VLAN `vlan` unless it exists."""
        with self.management.session() as session:
            self.management.create_vlan(session, vlan)

    def create_port(self, vlan: int = DEFAULT_VLAN) -> int:
        """A new port number, untagged in `vlan`, for a host or machine to plug into."""
        if self._next_port >= self.numports:
            raise LabError(f"all {self.numports} ports of the switch are taken")
        port = self._next_port
        self.command(f"port/create {port}")
        self._next_port += 1
        self.set_port_vlan(port, vlan)
        return port

    def set_port_vlan(self, port: int, vlan: int) -> None:
        """Move `port` (untagged) into `vlan`, creating the VLAN when needed."""
        self.create_vlan(vlan)
        self.command(f"port/setvlan {port} {vlan}")

    def port_status(self, port: int) -> tuple[int, bool]:
        """(untagged VLAN, whether something is plugged in) of `port`."""
        return self.management.port_status(port)

    def wait_port_active(self, port: int, timeout: float = START_TIMEOUT_S) -> None:
        wait_until(lambda: self.port_status(port)[1], timeout, f"a plug in switch port {port}")

    def stop(self) -> None:
        self.process.stop()
