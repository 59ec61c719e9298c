"""The functional suites that python-ironicclient and openstacksdk ship, run against enclume-aio.

Each suite gets its own enclume-aio (noauth, fake-hardware, loopback) and runs from the clients'
own venv (tests/clients/requirements.txt, cached in .cache/client-functional). Every test must
pass unless tests/clients/known_failures.py lists it, and every listed one must still fail or
skip as listed: docs/api.md's list of them is generated from that file.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest

from tests.clients.expectations import counts, problems
from tests.clients.suites import SUITE_PACKAGES
from tests.support.aio import running_aio
from tests.support.client_functional import ensure_clients_venv, prepare_workdir, run_suite

pytestmark = pytest.mark.slow

# Processes per suite: python-ironicclient's tests wait on one `openstack` CLI process per
# command, so a few run side by side even on 2 cores.
PROCESSES = {"ironicclient": 4, "openstacksdk": 3}


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (the drivers and their CLI processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@pytest.fixture(scope="module")
def clients_venv() -> Path:
    return ensure_clients_venv()


@pytest.mark.parametrize("suite", sorted(SUITE_PACKAGES))
def test_client_functional_suite(suite: str, clients_venv: Path, tmp_path: Path) -> None:
    with running_aio(tmp_path / "aio") as server:
        env = prepare_workdir(tmp_path / "work", server.url)
        started, cpu_before = time.monotonic(), _children_cpu()
        outcomes = run_suite(suite, tmp_path / "work", env, PROCESSES[suite])
        elapsed, cpu = time.monotonic() - started, _children_cpu() - cpu_before
        assert "Traceback" not in server.log_text(), server.log_text()[-5000:]
    tally = counts(outcomes)
    print(f"{suite}: {tally['pass']} passed, {tally['fail']} failed, {tally['skip']} skipped "
          f"in {elapsed:.0f} s ({cpu:.0f} s of CPU in the clients' processes)")
    found = problems(suite, outcomes)
    assert outcomes and not found, "\n\n".join(found)
