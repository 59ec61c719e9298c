"""Where dnsmasq starts looking for a client's dynamic address (``address_allocate`` in its
dhcp.c: an SDBM hash of the MAC, modulo the size of the range), to make MACs it hashes alike:
machines that, booting together, dnsmasq alone would offer one address."""

from __future__ import annotations

import ipaddress
import secrets


def dnsmasq_seed(mac: str, bounds: tuple[str, str]) -> int:
    low, high = (int(ipaddress.IPv4Address(bound)) for bound in bounds)
    j = 0
    for byte in bytes.fromhex(mac.replace(":", "")):
        j = (byte + (j << 6) + (j << 16) - j) & 0xFFFFFFFF
    return low + (j or 1) % (high - low + 1)


def macs_hashed_alike(count: int, bounds: tuple[str, str], prefix: str = "52:54:00") -> list[str]:
    """``count`` MACs (``prefix`` + 3 bytes, from a random start) with one dnsmasq seed."""
    start = secrets.randbelow(1 << 24)
    macs: list[str] = []
    seed = None
    for step in range(1 << 24):
        number = (start + step) % (1 << 24)
        mac = prefix + "".join(f":{(number >> shift) & 0xFF:02x}" for shift in (16, 8, 0))
        if seed is None:
            seed = dnsmasq_seed(mac, bounds)
        elif dnsmasq_seed(mac, bounds) != seed:
            continue
        macs.append(mac)
        if len(macs) == count:
            return macs
    raise AssertionError(f"no {count} MACs with one seed in {bounds}")
