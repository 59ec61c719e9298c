"""A VLAN-capable layer-2 switch: vde_switch driven through its management socket."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from tests.lab.harness.processes import (
    LabError,
    ManagedProcess,
    check_socket_path,
    require_tool,
    wait_until,
)

PROMPT = b"vde$ "
# Every answer ends in a status line "1000 Success" or "10NN <strerror>" (1000 + errno).
STATUS_LINE = re.compile(rb"(?:^|\n)(1\d{3}) ([^\n]*)\n")
SUCCESS = 1000
ALREADY_EXISTS = 1000 + 17  # EEXIST
DEFAULT_VLAN = 0  # untagged; exists from the start
COMMAND_TIMEOUT_S = 5.0
START_TIMEOUT_S = 10.0
PORT_LINE = re.compile(r"^Port (\d{4}) untagged_vlan=(\d{4}) (ACTIVE|INACTIVE)", re.MULTILINE)


class VdeCommandError(LabError):
    def __init__(self, command: str, code: int, message: str) -> None:
        super().__init__(f"vde_switch `{command}` failed: {code} {message}")
        self.code = code


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
        except OSError:
            return False
        return True

    def command(self, command: str) -> str:
        """Run one management command; its output (the data lines); VdeCommandError on failure."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(COMMAND_TIMEOUT_S)
            conn.connect(str(self.management_socket))
            received = b""
            while not received.endswith(PROMPT):
                received += self._receive(conn, command)
            conn.sendall(command.encode() + b"\n")
            received = b""
            while (status := STATUS_LINE.search(received)) is None:
                received += self._receive(conn, command)
        code, message = int(status.group(1)), status.group(2).decode()
        if code != SUCCESS:
            raise VdeCommandError(command, code, message)
        data = received[: status.start()].decode()
        lines = data.splitlines()
        if lines and lines[0].startswith("0000 DATA"):
            lines = lines[1:]
        return "\n".join(line for line in lines if line != ".")

    @staticmethod
    def _receive(conn: socket.socket, command: str) -> bytes:
        chunk = conn.recv(65536)
        if not chunk:
            raise LabError(f"vde_switch closed the management connection during `{command}`")
        return chunk

    def create_vlan(self, vlan: int) -> None:
        """Create VLAN `vlan` unless it exists."""
        if vlan == DEFAULT_VLAN:
            return
        try:
            self.command(f"vlan/create {vlan}")
        except VdeCommandError as exc:
            if exc.code != ALREADY_EXISTS:
                raise

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
        for number, vlan, state in PORT_LINE.findall(self.command(f"port/allprint {port}")):
            if int(number) == port:
                return int(vlan), state == "ACTIVE"
        raise LabError(f"vde_switch does not list port {port}")

    def wait_port_active(self, port: int, timeout: float = START_TIMEOUT_S) -> None:
        wait_until(lambda: self.port_status(port)[1], timeout, f"a plug in switch port {port}")

    def stop(self) -> None:
        self.process.stop()
