"""docs/operator-guide.md (and docs/teacher-guide.md) as a script: its files and commands, run
in order, outputs compared.

The guide's conventions (its "How this page is tested" section says the same to its readers):

- A command is a line starting with ``$ `` in a fenced ``console`` block (a line ending in ``\\``
  continues on the next one); the lines after it, up to the next command, are its output.
- A fenced block whose first line is a comment naming a file (``# rooms.yaml``,
  ``# ~/.config/enclume/cli.yaml``) is that file: it is written (``~`` being the home
  directory) when the reading reaches it, before the commands after it run.
- An HTML comment ``<!-- guide-test: skip ... -->`` right before a block: its commands are not
  run (setting up: installing, starting enclume-aio, stopping it). ``<!-- guide-test: fails ...
  -->``: each of its commands must fail with exit code 1 (an error the guide shows on purpose;
  2, a usage error, would mean the guide no longer matches the CLI).
- Output shown is checked loosely: every line shown must be a line of the real output (stdout
  and stderr), in any order, after both are normalized (UUIDs, timestamps and decimal numbers
  replaced, runs of spaces and of table rules shortened); ``…`` in a line stands for anything,
  a line that is only ``…`` for lines left out.

``python -m tests.support.operator_guide`` starts an enclume-aio, runs part 1 and prints each
command with its real output: what to paste when the CLI's output changes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from lab.local_service import running_aio

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operator-guide.md"
VENV_BIN = Path(sys.executable).parent
MARKER = re.compile(r"<!--\s*guide-test:\s*(skip|fails)\b.*?-->")
FENCE = re.compile(r"^```(\S*)\s*$")
FILE_COMMENT = re.compile(r"^#\s*(~?[\w./-]+\.(?:ya?ml|json|csv))\b")
ELLIPSIS = "…"
COMMAND_TIMEOUT_S = 120.0

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?")
_DECIMAL = re.compile(r"\d+\.\d+")
_RULE = re.compile(r"[━─═]+")


@dataclass
class GuideFile:
    name: str  # as the guide names it, maybe starting with ~/
    text: str
    line: int  # of the guide, for messages


@dataclass
class GuideCommand:
    text: str  # what follows "$ ", continuation lines included
    output: list[str] = field(default_factory=list)
    mode: str = "run"  # "run", "skip" or "fails"
    line: int = 0


Step = GuideFile | GuideCommand


def section(markdown: str, heading: str) -> tuple[str, int]:
    """The text of the level-2 section whose heading starts with ``heading`` (up to the next
    level-2 heading), and the line number it starts on."""
    lines = markdown.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(f"## {heading}")]
    if len(starts) != 1:
        raise ValueError(f"expected one heading '## {heading}…' in the guide, found "
                         f"{len(starts)}")
    start = starts[0]
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
               len(lines))
    return "\n".join(lines[start:end]), start + 1


def steps(markdown: str, first_line: int = 1) -> list[Step]:
    """The files and commands of ``markdown`` in reading order."""
    found: list[Step] = []
    lines = markdown.splitlines()
    pending_mode = "run"
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = MARKER.search(line)
        if marker:
            pending_mode = marker.group(1)
        fence = FENCE.match(line)
        if not fence:
            index += 1
            continue
        language = fence.group(1)
        body_start = index + 1
        end = body_start
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        body = lines[body_start:end]
        where = first_line + body_start
        if language == "console":
            found.extend(_commands(body, pending_mode, where))
        elif language and body and (named := FILE_COMMENT.match(body[0])):
            found.append(GuideFile(named.group(1), "\n".join(body) + "\n", where))
        pending_mode = "run"
        index = end + 1
    return found


def _commands(body: list[str], mode: str, first_line: int) -> list[GuideCommand]:
    commands: list[GuideCommand] = []
    index = 0
    while index < len(body):
        line = body[index]
        if line.startswith("$ "):
            text = line[2:]
            start = index
            while text.endswith("\\") and index + 1 < len(body):
                index += 1
                text += "\n" + body[index]
            commands.append(GuideCommand(text, mode=mode, line=first_line + start))
        elif commands:
            commands[-1].output.append(line)
        index += 1
    return commands


def normalize(line: str) -> str:
    line = _UUID.sub("<uuid>", line)
    line = _TIMESTAMP.sub("<time>", line)
    line = _DECIMAL.sub("<n>", line)
    line = _RULE.sub("─", line)
    return " ".join(line.split())


def missing_lines(shown: list[str], actual: str) -> list[str]:
    """The lines of ``shown`` that the real output ``actual`` does not have."""
    real = [normalize(line) for line in actual.splitlines()]
    real_set = set(real)
    missing = []
    for line in shown:
        wanted = normalize(line)
        if not wanted or wanted == ELLIPSIS:
            continue
        if ELLIPSIS in wanted:
            pattern = re.compile(".*".join(re.escape(part) for part in wanted.split(ELLIPSIS)))
            if not any(pattern.fullmatch(candidate) for candidate in real):
                missing.append(line)
        elif wanted not in real_set:
            missing.append(line)
    return missing


@dataclass
class Outcome:
    command: GuideCommand
    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class GuideShell:
    """Runs the guide's commands as a reader would in a fresh shell each: bash, the venv's
    scripts first on PATH, a home directory of its own, in a working directory of its own, with
    no ENCLUME_* variable from outside but those given."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.home = workdir / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        base = {key: value for key, value in os.environ.items()
                if not key.startswith("ENCLUME_")
                and key not in ("XDG_CONFIG_HOME", "COLUMNS", "LINES")}
        self.env = {**base, "HOME": str(self.home),
                    "PATH": f"{VENV_BIN}{os.pathsep}{base.get('PATH', '')}", **env}

    def path_of(self, name: str) -> Path:
        """Where a file the guide names goes: never outside the shell's own directories."""
        relative = Path(name[2:]) if name.startswith("~/") else Path(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise ValueError(f"the guide names the file {name!r}: only relative paths and "
                             f"paths below ~/ can be written by the test")
        return (self.home if name.startswith("~/") else self.workdir) / relative

    def write(self, guide_file: GuideFile) -> Path:
        path = self.path_of(guide_file.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(guide_file.text)
        return path

    def run(self, command: GuideCommand) -> Outcome:
        started = time.monotonic()
        done = subprocess.run(["bash", "-o", "pipefail", "-c", command.text], cwd=self.workdir,
                              env=self.env, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT_S, check=False)
        return Outcome(command, done.returncode, done.stdout, done.stderr,
                       time.monotonic() - started)


def failure(step: GuideCommand, outcome: Outcome, guide: str) -> str | None:
    """Why ``outcome`` does not match what ``guide`` shows of ``step`` (None: it does): an
    exit code other than 0 (1 under ``guide-test: fails``), or output lines it did not print."""
    shown = (f"exit {outcome.code}\n--- stdout\n{outcome.stdout}--- stderr\n"
             f"{outcome.stderr}")
    where = f"{guide} line {step.line}: $ {step.text}\n"
    expected = 1 if step.mode == "fails" else 0
    if outcome.code != expected:
        hint = "expected to fail with exit 1\n" if expected else ""
        return where + hint + shown
    missing = missing_lines(step.output, outcome.output)
    if missing:
        return where + ("output the guide shows but the command did not print:\n  "
                        + "\n  ".join(missing) + f"\n{shown}")
    return None


def run_steps(shell: GuideShell, found: list[Step], guide: str) -> int:
    """Write each file and run each command not skipped, in order; AssertionError at the
    first command that does not do what the guide shows. Returns how many commands ran."""
    ran = 0
    for step in found:
        if isinstance(step, GuideFile):
            shell.write(step)
            continue
        if step.mode == "skip":
            continue
        outcome = shell.run(step)
        ran += 1
        problem = failure(step, outcome, guide)
        if problem is not None:
            raise AssertionError(problem)
    return ran


def main() -> None:
    """Print part 1's commands with their real output, against a fresh enclume-aio."""
    text, first = section(GUIDE.read_text(), "Part 1")
    with tempfile.TemporaryDirectory(prefix="operator-guide-") as tmp, \
            running_aio(Path(tmp) / "aio") as server:
        shell = GuideShell(Path(tmp) / "work", {"ENCLUME_URL": server.url})
        for step in steps(text, first):
            if isinstance(step, GuideFile):
                shell.write(step)
                print(f"# wrote {step.name}")
            elif step.mode == "skip":
                print(f"# skipped: $ {step.text}")
            else:
                outcome = shell.run(step)
                print(f"$ {step.text}")
                print(outcome.output, end="")
                print(f"# exit {outcome.code}, {outcome.seconds:.1f} s\n")


if __name__ == "__main__":
    main()
