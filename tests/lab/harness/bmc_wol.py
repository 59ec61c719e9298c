"""Wake-on-LAN for lab machines without a BMC: a listener that powers a machine on when a magic
packet for its MAC arrives.

A real NIC sees the magic packet as an Ethernet frame on its link, whatever the IP addresses. The
lab's stand-in is a namespace host on the machine's switch port VLAN (so the packet really crosses
the vde switch) with a UDP socket on 0.0.0.0:PORT, made inside that namespace: it receives the
subnet-directed broadcast the Enclume `wol` driver sends. The magic packet parser is the one of
the WoL protocol peer (tests/support/wol_listener.py); a SecureOn password, when the machine has
one, must match. The machine boots in its own boot order (the lab's Wake-on-LAN machines are made
network-first, as PCs woken for PXE are set up).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass

from tests.lab.harness.bmc import QemuBackedMachine
from tests.lab.harness.netns import NetnsHost
from tests.lab.harness.nsenter import in_netns
from tests.support.wol_listener import MAX_DATAGRAM, WOL_PORT, parse_magic_packet

LOG = logging.getLogger(__name__)
POLL_S = 0.2


@dataclass(frozen=True)
class Wake:
    mac: str
    source: str
    at: float  # time.monotonic()
    powered_on: bool  # False: the machine was already on, or the password did not match


class WolListener:
    """Listens in `host`'s namespace; wakes the registered machines. Close it when done."""

    def __init__(self, host: NetnsHost, port: int = WOL_PORT) -> None:
        self.host = host
        self.wakes: list[Wake] = []
        self._machines: dict[str, tuple[QemuBackedMachine, str | None]] = {}
        self._stop = threading.Event()

        def bind() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("0.0.0.0", port))  # broadcasts must arrive too
            sock.settimeout(POLL_S)
            return sock

        self._socket = in_netns(host.name, bind)
        self.port = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._listen, name=f"wol-{host.name}",
                                        daemon=True)
        self._thread.start()

    def add(self, machine: QemuBackedMachine, password: str | None = None) -> None:
        """Wake `machine` on magic packets for its MAC (and SecureOn `password`, if given)."""
        self._machines[machine.machine.mac.lower()] = (
            machine, password.lower().replace("-", ":") if password else None)

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                payload, source = self._socket.recvfrom(MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            try:
                self._handle(payload, source[0])
            except Exception:  # a bad datagram or a failing machine must not end the listener
                LOG.exception("Wake-on-LAN datagram from %s not handled", source[0])

    def _handle(self, payload: bytes, source: str) -> None:
        magic = parse_magic_packet(payload)
        if magic is None or magic.mac not in self._machines:
            return
        machine, password = self._machines[magic.mac]
        wake = password is None or magic.password == password
        was_off = machine.power_state() != "on"
        if wake and was_off:
            machine.power_on()
        self.wakes.append(Wake(magic.mac, source, time.monotonic(), wake and was_off))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=POLL_S * 10)
        self._socket.close()
