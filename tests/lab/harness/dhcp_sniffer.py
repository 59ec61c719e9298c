"""What a network hears of DHCP: every DHCP client message (UDP to port 67) that reaches a lab
host's interface, with the client's MAC and when it arrived.

A raw AF_PACKET socket made inside the host's namespace (tests/lab/harness/nsenter.py) sees the
frames as they arrive on the tap, before the boot service's DHCP filter (iptables) or dnsmasq
decide anything: "the provisioning DHCP no longer hears the machine" is checked here, not in a
log that the filter would keep quiet anyway.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass

from tests.lab.harness.netns import TAP_NAME, NetnsHost
from tests.lab.harness.nsenter import in_netns

ETH_P_ALL = 0x0003
ETHERTYPE_IPV4 = 0x0800
IPPROTO_UDP = 17
DHCP_SERVER_PORT = 67
MAX_FRAME = 65536
POLL_S = 0.2


@dataclass(frozen=True)
class DhcpRequest:
    mac: str  # the client's (source) MAC, lower case
    at: float  # time.monotonic()


def dhcp_client_mac(frame: bytes) -> str | None:
    """The source MAC of an Ethernet frame carrying an IPv4 UDP datagram to port 67."""
    if len(frame) < 14 + 20 + 8:
        return None
    (ethertype,) = struct.unpack("!H", frame[12:14])
    if ethertype != ETHERTYPE_IPV4:
        return None
    ip_header = frame[14:]
    header_length = (ip_header[0] & 0x0F) * 4
    if ip_header[9] != IPPROTO_UDP or len(ip_header) < header_length + 8:
        return None
    (destination_port,) = struct.unpack("!H", ip_header[header_length + 2:header_length + 4])
    if destination_port != DHCP_SERVER_PORT:
        return None
    return ":".join(f"{byte:02x}" for byte in frame[6:12])


class DhcpSniffer:
    """Records the DHCP client messages arriving on `host`'s tap; close() when done."""

    def __init__(self, host: NetnsHost) -> None:
        self.requests: list[DhcpRequest] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

        def open_socket() -> socket.socket:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.bind((TAP_NAME, 0))
            sock.settimeout(POLL_S)
            return sock

        self._socket = in_netns(host.name, open_socket)
        self._thread = threading.Thread(target=self._listen, name=f"dhcp-sniffer-{host.name}",
                                        daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                frame, address = self._socket.recvfrom(MAX_FRAME)
            except TimeoutError:
                continue
            except OSError:
                return
            if address[2] == socket.PACKET_OUTGOING:
                continue
            mac = dhcp_client_mac(frame)
            if mac is not None:
                with self._lock:
                    self.requests.append(DhcpRequest(mac, time.monotonic()))

    def heard(self, mac: str, since: float = 0.0) -> list[DhcpRequest]:
        """The DHCP client messages of `mac` that arrived at or after `since` (monotonic)."""
        mac = mac.lower()
        with self._lock:
            return [request for request in self.requests
                    if request.mac == mac and request.at >= since]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=POLL_S * 10)
        self._socket.close()
