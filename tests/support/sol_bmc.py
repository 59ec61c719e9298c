"""A BMC that serves Serial-over-LAN: OpenIPMI's ``ipmi_sim`` (Debian package openipmi).

The lab's pyghmi emulator (tests/support/ipmi_bmc.py) and virtualbmc do no SOL; ipmi_sim does,
carrying its SOL payload to a serial line given as ``sol "tcp:HOST:PORT"``, which it connects
to. The line is ``serial_target``: a TCP address the caller listens on (``SerialLine`` here,
standing for the machine's serial port; in the lab, QEMU's ``-serial`` socket).

ipmi_sim speaks RMCP+ with cipher suite 3 (SHA-1): pyghmi falls back to it by itself, ipmitool
needs ``-C 3``. Its users are ``admin``/``password`` given here, on ADMINISTRATOR.

ipmi_sim keeps the last SOL sequence number it received across payload activations: a new
console whose first packet repeats the previous console's last number (pyghmi starts every
console at 1) has that packet taken for a retransmission and its bytes dropped. A test that
opens several consoles on one emulator in turn types twice in each (tests end at 2).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

from lab.local_service import free_port
from tests.support.procfs import stop_process

IPMI_SIM = shutil.which("ipmi_sim") or "/usr/bin/ipmi_sim"
USER = "admin"

EMULATION = """mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
"""


def lan_conf(port: int, serial_target: tuple[str, int], password: str) -> str:
    host, serial_port = serial_target
    return f"""name "enclume-sol"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 {port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  sol "tcp:{host}:{serial_port}" 115200
user 2 true "{USER}" "{password}" admin 10 none md2 md5 straight
"""


class SerialLine:
    """The machine's side of the serial line: a TCP port ipmi_sim connects to."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._peer: socket.socket | None = None
        self._received = bytearray()
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                peer, _ = self._listener.accept()
            except OSError:
                return
            self._peer = peer
            while True:
                try:
                    data = peer.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    break
                with self._lock:
                    self._received += data

    @property
    def connected(self) -> bool:
        return self._peer is not None

    def send(self, data: bytes) -> None:
        assert self._peer is not None, "ipmi_sim is not connected to the serial line"
        self._peer.sendall(data)

    def received(self) -> bytes:
        with self._lock:
            return bytes(self._received)

    def close(self) -> None:
        self._listener.close()
        if self._peer is not None:
            self._peer.close()


class SolBmc:
    """ipmi_sim on 127.0.0.1:<free UDP port>, its SOL carried to ``serial_target``."""

    def __init__(self, workdir: Path, serial_target: tuple[str, int],
                 password: str = "sol-7c1e") -> None:
        self.workdir = workdir
        self.password = password
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "lan.conf").write_text(lan_conf(self.port, serial_target, password))
        (workdir / "sim.emu").write_text(EMULATION)
        self.log = workdir / "ipmi_sim.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> SolBmc:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [IPMI_SIM, "-n", "-c", str(self.workdir / "lan.conf"),
                 "-f", str(self.workdir / "sim.emu"), "-s", str(self.workdir / "state")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, 10)

    def driver_info(self, **extra: Any) -> dict[str, Any]:
        return {"ipmi_address": "127.0.0.1", "ipmi_port": self.port,
                "ipmi_username": USER, "ipmi_password": self.password, **extra}

    def __enter__(self) -> SolBmc:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

