"""LLDP: listening for the switch's advertisements on every interface, and decoding them.

Switches send LLDP frames (EtherType 0x88cc) every ~30 s. The agent listens from its start on a
raw AF_PACKET socket per interface and keeps the latest frame each one got; the inventory reports
its TLVs as Ironic's agent does: ``[[type, "hex value"], ...]``.
"""

from __future__ import annotations

import logging
import select
import socket
import struct
import threading

LOG = logging.getLogger(__name__)
ETH_P_LLDP = 0x88CC
ETH_HEADER = 14
END_OF_LLDPDU = 0
POLL_S = 1.0


def parse_tlvs(frame: bytes) -> list[list[object]]:
    """The TLVs of an Ethernet frame carrying LLDP (up to End of LLDPDU); [] if malformed."""
    if len(frame) < ETH_HEADER or struct.unpack(">H", frame[12:14])[0] != ETH_P_LLDP:
        return []
    tlvs: list[list[object]] = []
    at = ETH_HEADER
    while at + 2 <= len(frame):
        header, = struct.unpack(">H", frame[at:at + 2])
        kind, length = header >> 9, header & 0x1FF
        value = frame[at + 2:at + 2 + length]
        if len(value) < length:
            return []  # truncated frame: report nothing rather than garbage
        if kind == END_OF_LLDPDU:
            break
        tlvs.append([kind, value.hex()])
        at += 2 + length
    return tlvs


class LldpListener:
    """Background listener; ``neighbours()`` maps interface name → TLVs of its last frame."""

    def __init__(self, interfaces: list[str]) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, list[list[object]]] = {}
        self._sockets: dict[socket.socket, str] = {}
        self._stop = threading.Event()
        for name in interfaces:
            try:
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_LLDP))
                sock.bind((name, ETH_P_LLDP))
            except OSError as exc:
                LOG.warning("cannot listen to LLDP on %s: %s", name, exc.strerror or exc)
                continue
            self._sockets[sock] = name
        self._thread = threading.Thread(target=self._run, name="lldp", daemon=True)

    def start(self) -> LldpListener:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set() and self._sockets:
            ready, _, _ = select.select(list(self._sockets), [], [], POLL_S)
            for sock in ready:
                try:
                    frame = sock.recv(9216)
                except OSError:
                    continue
                tlvs = parse_tlvs(frame)
                if tlvs:
                    with self._lock:
                        self._seen[self._sockets[sock]] = tlvs
        for sock in self._sockets:
            sock.close()

    def neighbours(self) -> dict[str, list[list[object]]]:
        with self._lock:
            return dict(self._seen)

    def stop(self) -> None:
        """Ask the thread to end (it notices within POLL_S; it is a daemon, not waited for)."""
        self._stop.set()
