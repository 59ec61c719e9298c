"""The agent's login prompt on a pseudo-terminal, driven as a person at a serial console would.

The real agent code runs in Debian's python3 (the ramdisk's interpreter): it trusts the test
CA as the agent does with the boot service's (``api_client.trust_ca``) and runs the
``login.prompt`` command's body on the pty's slave side; the test reads the screen from the
master side and types lines ending in CR, as a serial terminal sends Enter.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.support.agent_machine import RAMDISK_PYTHON, REPO

RUNNER = """
import json, sys
from agent import api_client, login_prompt
api_url, ca_file, node, token, console, language = sys.argv[1:]
with open(ca_file, encoding="ascii") as pem:
    api_client.trust_ca(pem.read())
request = login_prompt.LoginRequest(node, "B12", language)
print(json.dumps(login_prompt.run(request, api_url, token, console, 10)))
"""


class PtyScreen:
    """A pseudo-terminal: a program opens ``slave_path``; the test reads and types here."""

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        self.slave_path = os.ttyname(self._slave)
        self.output = ""
        self._read_to = 0

    def alive(self) -> bool:
        return True

    def expect(self, text: str, timeout_s: float = 15.0) -> str:
        """Wait until ``text`` appears after what was already expected; the output up to it."""
        deadline = time.monotonic() + timeout_s
        while text not in self.output[self._read_to:]:
            left = deadline - time.monotonic()
            if left <= 0 or (not self.alive() and not self._pending()):
                raise AssertionError(f"{text!r} did not appear; the console shows:\n"
                                     f"{self.output[self._read_to:]!r}\n{self.errors()}")
            if select.select([self.master], [], [], min(left, 0.2))[0]:
                self.output += os.read(self.master, 65536).decode(errors="replace")
        end = self.output.index(text, self._read_to) + len(text)
        seen, self._read_to = self.output[self._read_to:end], end
        return seen

    def _pending(self) -> bool:
        return bool(select.select([self.master], [], [], 0)[0])

    def errors(self) -> str:
        return ""

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def close(self) -> None:
        os.close(self.master)
        os.close(self._slave)


class LoginConsole(PtyScreen):
    """The login prompt's code alone, in its own process, on a new pty."""

    def __init__(self, api_url: str, ca_file: Path, node: str, token: str,
                 language: str = "en") -> None:
        super().__init__()
        self.process = subprocess.Popen(
            [RAMDISK_PYTHON, "-c", RUNNER, api_url, str(ca_file), node, token,
             self.slave_path, language],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def alive(self) -> bool:
        return self.process.poll() is None

    def errors(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return ""
        return self.process.stderr.read().decode(errors="replace")

    def result(self, timeout_s: float = 15.0) -> dict[str, Any]:
        out, err = self.process.communicate(timeout=timeout_s)
        assert self.process.returncode == 0, err.decode(errors="replace")
        answer: dict[str, Any] = json.loads(out)
        return answer

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()
        super().close()
