"""UUIDs that the conductors' hash ring gives one chosen conductor: for the tests that need a
node owned by a given conductor of several, without making nodes until one lands there."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Iterator

from services.common.ring import ConductorRing


def uuids_owned_by(owner: str, hostnames: Iterable[str], series: str) -> Iterator[str]:
    """The UUIDs of a fixed series (uuid5 of ``SERIES-0``, ``SERIES-1``...) that the ring of
    ``hostnames`` gives ``owner``, in order: the same ones on every run."""
    ring = ConductorRing(list(hostnames))
    candidates = (str(uuid.uuid5(uuid.NAMESPACE_URL, f"{series}-{number}"))
                  for number in itertools.count())
    return (candidate for candidate in candidates if ring.owner(candidate) == owner)
