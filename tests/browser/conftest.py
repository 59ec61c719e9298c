"""Browser tests: Debian's chromium, headless, driven by Selenium through Debian's chromedriver
(``make deps`` installs both; nothing downloads a browser), against a real enclume-aio."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium import webdriver

from tests.support.browser import headless_chromium, missing_browser


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.path):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def chromium() -> Iterator[webdriver.Chrome]:
    if missing := missing_browser():
        pytest.fail(missing)
    with headless_chromium() as driver:
        yield driver
