"""The clients' functional runs hold Enclume to tests/clients/known_failures.py exactly."""

from __future__ import annotations

import pytest

from tests.clients import expectations
from tests.clients.expectations import problems
from tests.clients.known_failures import SUITE_PACKAGES, Known
from tests.support.client_functional import Outcome

SUITE = "openstacksdk"
PACKAGE = SUITE_PACKAGES[SUITE]
# The mechanism is tested on entries of its own: the real list may be empty (it is when every
# test of both suites passes).
LISTED = [Known(SUITE, "v1.test_node.TestListedSkip", "skip", "needs a newer microversion"),
          Known(SUITE, "v1.test_port.TestListedFail", "fail", "a known difference")]


@pytest.fixture(autouse=True)
def _listed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(expectations, "KNOWN", tuple(LISTED))


def as_listed() -> list[Outcome]:
    """One test under each entry, ending as listed, and one unlisted test that passes."""
    outcomes = [Outcome(f"{PACKAGE}.{known.tests}.test_x", known.outcome, "") for known in LISTED]
    return [*outcomes, Outcome(f"{PACKAGE}.v1.test_node.TestNodeUnlisted.test_y", "pass", "")]


def test_outcomes_as_listed_are_accepted() -> None:
    assert problems(SUITE, as_listed()) == []


def test_an_unlisted_failure_is_refused() -> None:
    outcomes = [*as_listed(), Outcome(f"{PACKAGE}.v1.test_node.TestNew.test_z", "error", "boom")]
    assert problems(SUITE, outcomes) == [
        "v1.test_node.TestNew.test_z: expected pass, got error\nboom"]


def test_a_listed_failure_that_passes_is_refused() -> None:
    outcomes = as_listed()
    outcomes[0] = Outcome(outcomes[0].test_id, "pass", "")
    assert problems(SUITE, outcomes) == [
        f"{LISTED[0].tests}.test_x: expected {LISTED[0].outcome}, got pass"]


def test_an_entry_that_names_no_test_is_refused() -> None:
    outcomes = as_listed()[1:]
    assert problems(SUITE, outcomes) == [
        f"known-failure entry {LISTED[0].tests!r} matches no test of {SUITE}"]
