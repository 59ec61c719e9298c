"""vde_switch, the software switch of the virtual lab, driven through its management socket.

The management protocol: a banner ending in the prompt ``vde$ ``; each command line is answered
by optional data (``0000 DATA END WITH '.'`` ... ``.``), then a status line ``1000 Success`` or
``10NN <strerror>`` (1000 + errno), then the prompt again.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from services.drivers.network.switches.base import PortVlan, SwitchError

PROMPT = b"vde$ "
STATUS_LINE = re.compile(rb"(?:^|\n)(1\d{3}) ([^\n]*)\n")
SUCCESS = 1000
ALREADY_EXISTS = 1000 + 17  # EEXIST
NO_SUCH_PORT = 1000 + 6  # ENXIO: a port that was never created and has nothing plugged in
DATA_HEADER = "0000 DATA"
PORT_LINE = re.compile(r"^Port (\d{4}) untagged_vlan=(\d{4}) (ACTIVE|INACTIVE)", re.MULTILINE)
MAX_ANSWER_BYTES = 1024 * 1024


class VdeCommandError(SwitchError):
    def __init__(self, switch: str, command: str, code: int, message: str) -> None:
        super().__init__(f"vde switch {switch}: `{command}` failed: {code} {message}")
        self.code = code


class VdeSession:
    """One connection to the management socket; commands run one after the other."""

    def __init__(self, connection: socket.socket, switch: str) -> None:
        self._connection = connection
        self._switch = switch
        self._read_until_prompt("the banner")

    def _read_until_prompt(self, what: str) -> bytes:
        received = b""
        while not received.endswith(PROMPT):
            try:
                chunk = self._connection.recv(65536)
            except TimeoutError:
                raise SwitchError(f"vde switch {self._switch}: no answer to {what}") from None
            except OSError as exc:
                raise SwitchError(f"vde switch {self._switch}: management connection failed "
                                  f"during {what}: {exc.strerror or exc}") from None
            if not chunk:
                raise SwitchError(f"vde switch {self._switch} closed its management connection "
                                  f"during {what}")
            received += chunk
            if len(received) > MAX_ANSWER_BYTES:
                raise SwitchError(f"vde switch {self._switch}: answer to {what} too long")
        return received

    def command(self, command: str) -> str:
        """The data lines of `command`'s answer; VdeCommandError when it failed."""
        if "\n" in command or "\r" in command:
            raise ValueError("a vde management command is one line")
        try:
            self._connection.sendall(command.encode() + b"\n")
        except OSError as exc:
            raise SwitchError(f"vde switch {self._switch}: cannot send `{command}`: "
                              f"{exc.strerror or exc}") from None
        answer = self._read_until_prompt(f"`{command}`")
        status = STATUS_LINE.search(answer)
        if status is None:
            raise SwitchError(f"vde switch {self._switch}: answer to `{command}` has no status")
        code, message = int(status.group(1)), status.group(2).decode(errors="replace")
        if code != SUCCESS:
            raise VdeCommandError(self._switch, command, code, message)
        lines = answer[: status.start()].decode(errors="replace").splitlines()
        if lines and lines[0].startswith(DATA_HEADER):
            lines = lines[1:]
        return "\n".join(line for line in lines if line != ".")


class VdeManagement:
    """Client of one vde_switch management socket."""

    def __init__(self, socket_path: Path, timeout_s: float, switch: str = "vde") -> None:
        self.socket_path = socket_path
        self.timeout_s = timeout_s
        self.switch = switch

    @contextmanager
    def session(self) -> Iterator[VdeSession]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(self.timeout_s)
            try:
                connection.connect(str(self.socket_path))
            except OSError as exc:
                raise SwitchError(f"vde switch {self.switch}: cannot connect to its management "
                                  f"socket {self.socket_path}: {exc.strerror or exc}") from None
            yield VdeSession(connection, self.switch)

    def command(self, command: str) -> str:
        with self.session() as session:
            return session.command(command)

    def create_vlan(self, session: VdeSession, vlan: int) -> None:
        """Create `vlan` unless it exists (vde's VLAN 0, untagged, always does)."""
        if vlan == 0:
            return
        try:
            session.command(f"vlan/create {vlan}")
        except VdeCommandError as exc:
            if exc.code != ALREADY_EXISTS:
                raise

    def port_status(self, port: int) -> tuple[int, bool]:
        """(untagged VLAN, whether something is plugged in) of `port`."""
        for number, vlan, state in PORT_LINE.findall(self.command(f"port/allprint {port}")):
            if int(number) == port:
                return int(vlan), state == "ACTIVE"
        raise SwitchError(f"vde switch {self.switch} does not list port {port}")


class VdeSwitchDriver:
    """Access ports of a vde_switch: `port_id` is the port number."""

    def __init__(self, name: str, socket_path: Path, timeout_s: float) -> None:
        self.name = name
        self.management = VdeManagement(socket_path, timeout_s, name)

    def check_port_id(self, port_id: str) -> str | None:
        if not port_id.isdigit() or int(port_id) < 1:
            return f"port_id {port_id!r} is not a port number of a vde switch"
        return None

    def set_access_vlans(self, changes: Sequence[PortVlan]) -> None:
        with self.management.session() as session:
            for vlan in sorted({change.vlan for change in changes}):
                self.management.create_vlan(session, vlan)
            for change in changes:
                try:
                    session.command(f"port/setvlan {int(change.port_id)} {change.vlan}")
                except VdeCommandError as exc:
                    if exc.code == NO_SUCH_PORT:
                        raise SwitchError(
                            f"vde switch {self.name} has no port {change.port_id} (nothing is "
                            "plugged in and it was not made with port/create)") from None
                    raise
