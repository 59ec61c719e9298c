"""Runs one client's own functional tests; executed by the clients' venv, not Enclume's.

``python functional_driver.py SUITE list`` prints the suite's test ids, one a line;
``python functional_driver.py SUITE run ID...`` runs those tests and prints one JSON line a test:
``{"id": ..., "outcome": "pass|fail|error|skip", "detail": ...}``.

SUITE is ``ironicclient`` (python-ironicclient's ``ironicclient/tests/functional``) or
``openstacksdk`` (``openstack/tests/functional/baremetal``). Both read their settings from the
environment the caller sets (IRONICCLIENT_TEST_CONFIG, OS_CLOUD, OS_CLIENT_CONFIG_FILE, ...).

The one harness change: python-ironicclient's FunctionalTestBase.setUp checks
``self.auth_ref.project_scoped`` (a Keystone token's scope) before reading its config, even in its
own ``noauth`` mode, and tempest's ClientTestBase has no ``auth_ref``: without Keystone the suite
cannot start. ``_stand_in_for_keystone_scope`` gives the class a project-scoped stand-in; nothing
else of either suite is changed.
"""

from __future__ import annotations

import importlib
import json
import sys
import types
import unittest
from collections.abc import Iterator
from pathlib import Path

from suites import SUITE_PACKAGES  # tests/clients/suites.py, beside this file


def _stand_in_for_keystone_scope() -> None:
    base = importlib.import_module("ironicclient.tests.functional.base")
    base.FunctionalTestBase.auth_ref = types.SimpleNamespace(project_scoped=True)


def _discover(suite: str) -> unittest.TestSuite:
    package = importlib.import_module(SUITE_PACKAGES[suite])
    start = Path(package.__file__).parent
    top = start.parents[len(SUITE_PACKAGES[suite].split(".")) - 1]
    return unittest.defaultTestLoader.discover(str(start), top_level_dir=str(top))


def _flatten(tests: unittest.TestSuite) -> Iterator[unittest.TestCase]:
    for test in tests:
        if isinstance(test, unittest.TestSuite):
            yield from _flatten(test)
        else:
            yield test


class _JsonLines(unittest.TestResult):
    def _emit(self, test: unittest.TestCase, outcome: str, detail: str = "") -> None:
        print(json.dumps({"id": test.id(), "outcome": outcome, "detail": detail[-4000:]}),
              flush=True)

    def addSuccess(self, test: unittest.TestCase) -> None:
        self._emit(test, "pass")

    def addFailure(self, test: unittest.TestCase, err) -> None:  # type: ignore[no-untyped-def]
        self._emit(test, "fail", self._exc_info_to_string(err, test))

    def addError(self, test: unittest.TestCase, err) -> None:  # type: ignore[no-untyped-def]
        self._emit(test, "error", self._exc_info_to_string(err, test))

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        self._emit(test, "skip", reason)

    def addExpectedFailure(self, test: unittest.TestCase, err) -> None:  # type: ignore[no-untyped-def]
        self._emit(test, "skip", "expected failure")

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        self._emit(test, "fail", "unexpected success")


def main(argv: list[str]) -> int:
    suite, command, *ids = argv
    if suite == "ironicclient":
        _stand_in_for_keystone_scope()
    tests = list(_flatten(_discover(suite)))
    for test in tests:  # import failures of discovery show up as their own failing tests
        if command == "list":
            print(test.id())
    if command == "run":
        wanted = set(ids)
        unittest.TestSuite([t for t in tests if t.id() in wanted]).run(_JsonLines())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
