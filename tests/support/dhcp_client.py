"""A scapy DHCP test client that lives in a network namespace.

Run as ``ip netns exec NS python -m tests.support.dhcp_client IFACE``: it reads one JSON request
per line on stdin and answers one JSON line on stdout, so a test pays scapy's import once and
then probes in milliseconds. ``DhcpClient`` is the test side of it.

Requests:
- ``{"op": "discover", "mac": M, "arch": 0|7|9|null, "ipxe": bool, "port": 67, "wait": S}``:
  a DHCPDISCOVER as a PXE ROM (``arch`` set), as iPXE (``ipxe``: user-class "iPXE" and option
  175) or as a plain client; answers every BOOTREPLY with the same xid seen within ``wait``.
- ``{"op": "boot_request", "mac": M, "arch": A, "client_ip": IP, "server_ip": IP,
  "server_mac": M, "boot_item": [TYPE, LAYER] | null}``: the second step of PXE with a proxyDHCP
  server, a DHCPREQUEST unicast to the proxy's port 4011 from the address the client leased; the
  client answers ARP for that address meanwhile, as a PXE ROM does.
- ``{"op": "raw", "mac": M, "payloads": [HEX, ...], "port": 67}``: broadcast UDP from
  0.0.0.0:68 with each payload (malformed packets).
- ``{"op": "router_solicitation", "wait": S}``: answers whether a router advertisement came.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DHCP_MAGIC = b"\x63\x82\x53\x63"
PXE_VENDOR_CLASS = "PXEClient:Arch:{arch:05d}:UNDI:002001"
OPTION_NAMES = {1: "subnet_mask", 43: "vendor_specific", 53: "message_type", 54: "server_id",
                60: "vendor_class", 66: "tftp_server", 67: "bootfile"}


def encode_options(options: Iterable[tuple[int, bytes]]) -> bytes:
    """DHCP options as TLVs after the magic cookie, ended by option 255."""
    body = b"".join(bytes([code, len(value)]) + value for code, value in options)
    return DHCP_MAGIC + body + b"\xff"


def discover_options(arch: int | None, ipxe: bool) -> list[tuple[int, bytes]]:
    options: list[tuple[int, bytes]] = [(53, b"\x01"), (55, bytes([1, 3, 43, 60, 66, 67]))]
    if arch is not None:
        options += pxe_options(arch)
    if ipxe:
        # iPXE's own markers: user-class "iPXE" and its feature option 175 (encapsulated).
        options += [(77, b"iPXE"), (175, b"\xb1\x05\x01\x80\x86\x10\x0e\x13\x01\x01")]
    return options


def pxe_options(arch: int) -> list[tuple[int, bytes]]:
    """What a PXE ROM of architecture ``arch`` says about itself (options 60, 93, 94, 97)."""
    return [(60, PXE_VENDOR_CLASS.format(arch=arch).encode()), (93, arch.to_bytes(2, "big")),
            (94, b"\x01\x02\x01"), (97, b"\x00" + bytes(range(16)))]


def boot_request_options(arch: int, boot_item: tuple[int, int] | None) -> list[tuple[int, bytes]]:
    options = [(53, b"\x03"), (55, bytes([1, 3, 43, 60, 66, 67])), *pxe_options(arch)]
    if boot_item is not None:
        kind, layer = boot_item
        # Option 43, sub-option 71: the boot server type and layer the client asks for.
        options.append((43, b"\x47\x04" + kind.to_bytes(2, "big") + layer.to_bytes(2, "big")
                        + b"\xff"))
    return options


def _serve(interface: str) -> None:
    from scapy.all import (
        ARP,
        BOOTP,
        DHCP,
        IP,
        UDP,
        Ether,
        ICMPv6ND_RA,
        ICMPv6ND_RS,
        ICMPv6NDOptPrefixInfo,
        IPv6,
        conf,
    )

    conf.checkIPaddr = False
    conf.verb = 0
    sock = conf.L2socket(iface=interface)
    own_mac = Path(f"/sys/class/net/{interface}/address").read_text().strip()

    def send_udp(mac: str, port: int, payload: bytes) -> None:
        frame = (Ether(src=mac, dst="ff:ff:ff:ff:ff:ff")
                 / IP(src="0.0.0.0", dst="255.255.255.255")
                 / UDP(sport=68, dport=port) / payload)
        sock.send(frame)

    def receive(until: float) -> Iterable[Any]:
        while (left := until - time.monotonic()) > 0:
            ready, _, _ = select.select([sock], [], [], left)
            if ready:
                packet = sock.recv()
                if packet is not None:
                    yield packet

    def bootreply(packet: Any, xid: int) -> dict[str, Any] | None:
        """The packet described, if it is a BOOTREPLY to ``xid`` (from port 67 or 4011)."""
        if UDP not in packet or packet[UDP].dport != 68:
            return None
        reply = BOOTP(bytes(packet[UDP].payload))
        if reply.op != 2 or reply.xid != xid:
            return None
        return _describe(packet, reply, DHCP)

    def discover(request: dict[str, Any]) -> dict[str, Any]:
        mac = request["mac"]
        xid = int.from_bytes(os.urandom(4), "big")
        chaddr = bytes.fromhex(mac.replace(":", ""))
        options = encode_options(discover_options(request.get("arch"), request.get("ipxe", False)))
        bootp = BOOTP(op=1, xid=xid, chaddr=chaddr, flags=0x8000, options=options)
        send_udp(mac, request.get("port", 67), bytes(bootp))
        replies = []
        for packet in receive(time.monotonic() + request.get("wait", 1.0)):
            if (reply := bootreply(packet, xid)) is not None:
                replies.append(reply)
        return {"replies": replies}

    def boot_request(request: dict[str, Any]) -> dict[str, Any]:
        mac, client_ip = request["mac"], request["client_ip"]
        xid = int.from_bytes(os.urandom(4), "big")
        item = request.get("boot_item")
        options = encode_options(boot_request_options(request["arch"],
                                                      tuple(item) if item else None))
        bootp = BOOTP(op=1, xid=xid, chaddr=bytes.fromhex(mac.replace(":", "")),
                      ciaddr=client_ip, options=options)
        sock.send(Ether(src=mac, dst=request["server_mac"])
                  / IP(src=client_ip, dst=request["server_ip"])
                  / UDP(sport=68, dport=request.get("port", 4011)) / bootp)
        replies = []
        for packet in receive(time.monotonic() + request.get("wait", 1.0)):
            if ARP in packet and packet[ARP].op == 1 and packet[ARP].pdst == client_ip:
                sock.send(Ether(src=mac, dst=packet[ARP].hwsrc)
                          / ARP(op=2, hwsrc=mac, psrc=client_ip, hwdst=packet[ARP].hwsrc,
                                pdst=packet[ARP].psrc))
            elif (reply := bootreply(packet, xid)) is not None:
                replies.append(reply)
        return {"replies": replies}

    def router_solicitation(request: dict[str, Any]) -> dict[str, Any]:
        frame = (Ether(src=own_mac, dst="33:33:00:00:00:02")
                 / IPv6(src="::", dst="ff02::2") / ICMPv6ND_RS())
        sock.send(frame)
        for packet in receive(time.monotonic() + request.get("wait", 3.0)):
            if ICMPv6ND_RA in packet:
                advert = packet[ICMPv6ND_RA]
                prefixes = []
                option = advert.payload
                while option and option.name != "NoPayload":
                    if isinstance(option, ICMPv6NDOptPrefixInfo):
                        prefixes.append({"prefix": option.prefix, "autonomous": bool(option.A)})
                    option = option.payload
                return {"advertisement": True, "source": packet[IPv6].src,
                        "managed": bool(advert.M), "other": bool(advert.O),
                        "router_lifetime": advert.routerlifetime, "prefixes": prefixes}
        return {"advertisement": False}

    def raw(request: dict[str, Any]) -> dict[str, Any]:
        errors = []
        for payload in request["payloads"]:
            try:
                send_udp(request["mac"], request.get("port", 67), bytes.fromhex(payload))
            except OSError as exc:
                errors.append(str(exc))
        return {"sent": len(request["payloads"]) - len(errors), "errors": errors}

    handlers = {
        "discover": discover,
        "raw": raw,
        "router_solicitation": router_solicitation,
        "boot_request": boot_request,
    }
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        print(json.dumps(handlers[request["op"]](request)), flush=True)


def _describe(packet: Any, reply: Any, dhcp: Any) -> dict[str, Any]:
    options: dict[str, str] = {}
    if dhcp in reply:
        for option in reply[dhcp].options:
            if isinstance(option, tuple) and len(option) >= 2:
                name, value = option[0], option[1]
                # latin-1 keeps every byte (binary options such as 43 survive JSON).
                options[str(name)] = (value.decode("latin-1") if isinstance(value, bytes)
                                      else str(value))
    return {
        "source": packet.payload.src,
        "source_mac": packet.src,
        "yiaddr": reply.yiaddr,
        "siaddr": reply.siaddr,
        "file": reply.file.rstrip(b"\x00").decode(errors="replace"),
        "options": options,
    }


@dataclass
class Reply:
    """One BOOTREPLY as the client saw it."""

    source: str
    source_mac: str
    yiaddr: str
    siaddr: str
    file: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def message_type(self) -> str:
        return self.options.get("message-type", "")

    @property
    def vendor_class(self) -> str:
        return self.options.get("vendor_class_id", "")

    def pxe_suboptions(self) -> dict[int, bytes]:
        """The PXE sub-options of option 43 (vendor-specific), by code."""
        raw = self.options.get("vendor_specific", "").encode("latin-1")
        found: dict[int, bytes] = {}
        index = 0
        while index + 2 <= len(raw) and raw[index] != 255:
            code, length = raw[index], raw[index + 1]
            found[code] = raw[index + 2:index + 2 + length]
            index += 2 + length
        return found

    def pxe_menu_types(self) -> list[int]:
        """The boot server types of the PXE boot menu (sub-option 9), in menu order."""
        menu = self.pxe_suboptions().get(9, b"")
        types, index = [], 0
        while index + 3 <= len(menu):
            types.append(int.from_bytes(menu[index:index + 2], "big"))
            index += 3 + menu[index + 2]
        return types

    @property
    def bootfile(self) -> str:
        """The boot file name: the BOOTP ``file`` field, or option 67 if the server used that."""
        return self.file or self.options.get("boot-file-name", "").rstrip("\x00")


class DhcpClient:
    """The test side: one client process in namespace ``netns`` on ``interface``."""

    def __init__(self, netns: str, interface: str) -> None:
        self._process = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, "-m", "tests.support.dhcp_client",
             interface],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            cwd=Path(__file__).resolve().parents[2])
        if json.loads(self._readline(timeout=30)) != {"ready": True}:
            raise RuntimeError("the DHCP client did not start")

    def _readline(self, timeout: float) -> str:
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError("the DHCP client did not answer")
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the DHCP client exited ({self._process.poll()})")
        return line

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        answer: dict[str, Any] = json.loads(self._readline(request.get("wait", 1.0) + 10))
        return answer

    def discover(self, mac: str, *, arch: int | None = None, ipxe: bool = False,
                 port: int = 67, wait: float = 1.0) -> list[Reply]:
        answer = self._call({"op": "discover", "mac": mac, "arch": arch, "ipxe": ipxe,
                             "port": port, "wait": wait})
        return [Reply(**reply) for reply in answer["replies"]]

    def boot_request(self, mac: str, *, arch: int, client_ip: str, server: Reply,
                     boot_item: tuple[int, int] | None = None, wait: float = 1.0) -> list[Reply]:
        """PXE's second step: ask the proxyDHCP server ``server`` (its offer) on port 4011."""
        answer = self._call({"op": "boot_request", "mac": mac, "arch": arch,
                             "client_ip": client_ip, "server_ip": server.source,
                             "server_mac": server.source_mac,
                             "boot_item": list(boot_item) if boot_item else None, "wait": wait})
        return [Reply(**reply) for reply in answer["replies"]]

    def send_raw(self, mac: str, payloads: list[bytes], port: int = 67) -> None:
        """Broadcasts each payload as a UDP datagram from ``mac``, 0.0.0.0:68 to ``port``."""
        answer = self._call({"op": "raw", "mac": mac, "payloads": [p.hex() for p in payloads],
                             "port": port})
        if answer["errors"]:
            raise OSError(f"{len(answer['errors'])} packet(s) not sent: {answer['errors'][0]}")

    def router_advertisement(self, wait: float = 3.0) -> dict[str, Any] | None:
        """The router advertisement answering a solicitation (flags, prefixes), or None."""
        answer = self._call({"op": "router_solicitation", "wait": wait})
        return answer if answer["advertisement"] else None

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


if __name__ == "__main__":
    _serve(sys.argv[1])
