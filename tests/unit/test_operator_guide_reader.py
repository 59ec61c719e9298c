"""How docs/operator-guide.md is read as a script (tests/support/operator_guide.py): commands,
files, markers, and the loose comparison of the output it shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.operator_guide import (
    GuideCommand,
    GuideFile,
    GuideShell,
    missing_lines,
    normalize,
    section,
    steps,
)

PAGE = """# Title

## Part 1: try it

```yaml
# rooms.yaml
nodes: []
```

```yaml
plain: not a file
```

```console
$ enclume node create --driver fake-hardware \\
    --name pc-01
│ uuid │ 0b0c4e1e-0a0b-4c0d-8e0f-000000000001 │
…
$ enclume node list
```

<!-- guide-test: skip (the test starts its own) -->
```console
$ enclume-aio &
```

<!-- guide-test: fails (on purpose) -->
```console
$ enclume node deploy pc-09
Error: nope (HTTP 400)
```

```
$ not a console block
```

## Part 2: more

```console
$ enclume node inspect pc-01
```
"""


def test_a_section_ends_at_the_next_level_two_heading() -> None:
    text, first = section(PAGE, "Part 1")
    assert first == 3
    assert "Part 2" not in text and "inspect" not in text
    with pytest.raises(ValueError, match="expected one heading"):
        section(PAGE, "Part 3")


def test_steps_in_reading_order_with_their_modes_and_lines() -> None:
    text, first = section(PAGE, "Part 1")
    found = steps(text, first)
    assert [type(step) for step in found] == [GuideFile, GuideCommand, GuideCommand,
                                              GuideCommand, GuideCommand]
    rooms, create, listing, _aio, deploy = found
    assert isinstance(rooms, GuideFile)
    assert (rooms.name, rooms.text) == ("rooms.yaml", "# rooms.yaml\nnodes: []\n")
    assert isinstance(create, GuideCommand)
    assert create.text == "enclume node create --driver fake-hardware \\\n    --name pc-01"
    assert create.line == PAGE.splitlines().index("$ enclume node create --driver "
                                                  "fake-hardware \\") + 1
    assert create.output == ["│ uuid │ 0b0c4e1e-0a0b-4c0d-8e0f-000000000001 │", "…"]
    assert isinstance(listing, GuideCommand) and listing.output == []
    assert [getattr(step, "mode", None) for step in found[1:]] == ["run", "run", "skip",
                                                                    "fails"]
    assert isinstance(deploy, GuideCommand) and deploy.output == ["Error: nope (HTTP 400)"]


def test_normalize_forgets_uuids_times_durations_spacing_and_rule_lengths() -> None:
    one = "[   0.5s] done pc-01 (d7bebb00-ab6b-4d55-9b42-f31954748107) after 0.5 s"
    two = "[  12.0s] done pc-01 (5c1f0000-ab6b-4d55-9b42-f31954748107) after 12.0 s"
    assert normalize(one) == normalize(two)
    assert normalize("│ 2026-11-21T11:08:51.078240+00:00 │") == normalize(
        "│ 2027-01-02T03:04:05.000001+00:00 │")
    assert normalize("┏━━━━┳━━┓") == normalize("┏━━┳━━━━━━┓")
    assert normalize("3 of 3 node(s) done") != normalize("2 of 3 node(s) done")


def test_shown_lines_must_be_in_the_output_in_any_order() -> None:
    actual = "b: two\na: one\n[   1.5s] done pc-01: active after 1.5 s\n"
    assert missing_lines(["a: one", "b: two", "", "…"], actual) == []
    assert missing_lines(["[   0.0s] done pc-01: active after 0.0 s"], actual) == []
    assert missing_lines(["a: three"], actual) == ["a: three"]


def test_an_ellipsis_inside_a_line_stands_for_anything() -> None:
    actual = "FAILED n1: failed in enroll: Verify failed: Unable to connect to http://x/\n"
    assert missing_lines(["FAILED n1: failed in enroll: … to connect …"], actual) == []
    assert missing_lines(["FAILED n1: failed in deploy: …"], actual) == [
        "FAILED n1: failed in deploy: …"]


def test_files_are_written_only_below_the_shells_directories(tmp_path: Path) -> None:
    shell = GuideShell(tmp_path, {})
    written = shell.write(GuideFile("~/.config/enclume/cli.yaml", "url: x\n", 1))
    assert written == tmp_path / "home" / ".config" / "enclume" / "cli.yaml"
    assert shell.write(GuideFile("rooms.yaml", "[]\n", 1)) == tmp_path / "rooms.yaml"
    for name in ("/etc/enclume/cli.yaml", "../outside.yaml", "~/../outside.yaml"):
        with pytest.raises(ValueError, match="only relative paths"):
            shell.path_of(name)


def test_commands_run_in_bash_with_a_home_of_their_own(tmp_path: Path) -> None:
    shell = GuideShell(tmp_path, {"ENCLUME_URL": "http://127.0.0.1:1"})
    outcome = shell.run(GuideCommand('echo "$HOME $ENCLUME_URL" | cat'))
    assert outcome.code == 0
    assert outcome.stdout == f"{tmp_path / 'home'} http://127.0.0.1:1\n"
    assert shell.run(GuideCommand("false | true")).code == 1  # pipefail: a failing list fails
    assert shell.run(GuideCommand("command -v enclume")).stdout.startswith(
        str(Path(shell.env["PATH"].split(":")[0])))
