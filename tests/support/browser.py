"""Debian's chromium, headless, driven by Selenium through Debian's chromedriver (``make deps``
installs both; nothing downloads a browser), and what the tests read from the teacher's room
page: the browser tests (tests/browser) and the QEMU lab (tests/lab) share them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service

from tests.support.polling import eventually

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# ``ENCLUME_SCREENSHOTS=DIR`` (``make screenshots``) saves the pages' pictures there.
SCREENSHOTS_ENV = "ENCLUME_SCREENSHOTS"


class NoBrowser(RuntimeError):
    """Debian's chromium or chromedriver is missing."""


def missing_browser() -> str | None:
    """Why the browser cannot run here, or None."""
    if shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER):
        return None
    return "the browser tests need Debian's chromium and chromium-driver: make deps"


@contextmanager
def headless_chromium() -> Iterator[webdriver.Chrome]:
    """A headless chromium in English, quit on the way out whatever happened."""
    if missing := missing_browser():
        raise NoBrowser(missing)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,1400", "--lang=en-US",
                     "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(browser: webdriver.Chrome, name: str) -> None:
    """The page's picture as ``name`` in ``$ENCLUME_SCREENSHOTS``; nothing without it."""
    if directory := os.environ.get(SCREENSHOTS_ENV):
        Path(directory).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(directory) / name))


def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """``check``'s first true value; an element replaced while it is read counts as not yet."""
    def tolerant() -> Any:
        try:
            return check()
        except (StaleElementReferenceException, NoSuchElementException):
            return None
    return eventually(tolerant, timeout, what)


def open_page(browser: webdriver.Chrome, url: str, timeout: float = 30.0) -> None:
    """Load ``url`` and wait until the browser shows it. A navigation still finishing (a
    form's redirect) can swallow a ``get`` issued meanwhile: then it is issued again."""
    def shown() -> bool:
        if browser.current_url.split("?")[0] != url.split("?")[0]:
            browser.get(url)
            return False
        return bool(browser.execute_script("return document.readyState !== 'loading';"))

    browser.get(url)
    until(shown, timeout, f"the page {url}")


def cards(browser: webdriver.Chrome) -> dict[str, str]:
    """Each PC's card on the room page as it shows now: its name and state text."""
    shown = browser.execute_script(
        "return [...document.querySelectorAll('.status')].map("
        "c => [c.dataset.pc, c.querySelector('.state').textContent.trim()]);")
    return dict(shown)
