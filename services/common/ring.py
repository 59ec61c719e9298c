"""The consistent hash ring that maps nodes to conductors (uhashring, one ring per group).

Every API and conductor process builds the same ring from the same live conductors, so they all
agree on each node's owner. The hash of a node is a 63-bit prefix of the MD5 of its UUID: small
enough for a BIGINT column (``nodes.ring_hash``), so that a conductor can select the nodes it owns
with a range query over its arcs of the ring instead of reading the whole table.
"""

from __future__ import annotations

from bisect import bisect
from collections.abc import Iterable
from hashlib import md5

from uhashring import HashRing

VNODES = 160  # uhashring's default number of points per conductor
MAX_HASH = (1 << 63) - 1


def ring_hash(key: str) -> int:
    return int.from_bytes(md5(key.encode()).digest()[:8], "big") >> 1


class ConductorRing:
    """The ring of one conductor group."""

    def __init__(self, hostnames: Iterable[str]) -> None:
        self.hostnames = tuple(sorted(set(hostnames)))
        self._ring = HashRing(nodes=list(self.hostnames), vnodes=VNODES, hash_fn=ring_hash)
        points = self._ring.get_points() if self.hostnames else []
        self._positions = [position for position, _ in points]
        self._owners = [owner for _, owner in points]

    def __bool__(self) -> bool:
        return bool(self.hostnames)

    def owner(self, node_uuid: str) -> str | None:
        return self.owner_of_hash(ring_hash(node_uuid))

    def owner_of_hash(self, value: int) -> str | None:
        if not self._positions:
            return None
        index = bisect(self._positions, value)
        return self._owners[index if index < len(self._positions) else 0]

    def arcs(self, hostname: str) -> list[tuple[int, int]]:
        """Half-open ranges [low, high) of ``ring_hash`` values that ``hostname`` owns."""
        if hostname not in self.hostnames:
            return []
        ranges: list[tuple[int, int]] = []
        # As uhashring decides: a point owns the hashes from the previous point (included) up
        # to itself (excluded); the first point also owns everything past the last point.
        for i, owner in enumerate(self._owners):
            if owner != hostname:
                continue
            low = self._positions[i - 1] if i > 0 else 0
            ranges.append((low, self._positions[i]))
            if i == 0:
                ranges.append((self._positions[-1], MAX_HASH + 1))
        return _merge(ranges)


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        elif low < high:
            merged.append((low, high))
    return merged
