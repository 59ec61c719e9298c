from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz.stack import Stack, running_stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/fuzz/" in str(item.fspath):
            item.add_marker(pytest.mark.fuzz)


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One API for the fuzz suite (its logging set-up ends with it); each example starts from
    ``Stack.reset``."""
    with running_stack(tmp_path_factory.mktemp("fuzz")) as running:
        yield running
