"""``rescue.finalize_rescue``: set the ``rescue`` user's password, as Ironic's agent does.

The conductor sends the password's crypt hash (``rescue_password`` with ``hashed: true``: a
``$6$`` sha512-crypt, or ``$5$`` sha256-crypt as older Ironics send); the password itself never
reaches the ramdisk. The hash becomes the ``rescue`` user's entry of ``<root>/etc/shadow``
(the user is added to ``<root>/etc/passwd`` if the ramdisk has none), replaced atomically, and
``<root>/etc/.rescued`` marks the ramdisk as rescued: from then on the agent serves no API and
sends no heartbeat (agent/main.py), so nothing on the tenant network can command it, and offers
the rescue user a login prompt on the console (busybox ``getty``/``login``, again after each
logout). ``root`` is ``/`` in the ramdisk; tests give a directory of their own.

A password sent in clear (``hashed`` false, what Ironic sends only when it is configured not to
require hashing) is refused: the agent has no crypt library to hash it with, and it should not
travel in clear.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.errors import BadParams, CommandError

LOG = logging.getLogger(__name__)
USER = "rescue"
LOGIN_AGAIN_S = 1.0  # between a logout (or a prompt that could not start) and the next prompt
# The passwd entry the rescue user gets when the ramdisk has none: a shell in its home.
RESCUE_UID = 1000
PASSWD_ENTRY = f"{USER}:x:{RESCUE_UID}:{RESCUE_UID}:rescue user:/home/{USER}:/bin/sh"
RESCUED_MARKER = "etc/.rescued"
# crypt(3) sha256/sha512: $5$ or $6$, optional rounds=N$, a salt, the hash; nothing else (a
# ':' or a newline would write other shadow fields or entries).
_CRYPT_HASH = re.compile(r"^\$[56]\$(rounds=\d{1,9}\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{43,86}$")


def parse_params(params: dict[str, Any]) -> str:
    """The crypt hash to set; BadParams (which never quotes it) when the params are wrong."""
    unknown = set(params) - {"rescue_password", "hashed"}
    if unknown:
        raise BadParams(f"unknown parameters {sorted(unknown)}")
    if params.get("hashed") is not True:
        raise BadParams("only a hashed rescue_password (hashed: true) is accepted")
    hashed = params.get("rescue_password")
    if not isinstance(hashed, str) or not _CRYPT_HASH.match(hashed):
        raise BadParams("rescue_password is not a sha256-crypt or sha512-crypt hash")
    return hashed


def _replace(path: Path, lines: list[str], mode: int) -> None:
    """Write ``lines`` to ``path`` atomically (a temporary file renamed over it)."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("".join(f"{line}\n" for line in lines))
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []


def _with_entry(lines: list[str], entry: str) -> list[str]:
    """``lines`` with the rescue user's entry replaced by ``entry`` (or added)."""
    others = [line for line in lines if line.split(":", 1)[0] != USER]
    return [*others, entry]


def set_password(root: Path, hashed: str) -> None:
    etc = root / "etc"
    try:
        etc.mkdir(parents=True, exist_ok=True)
        passwd = _lines(etc / "passwd")
        if not any(line.split(":", 1)[0] == USER for line in passwd):
            _replace(etc / "passwd", [*passwd, PASSWD_ENTRY], 0o644)
        home = root / "home" / USER
        home.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # the ramdisk: the user's home is theirs
            os.chown(home, RESCUE_UID, RESCUE_UID)
        # name:hash:last change (days; 0 would force a change at login):min:max:warn:::
        days = int(time.time() // 86400)
        _replace(etc / "shadow", _with_entry(_lines(etc / "shadow"),
                                             f"{USER}:{hashed}:{days}:0:99999:7:::"), 0o600)
        (root / RESCUED_MARKER).touch()
    except OSError as exc:
        raise CommandError(f"cannot set the password of the {USER} user under {root}: "
                           f"{exc.strerror or exc}") from None


def is_rescued(root: Path) -> bool:
    return (root / RESCUED_MARKER).exists()


def login_command(console: str) -> tuple[str, ...]:
    """busybox getty on the agent's console (``/dev/console``: ``console``), its speed kept."""
    return ("getty", "-L", "0", Path(console).name, "vt100")


def offer_login(command: Sequence[str], stopped: threading.Event) -> None:
    """Run ``command`` (the login prompt) again and again, in a thread, until ``stopped``."""

    def loop() -> None:
        while not stopped.is_set():
            try:
                subprocess.run(list(command), check=False)
            except OSError as exc:
                LOG.error("cannot offer the rescue login (%s): %s", command[0],
                          exc.strerror or exc)
            stopped.wait(LOGIN_AGAIN_S)

    threading.Thread(target=loop, name="rescue-login", daemon=True).start()
