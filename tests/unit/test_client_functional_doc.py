"""docs/api.md lists exactly the clients' functional tests that do not pass, as
tests/clients/known_failures.py does (the list the integration run holds Enclume to)."""

from __future__ import annotations

from tests.clients.known_failures import (
    BEGIN,
    DOC,
    END,
    KNOWN,
    SUITE_PACKAGES,
    documented,
    markdown,
)


def test_the_doc_holds_the_generated_list() -> None:
    text = DOC.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert documented() == markdown(), "run: python -m tests.clients.known_failures"


def test_every_entry_is_well_formed_and_named_once() -> None:
    for known in KNOWN:
        assert known.suite in SUITE_PACKAGES
        assert known.outcome in {"fail", "skip"}
        assert known.reason and "|" not in known.reason
    names = [(known.suite, known.tests) for known in KNOWN]
    assert len(names) == len(set(names))
