"""Facts about a network interface of this host: its IPv4 address and its IPv6 addresses."""

from __future__ import annotations

import fcntl
import socket
import struct
from ipaddress import IPv4Interface, IPv6Address
from pathlib import Path

SIOCGIFADDR = 0x8915
SIOCGIFNETMASK = 0x891B
IF_INET6 = Path("/proc/net/if_inet6")
IFNAMSIZ = 16


class InterfaceError(RuntimeError):
    """The interface does not exist or lacks what the boot service needs."""


def _ioctl_address(sock: socket.socket, request: int, name: str) -> str:
    packed = struct.pack("256s", name.encode()[: IFNAMSIZ - 1])
    return socket.inet_ntoa(fcntl.ioctl(sock.fileno(), request, packed)[20:24])


def ipv4_interface(name: str) -> IPv4Interface:
    """The (primary) IPv4 address of interface ``name`` with its prefix."""
    if not Path(f"/sys/class/net/{name}").exists():
        raise InterfaceError(f"there is no network interface {name!r} on this host")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            address = _ioctl_address(sock, SIOCGIFADDR, name)
            netmask = _ioctl_address(sock, SIOCGIFNETMASK, name)
        except OSError as exc:
            raise InterfaceError(f"the network interface {name!r} has no IPv4 address") from exc
    return IPv4Interface(f"{address}/{netmask}")


def ipv6_addresses(name: str) -> list[IPv6Address]:
    """The IPv6 addresses of interface ``name`` (link-local ones included)."""
    found = []
    if IF_INET6.exists():
        for line in IF_INET6.read_text().splitlines():
            fields = line.split()
            if len(fields) == 6 and fields[5] == name:
                found.append(IPv6Address(int(fields[0], 16)))
    return found
