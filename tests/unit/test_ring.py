"""The hash ring: agreement with uhashring, arcs for range queries, minimal movement."""

from __future__ import annotations

import uuid

from uhashring import HashRing

from services.common.ring import VNODES, ConductorRing, ring_hash

KEYS = [str(uuid.UUID(int=i * 7919 + 17)) for i in range(3000)]


def owner_by_arcs(ring: ConductorRing, key: str) -> str:
    value = ring_hash(key)
    owners = [h for h in ring.hostnames if any(lo <= value < hi for lo, hi in ring.arcs(h))]
    assert len(owners) == 1, (key, owners)
    return owners[0]


def test_owner_is_what_uhashring_says() -> None:
    hosts = ["c1", "c2", "c3"]
    ring = ConductorRing(hosts)
    reference = HashRing(nodes=hosts, vnodes=VNODES, hash_fn=ring_hash)
    assert all(ring.owner(k) == reference.get_node(k) for k in KEYS)


def test_arcs_partition_the_hash_space_exactly() -> None:
    ring = ConductorRing(["a", "b", "c", "d"])
    assert all(owner_by_arcs(ring, k) == ring.owner(k) for k in KEYS)


def test_rings_built_in_any_order_agree() -> None:
    one, two = ConductorRing(["x", "y", "z"]), ConductorRing(["z", "x", "y", "y"])
    assert [one.owner(k) for k in KEYS] == [two.owner(k) for k in KEYS]


def test_losing_a_conductor_moves_only_its_nodes_and_shares_are_fair() -> None:
    full, reduced = ConductorRing(["c1", "c2", "c3"]), ConductorRing(["c1", "c3"])
    moved = [k for k in KEYS if full.owner(k) != reduced.owner(k)]
    assert all(full.owner(k) == "c2" for k in moved)
    shares = {h: sum(full.owner(k) == h for k in KEYS) / len(KEYS) for h in full.hostnames}
    assert all(0.20 <= share <= 0.45 for share in shares.values()), shares


def test_empty_ring_owns_nothing() -> None:
    ring = ConductorRing([])
    assert not ring and ring.owner(KEYS[0]) is None and ring.arcs("c1") == []


def test_hash_fits_a_signed_bigint() -> None:
    assert all(0 <= ring_hash(k) < 2**63 for k in KEYS)
