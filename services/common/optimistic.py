"""Optimistic concurrency for PATCH (nodes, ports): compare-and-set on the fields a patch was
computed from.

The API reads a resource, applies the JSON patch and validates the result outside any lock;
the conductor writes it under the node's lock only if the fields still hold the values the API
read (`check_unchanged`, else `StaleUpdate`, 409). The API then reads again and re-applies the
patch to the fresh document (`retrying_stale`), a few times, so concurrent writers merge; a
writer that keeps losing gets the 409.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from services.common.exceptions import StaleUpdate
from services.common.retry import retry_while

T = TypeVar("T")
ATTEMPTS = 8
BACKOFF_S = 0.02  # grows with each attempt, randomised so retrying writers spread out


def check_unchanged(row: object, expected: Mapping[str, Any] | None, resource: str) -> None:
    """Raise StaleUpdate if a field of ``row`` no longer has its ``expected`` value."""
    if expected and any(getattr(row, field) != value for field, value in expected.items()):
        raise StaleUpdate.of(resource)


def retrying_stale(attempt: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """``attempt()`` (read, patch, write), again while it raises StaleUpdate."""
    return retry_while(attempt, lambda exc: isinstance(exc, StaleUpdate), attempts, BACKOFF_S)
