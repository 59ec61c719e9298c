"""The session service script as a real process, with its power commands replaced by a
recorder (tests never power the test machine off), and the config drive a deploy carries.

The shipped Python script, or its busybox port (``BUSYBOX_PORT``, run by busybox's sh with
busybox's applets first on the PATH, as the lab's test OS runs it): ``program`` of
``running_session_service``.

``record_argv(log)``: a command line that appends its arguments as one JSON line to ``log``;
the service runs it instead of ``systemctl poweroff`` / ``systemctl reboot``
(``--poweroff-command`` / ``--reboot-command``). ``fake_efibootmgr(dir, log)``: an
``efibootmgr`` that lists a disk entry and a PXE entry, and records ``--bootnext``.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.procfs import stop_process

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "session_service" / "enclume_session_service.py"
BUSYBOX_PORT = REPO_ROOT / "session_service" / "enclume-session-service.sh"
PYTHON, BUSYBOX = "python", "busybox"
STOP_TIMEOUT_S = 10

RECORDER = """import json, sys
with open(sys.argv[1], "a") as log:
    log.write(json.dumps(sys.argv[2:]) + "\\n")
"""
EFIBOOTMGR = """#!{python}
import json, sys
if len(sys.argv) == 1:
    print("BootCurrent: 0001")
    print("BootOrder: 0001,0003")
    print("Boot0001* debian\\tHD(1,GPT,...)/File(\\\\EFI\\\\debian\\\\shimx64.efi)")
    print("Boot0003* UEFI PXEv4 (MAC:525400123456)")
else:
    with open({log!r}, "a") as log:
        log.write(json.dumps(["efibootmgr", *sys.argv[1:]]) + "\\n")
"""


def record_argv(directory: Path, log: Path, *words: str) -> str:
    recorder = directory / "record.py"
    recorder.write_text(RECORDER)
    return shlex.join([sys.executable, str(recorder), str(log), *words])


def fake_efibootmgr(directory: Path, log: Path) -> Path:
    tool = directory / "efibootmgr"
    tool.write_text(EFIBOOTMGR.format(python=sys.executable, log=str(log)))
    tool.chmod(0o755)
    return tool


def recorded(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def session_file_of(configdrive: str) -> dict[str, Any]:
    """``enclume/session-service.json`` of a config drive (base64 of a gzipped ISO 9660)."""
    with tempfile.NamedTemporaryFile(suffix=".iso") as iso:
        iso.write(gzip.decompress(base64.b64decode(configdrive)))
        iso.flush()
        done = subprocess.run(["isoinfo", "-i", iso.name, "-J", "-x",
                               "/enclume/session-service.json"], capture_output=True, check=True)
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def _program(program: str, directory: Path) -> tuple[list[str], dict[str, str] | None]:
    """The command line that starts ``program``, and its environment (None: this one's)."""
    if program == PYTHON:
        return [sys.executable, str(SCRIPT)], None
    busybox = shutil.which("busybox")
    if busybox is None:
        raise RuntimeError("busybox is not installed (Debian: busybox-static)")
    applets = directory / "busybox-bin"
    applets.mkdir(exist_ok=True)
    subprocess.run([busybox, "--install", "-s", str(applets)], check=True)
    return [busybox, "sh", str(BUSYBOX_PORT)], {**os.environ, "PATH": str(applets)}


@contextmanager
def running_session_service(config: dict[str, Any], directory: Path, log: Path,
                            *extra: str, program: str = PYTHON
                            ) -> Iterator[subprocess.Popen[str]]:
    """The service (``PYTHON`` or ``BUSYBOX``) with ``config`` as its kept settings; stopped
    (by its PID) on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    settings = directory / "session-service.json"
    settings.write_text(json.dumps(config))
    command, env = _program(program, directory)
    argv = [*command, "--config", str(settings), "--wait-s", "1",
            "--retry-s", "0.3", "--config-drive", "/nonexistent",
            "--poweroff-command", record_argv(directory, log, "poweroff"),
            "--reboot-command", record_argv(directory, log, "reboot"),
            "--efibootmgr", str(fake_efibootmgr(directory, log)), *extra]
    with (directory / "stderr.log").open("w") as stderr:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=stderr, text=True, env=env)
    try:
        yield process
    finally:
        stop_process(process, STOP_TIMEOUT_S)
