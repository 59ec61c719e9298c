"""Run the clients' own functional suites (tests/clients) against a running enclume-aio.

The clients live in their own venv under .cache/ (as a user installs them from PyPI), built
once from tests/clients/requirements.txt and rebuilt when that file changes
(tests/support/cached_venv.py). Each suite runs in a few processes at once (its tests drive the
``openstack`` CLI, one process per command).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.support.cached_venv import ensure_venv

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "tests" / "clients"
REQUIREMENTS = CLIENTS / "requirements.txt"
DRIVER = CLIENTS / "functional_driver.py"
VENV = ROOT / ".cache" / "client-functional" / "venv"
PYTHON = VENV / "bin" / "python"
# python-ironicclient's harness runs the CLI from {cwd}/.tox/{OS_TESTENV_NAME}/bin (tox's layout).
TESTENV_NAME = "functional"
SUITE_TIMEOUT = 2400.0  # one driver process; a loaded 2-core machine runs the CLI slowly


@dataclass(frozen=True)
class Outcome:
    test_id: str
    outcome: str  # pass, fail, error or skip
    detail: str


def ensure_clients_venv() -> Path:
    """The clients' venv, installed from PyPI when missing or when the requirements changed."""
    return ensure_venv(REQUIREMENTS, VENV)


def prepare_workdir(workdir: Path, api_url: str) -> dict[str, str]:
    """The config files both suites read, and the environment that points them at ``api_url``."""
    tox_dir = workdir / ".tox"
    tox_dir.mkdir(parents=True, exist_ok=True)
    link = tox_dir / TESTENV_NAME
    if not link.exists():
        link.symlink_to(VENV)
    ironicclient_conf = workdir / "test.conf"
    ironicclient_conf.write_text(
        "[functional]\napi_version = 1\nauth_strategy = noauth\n"
        f"ironic_url = {api_url}\n")
    # keystoneauth's noauth plugin with a fixed endpoint: every service type resolves to it, so
    # the suite's microversion checks (session.get_endpoint_data) see Enclume's version document.
    # No compute or image service: the suite then picks no flavor and no image.
    clouds = workdir / "clouds.yaml"
    cloud = (f"    auth_type: none\n    auth:\n      endpoint: {api_url}\n"
             "    has_compute: false\n    has_image: false\n")
    names = ("devstack", "devstack-alt", "devstack-admin", "devstack-system-admin")
    clouds.write_text("clouds:\n" + "".join(f"  {name}:\n{cloud}" for name in names))
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("OS_", "OPENSTACKSDK_", "IRONICCLIENT_"))}
    return {**environment,
            "IRONICCLIENT_TEST_CONFIG": str(ironicclient_conf),
            "OS_TESTENV_NAME": TESTENV_NAME,
            "OS_CLIENT_CONFIG_FILE": str(clouds),
            "OS_CLOUD": "devstack-admin",
            # Both suites' per-test timeout (openstack.tests.base's default is 5 s; tox sets it
            # upstream). A python-ironicclient test runs up to ~16 CLI processes, each seconds
            # long on a loaded 2-core machine.
            "OS_TEST_TIMEOUT": "900",
            "OPENSTACKSDK_FUNC_TEST_TIMEOUT": "60"}


def list_tests(suite: str, workdir: Path, env: dict[str, str]) -> list[str]:
    listed = subprocess.run([str(PYTHON), str(DRIVER), suite, "list"], cwd=workdir, env=env,
                            capture_output=True, text=True, check=True, timeout=300)
    return listed.stdout.split()


def run_suite(suite: str, workdir: Path, env: dict[str, str], processes: int) -> list[Outcome]:
    """Every test of ``suite``, in up to ``processes`` driver processes at once.

    A test module runs whole in one process, its tests one after another, as they are written to
    (a module's tests may list what the module's other tests create).
    """
    test_ids = list_tests(suite, workdir, env)
    with ThreadPoolExecutor(processes) as pool:
        parts = pool.map(lambda shard: _run_shard(suite, shard, workdir, env),
                         _shards_by_module(test_ids, processes))
    results = [outcome for part in parts for outcome in part]
    reported = {outcome.test_id for outcome in results}
    results += [Outcome(test_id, "error", "the driver reported no result")
                for test_id in test_ids if test_id not in reported]
    return results


def _shards_by_module(test_ids: list[str], processes: int) -> list[list[str]]:
    """Whole modules, the biggest first, each into the shard with the fewest tests so far."""
    modules: dict[str, list[str]] = {}
    for test_id in test_ids:
        module = test_id.rsplit(".", 2)[0]
        modules.setdefault(module, []).append(test_id)
    shards: list[list[str]] = [[] for _ in range(processes)]
    for tests in sorted(modules.values(), key=len, reverse=True):
        min(shards, key=len).extend(tests)
    return [shard for shard in shards if shard]


def _run_shard(suite: str, test_ids: list[str], workdir: Path,
               env: dict[str, str]) -> list[Outcome]:
    done = subprocess.run([str(PYTHON), str(DRIVER), suite, "run", *test_ids], cwd=workdir,
                          env=env, capture_output=True, text=True, timeout=SUITE_TIMEOUT,
                          check=False)
    return list(_parse(done.stdout.splitlines()))


def _parse(lines: Iterable[str]) -> Iterable[Outcome]:
    for line in lines:
        if line.startswith('{"id"'):
            row = json.loads(line)
            yield Outcome(row["id"], row["outcome"], row["detail"])
