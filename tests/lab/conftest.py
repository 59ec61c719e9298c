"""Fixtures of the lab tests: a fresh virtual lab per test, the test kernel built once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ramdisk.build import BuiltRamdisk
from ramdisk.build import ensure_built as ensure_ramdisk_built
from ramdisk.testimages import BuiltTestImages
from ramdisk.testimages import ensure_built as ensure_test_images_built
from ramdisk.testkernel import BuiltTestKernel, ensure_built
from tests.lab.harness import Lab

RecordTiming = Callable[[str, float], None]
# (test, what, seconds) measured by the lab tests, printed at the end of the run.
TIMINGS: list[tuple[str, str, float]] = []


@pytest.fixture(scope="session")
def test_kernel() -> BuiltTestKernel:
    """The test kernel from the cache (`make testkernel`), built now if missing or stale."""
    started = time.monotonic()
    kernel = ensure_built()
    TIMINGS.append(("session", "test kernel ready (cached or built)", time.monotonic() - started))
    return kernel


@pytest.fixture(scope="session")
def deploy_ramdisk() -> BuiltRamdisk:
    """The deploy kernel and ramdisk from the cache (`make ramdisk`), built now if missing or
    stale (about a minute)."""
    started = time.monotonic()
    ramdisk = ensure_ramdisk_built()
    TIMINGS.append(("session", "deploy ramdisk ready (cached or built)",
                    time.monotonic() - started))
    return ramdisk


@pytest.fixture(scope="session")
def test_images() -> BuiltTestImages:
    """The test OS images from the cache (`make testimages`), built now if missing or stale
    (about 15 s)."""
    started = time.monotonic()
    images = ensure_test_images_built()
    TIMINGS.append(("session", "test images ready (cached or built)", time.monotonic() - started))
    return images


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with Lab(tmp_path / "lab") as lab:
        yield lab


@pytest.fixture
def record_timing(request: pytest.FixtureRequest) -> RecordTiming:
    def record(what: str, seconds: float) -> None:
        TIMINGS.append((request.node.name, what, seconds))
    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("lab timings")
        for test, what, seconds in TIMINGS:
            terminalreporter.write_line(f"{seconds:7.2f} s  {what}  ({test})")
