"""docs/teacher-guide.md runs as written: an administrator sets room B12 up (one PC's disk made
to fail), then teacher alice (a users-file account) sees her rooms, plans a weekly class,
restores the room (one PC fails with its reason), retries that PC once the administrator fixed
it, follows the room's status, powers it off and wakes a PC, and meets the errors.

The page is read with tests/support/operator_guide.py (the operator guide's reader; its
docstring has the conventions): each command of a ``console`` block is run with bash, in
order, with the real ``.venv/bin/enclume`` first on PATH, from empty working and home
directories; each file shown (``admin.yaml``, ``~/.config/enclume/cli.yaml``) is written when
the reading reaches it. enclume-aio runs with ``ENCLUME_AUTH_STRATEGY=users_file`` and a users
file holding the two accounts with the passwords the guide's files show; ``ENCLUME_URL``
points the CLI at it (the guide's files name no reachable address).

Not run on purpose: the users file the guide shows (hashes elided, no file name: this test
writes a real one). Every enclume command of the page runs: no skipped block may hold one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import yaml

from tests.support.aio import Server, running_aio
from tests.support.operator_guide import (
    VENV_BIN,
    GuideCommand,
    GuideFile,
    GuideShell,
    run_steps,
    steps,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "teacher-guide.md"
PASSWORDS = {"admin": "the admin's long password", "alice": "alice's long password"}
ENCLUME_CALL = re.compile(r"(^|[;&|(`]\s*|\$\(\s*)enclume\s")
MUST_RUN = ("room create B12", "enclume room list", "enclume room show B12",
            "enclume image list", "enclume session create --room B12", "--weekly",
            "enclume session list", "enclume job list", "enclume room status B12",
            "fake_deploy_error", "enclume room restore B12 --wait", "enclume job retry",
            "enclume room status B12 --watch", "enclume room power-off B12",
            "enclume room wake B12", "enclume session set")


def guide_steps() -> list[GuideCommand | GuideFile]:
    return steps(GUIDE.read_text())


@pytest.fixture(scope="module")
def classroom_aio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("teacher-aio")
    users = [{"name": "admin", "roles": ["admin"]},
             {"name": "alice", "roles": ["teacher"]}]
    for user in users:
        user["password_hash"] = bcrypt.hashpw(PASSWORDS[str(user["name"])].encode(),
                                              bcrypt.gensalt(rounds=4)).decode()
    users_file = directory / "users.yaml"
    users_file.write_text(yaml.safe_dump({"users": users}))
    env = {"ENCLUME_AUTH_STRATEGY": "users_file", "ENCLUME_USERS_FILE": str(users_file)}
    with running_aio(directory / "data", env=env) as server:
        yield server


def test_the_guide_walks_through_what_it_promises() -> None:
    found = guide_steps()
    commands = [step for step in found if isinstance(step, GuideCommand)]
    run = " ".join(command.text for command in commands if command.mode != "skip")
    for wanted in MUST_RUN:
        assert wanted in run, f"the teacher guide runs no `{wanted}…` any more"
    files = {step.name: step.text for step in found if isinstance(step, GuideFile)}
    assert {"admin.yaml", "~/.config/enclume/cli.yaml"} <= set(files)
    for name, account in (("admin.yaml", "admin"), ("~/.config/enclume/cli.yaml", "alice")):
        settings = yaml.safe_load(files[name])
        assert (settings["username"], settings["password"]) == (account, PASSWORDS[account])
    for command in commands:
        assert not (command.mode == "skip" and ENCLUME_CALL.search(command.text)), (
            f"line {command.line}: a skipped block hides an enclume command: {command.text}")
    assert sum(command.mode == "fails" for command in commands) >= 5


def test_the_guide_runs_as_written(classroom_aio: Server, tmp_path: Path) -> None:
    if not (VENV_BIN / "enclume").is_file():
        pytest.fail(f"{VENV_BIN / 'enclume'} is missing: run `.venv/bin/pip install -e .`")
    shell = GuideShell(tmp_path, {"ENCLUME_URL": classroom_aio.url})
    ran = run_steps(shell, guide_steps(), "docs/teacher-guide.md")
    assert ran >= 22, f"only {ran} commands of the teacher guide were run"
