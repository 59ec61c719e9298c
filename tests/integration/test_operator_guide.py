"""docs/operator-guide.md runs as written: part 1's commands, in order, against enclume-aio.

Part 1 of the guide is read with tests/support/operator_guide.py (its docstring has the
conventions): each command of a fenced ``console`` block is run with bash, in order, with the
real ``.venv/bin/enclume`` first on PATH, from an empty working directory and home directory,
and each file the guide shows (``# rooms.yaml``, ``# ~/.config/enclume/cli.yaml``) is written
when the reading reaches it. A command fails the test when it exits non-zero — or, under a
``<!-- guide-test: fails -->`` comment, when it does not exit 1 — or when a line of output the
guide shows is not in its real output (UUIDs, times and durations aside; ``…`` is anything).

What differs from a reader's terminal, on purpose:
- The blocks under ``<!-- guide-test: skip -->`` are not run: creating the virtualenv (this
  test runs in it), ``enclume-aio … &`` and ``kill %1``. Instead the module's ``aio`` fixture
  (tests/integration/conftest.py) starts enclume-aio on a free port with a fresh data
  directory and stops it, and ``ENCLUME_URL`` points the CLI at it — stronger than the guide's
  ``~/.config/enclume/cli.yaml`` (which is still written, so a file the CLI refuses would fail
  the first command). A skipped block may not hide an ``enclume`` command.
- Each command gets a fresh bash: nothing the guide ``export``s carries over (part 1 needs
  none).

Part 2 needs real machines and is not run; its inventory is checked with
``enclume enroll --dry-run`` against the same server and its discovery rules with the API's own
loader. fake-hardware answers at once (no ENCLUME_FAKE_*_DELAY_S), so the whole file takes
about 20 s.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from services.discovery.facts import Facts
from services.discovery.rules import load as load_rules
from tests.support.aio import Server
from tests.support.operator_guide import (
    GUIDE,
    VENV_BIN,
    GuideCommand,
    GuideFile,
    GuideShell,
    run_steps,
    section,
    steps,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ENCLUME_CALL = re.compile(r"(^|[;&|(`]\s*|\$\(\s*)enclume\s")
# What part 1 must walk through, as the issue asks: a guard against a section emptied by a
# broken heading or fence that would otherwise pass with nothing run.
PART1_MUST_RUN = ("enclume node create", "enclume port create", "enclume enroll rooms.yaml "
                  "--dry-run", "enclume enroll rooms.yaml --then provide --wait",
                  "enclume node list --label", "--instance-info image_source=",
                  "enclume node deploy", "enclume node history list", "enclume node power",
                  "enclume node maintenance set", "enclume node undeploy",
                  "enclume node delete")


def part(heading: str) -> list[GuideCommand | GuideFile]:
    text, first_line = section(GUIDE.read_text(), heading)
    return steps(text, first_line)


def test_part1_is_what_the_guide_promises() -> None:
    found = part("Part 1")
    commands = [step for step in found if isinstance(step, GuideCommand)]
    run = " ".join(command.text for command in commands if command.mode != "skip")
    for wanted in PART1_MUST_RUN:
        assert wanted in run, f"part 1 runs no `{wanted}…` any more"
    assert {step.name for step in found if isinstance(step, GuideFile)} >= {
        "rooms.yaml", "~/.config/enclume/cli.yaml"}
    for command in commands:
        if command.mode == "skip":
            assert not ENCLUME_CALL.search(command.text), (
                f"line {command.line}: a skipped block hides an enclume command: "
                f"{command.text}")
    assert any(command.mode == "fails" for command in commands)


def test_part1_runs_as_written(aio: Server, tmp_path: Path) -> None:
    if not (VENV_BIN / "enclume").is_file():
        pytest.fail(f"{VENV_BIN / 'enclume'} is missing: run `.venv/bin/pip install -e .`")
    shell = GuideShell(tmp_path, {"ENCLUME_URL": aio.url})
    started = time.monotonic()
    ran = run_steps(shell, part("Part 1"), "docs/operator-guide.md")
    assert ran >= 25, f"only {ran} commands of part 1 were run"
    print(f"{ran} commands of part 1 in {time.monotonic() - started:.1f} s")


def test_part2_inventory_passes_a_dry_run(aio: Server, tmp_path: Path) -> None:
    shell = GuideShell(tmp_path, {"ENCLUME_URL": aio.url})
    inventories = [step for step in part("Part 2")
                   if isinstance(step, GuideFile) and step.name == "b12.yaml"]
    assert len(inventories) == 1, "part 2 shows no b12.yaml inventory any more"
    shell.write(inventories[0])
    outcome = shell.run(GuideCommand("enclume enroll b12.yaml --dry-run"))
    assert outcome.code == 0, outcome.output
    assert "Plan for b12.yaml: 2 to create" in outcome.stdout, outcome.output
    assert "Dry run: nothing was written." in outcome.stdout


def test_part2_discovery_rules_load_and_place_a_b12_pc(tmp_path: Path) -> None:
    rules = [step for step in part("Part 2")
             if isinstance(step, GuideFile) and step.name == "discovery-rules.yaml"]
    assert len(rules) == 1, "part 2 shows no discovery-rules.yaml any more"
    path = tmp_path / "discovery-rules.yaml"
    path.write_text(rules[0].text)
    ruleset = load_rules(path, ["fake-hardware", "ipmi", "redfish", "wol"])
    mac = "a4:bb:6d:12:00:07"
    pc = Facts.of({
        "cpu": {"count": 4, "architecture": "x86_64"},
        "memory": {"physical_mb": 8192},
        "disks": [{"name": "/dev/sda", "size": 256 * 1024**3}],
        "interfaces": [{"name": "enp1s0", "mac_address": mac}],
        "boot": {"current_boot_mode": "uefi", "pxe_interface": mac},
    })
    outcome = ruleset.evaluate(pc)
    assert (outcome.driver, outcome.labels, outcome.name) == (
        "wol", {"room": "B12"}, "b12-a4bb6d120007")
    assert outcome.driver_info == {"wol_host": "10.12.255.255"}
