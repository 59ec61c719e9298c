"""An address of the DHCP range reserved for every MAC the boot service answers.

dnsmasq picks a dynamic address from a hash of the MAC and keeps no record of what it offered,
so two machines whose MACs hash alike, booting together (a classroom woken at once), are
offered the same address: one of them then gets a NAK and its boot may give up. A reserved
address per known MAC (a ``dhcp-host`` with an address) cannot be offered to anyone else.

A reservation lasts as long as the dnsmasq it was written to: dnsmasq never forgets a record
it read and refuses a second record for the same address, so an address is never moved to
another MAC (enclume-boot empties its host files and starts dnsmasq afresh at each start). A
MAC being answered for the first time gets its unexpired lease (dnsmasq's lease file) if it
has one, else the first free address from a point chosen by a hash of the MAC, skipping
addresses leased to other clients (machines under discovery keep dynamic addresses).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Iterable, Mapping
from ipaddress import IPv4Address

LOG = logging.getLogger(__name__)


class AddressBook:
    """MAC → reserved address, within ``[start, end]`` less ``excluded``."""

    def __init__(self, start: IPv4Address, end: IPv4Address,
                 excluded: Collection[IPv4Address] = ()) -> None:
        self.start, self.end = int(start), int(end)
        self.excluded = frozenset(int(address) for address in excluded)
        self.reserved: dict[str, IPv4Address] = {}
        self._short_of: int = 0  # MACs left without an address at the last assign

    @property
    def size(self) -> int:
        return self.end - self.start + 1

    def usable(self, address: IPv4Address) -> bool:
        return self.start <= int(address) <= self.end and int(address) not in self.excluded

    def assign(self, macs: Iterable[str], leases: Mapping[str, IPv4Address] | None = None,
               ) -> dict[str, IPv4Address]:
        """Reserve an address for each of ``macs`` (lower case) that has none yet; ``leases``:
        what dnsmasq leased, by MAC. Returns every reservation. MACs beyond the range's
        capacity get none (logged)."""
        leases = leases or {}
        new = sorted(set(macs) - set(self.reserved))
        used = {int(address) for address in self.reserved.values()}
        for mac in new:
            leased = leases.get(mac)
            if leased is not None and self.usable(leased) and int(leased) not in used:
                self.reserved[mac] = leased
                used.add(int(leased))
        taken = used | {int(address) for mac, address in leases.items()
                        if mac not in self.reserved}
        short = 0
        for mac in new:
            if mac in self.reserved:
                continue
            address = self._free_from(self._seed(mac), taken)
            if address is None:
                short += 1
                continue
            self.reserved[mac] = IPv4Address(address)
            taken.add(address)
        if short and short != self._short_of:
            LOG.warning("the DHCP range %s-%s has no address left for %d answered MAC(s): "
                        "they get dynamic addresses, if any (widen the range)",
                        IPv4Address(self.start), IPv4Address(self.end), short)
        self._short_of = short
        return dict(self.reserved)

    def _seed(self, mac: str) -> int:
        digest = hashlib.blake2b(mac.encode(), digest_size=8).digest()
        return self.start + int.from_bytes(digest, "big") % self.size

    def _free_from(self, seed: int, taken: Collection[int]) -> int | None:
        for step in range(self.size):
            address = self.start + (seed - self.start + step) % self.size
            if address not in taken and address not in self.excluded:
                return address
        return None
