"""Wake-on-LAN magic packets, built and sent: shared by the ``wol`` power interface (which
sends them from the conductor) and the boot service (which sends them out of its provisioning
interface when a conductor asks it: ``POST /wake``, services/boot/wake.py)."""

from __future__ import annotations

import re
import socket

from services.common.exceptions import DriverError

MAC = re.compile(r"[0-9a-f]{2}([:-][0-9a-f]{2}){5}")
PASSWORD = re.compile(r"[0-9a-f]{2}([:-][0-9a-f]{2}){3}([:-][0-9a-f]{2}){0,2}")
# What a conductor shows the boot service's /wake: the cluster's shared secret (as its RPC).
SECRET_HEADER = "X-Enclume-RPC-Secret"


def _hex_bytes(text: str) -> bytes:
    return bytes.fromhex(re.sub("[:-]", "", text))


def magic_packet(mac: str, password: str | None = None) -> bytes:
    """6 x 0xFF, the MAC 16 times, then the SecureOn password (4 or 6 bytes) if any."""
    if not MAC.fullmatch(mac.lower()):
        raise DriverError(f"{mac!r} is not a MAC address")
    packet = b"\xff" * 6 + _hex_bytes(mac) * 16
    if password:
        packet += _hex_bytes(password)
    return packet


def send(packets: list[bytes], host: str, port: int, interface: str | None = None) -> None:
    """Send ``packets`` to ``host``:``port`` over UDP (broadcasts allowed), out of
    ``interface`` when one is named (SO_BINDTODEVICE: root or CAP_NET_RAW)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        try:
            if interface is not None:
                sender.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE,
                                  interface.encode())
            for packet in packets:
                sender.sendto(packet, (host, port))
        except OSError as exc:
            where = f" out of {interface}" if interface else ""
            raise DriverError(f"could not send the magic packet to {host}:{port}{where}: "
                              f"{exc.strerror or exc}") from None
