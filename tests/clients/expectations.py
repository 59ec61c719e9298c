"""Compare a suite's outcomes with tests/clients/known_failures.py: the list must stay exact.

A test that matches no entry must pass. A test under an entry must end as the entry says
(``fail`` also covers errors); every entry must match at least one test. So a new failure, a
known failure that starts passing and an entry that no longer names a test all fail the run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from tests.clients.known_failures import KNOWN, SUITE_PACKAGES, Known
from tests.support.client_functional import Outcome


def short_id(suite: str, test_id: str) -> str:
    return test_id.removeprefix(SUITE_PACKAGES[suite] + ".")


def entry_for(suite: str, test_id: str) -> Known | None:
    """The most specific entry whose prefix (module, class or test) names the test."""
    name = short_id(suite, test_id)
    matches = [known for known in KNOWN if known.suite == suite
               and (name == known.tests or name.startswith(known.tests + "."))]
    return max(matches, key=lambda known: len(known.tests), default=None)


def _expected(suite: str, test_id: str) -> str:
    known = entry_for(suite, test_id)
    return "pass" if known is None else known.outcome


def _seen(outcome: str) -> str:
    return "fail" if outcome == "error" else outcome


def problems(suite: str, outcomes: Iterable[Outcome]) -> list[str]:
    found: list[str] = []
    used: set[Known] = set()
    for outcome in outcomes:
        known = entry_for(suite, outcome.test_id)
        if known is not None:
            used.add(known)
        expected, seen = _expected(suite, outcome.test_id), _seen(outcome.outcome)
        if expected != seen:
            detail = outcome.detail.strip()[-1500:]
            found.append(f"{short_id(suite, outcome.test_id)}: expected {expected}, got "
                         f"{outcome.outcome}" + (f"\n{detail}" if detail else ""))
    found += [f"known-failure entry {known.tests!r} matches no test of {suite}"
              for known in KNOWN if known.suite == suite and known not in used]
    return found


def counts(outcomes: Iterable[Outcome]) -> Counter[str]:
    return Counter(_seen(outcome.outcome) for outcome in outcomes)
