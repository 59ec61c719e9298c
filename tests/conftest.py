"""How `make test` spreads the suite over pytest-xdist workers (`-n N --dist loadscope`).

With `--dist loadscope`, each test module is one unit of work, run whole on one worker (its
module-scoped fixtures are set up once, its tests run in their order), except:

- tests/lab: one unit for the whole directory, so that at most one QEMU lab runs at a time and
  the lab tests share their session fixtures (test kernel, ramdisk, test images) as before;
- the clients' functional suites: one unit per suite (each has its own enclume-aio; they share
  only the clients' venv, built under a lock).

Under xdist the long units start first (the lab, the clients' suites, then integration, browser,
fuzz, unit), so that no long one ends the run alone; without xdist the order is pytest's.
"""

from __future__ import annotations

import pytest

LAB = "tests/lab/"
ONE_UNIT_PER_TEST = ("tests/integration/test_client_functional.py",)
START_FIRST = (LAB, *ONE_UNIT_PER_TEST, "tests/integration/", "tests/browser/", "tests/fuzz/")


def unit_of_work(nodeid: str) -> str:
    """The unit `nodeid` runs in under `--dist loadscope`: its module, or as described above."""
    module = nodeid.split("::", 1)[0]
    if module.startswith(LAB):
        return LAB
    if module in ONE_UNIT_PER_TEST:
        return nodeid
    return module


class _XdistScheduling:
    """Registered only when pytest-xdist is (`-p no:xdist` still works)."""

    @staticmethod
    def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
        from xdist.scheduler import LoadScopeScheduling

        class ModuleScheduling(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                return unit_of_work(nodeid)

        if config.getvalue("dist") != "loadscope":
            return None
        config.option.loadscopereorder = False  # keep the order the workers collected (below)
        return ModuleScheduling(config, log)  # type: ignore[arg-type]


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistScheduling(), "enclume-xdist-scheduling")


def _start_rank(item: pytest.Item) -> int:
    return next((rank for rank, prefix in enumerate(START_FIRST)
                 if item.nodeid.startswith(prefix)), len(START_FIRST))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker; all of them sort alike
        items.sort(key=_start_rank)
