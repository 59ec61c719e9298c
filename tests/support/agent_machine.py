"""A machine for deploy tests: behind an emulated BMC, its network boot runs the real agent.

Powered on (or reset) with a network boot override, it does what its firmware and iPXE would:
asks the boot service for its iPXE script, fetches the kernel and ramdisk the script names and
starts the real agent (``python3 -m agent.main`` with Debian's python, the ramdisk's
interpreter) with the script's kernel command line, on a file-backed disk. Powered off, the
agent stops. Booted from disk (or when the boot service has no ramdisk for it), it counts a disk
boot. ``restart_agent`` restarts the agent's process alone. Processes are stopped by PID in
``close``.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import httpx

from tests.support.ipmi_bmc import MemoryMachine

REPO = Path(__file__).resolve().parents[2]
RAMDISK_PYTHON = "/usr/bin/python3"  # Debian's python3.11, the ramdisk's interpreter
HEARTBEAT_INTERVAL_S = 0.3


class AgentMachine(MemoryMachine):
    """A machine whose network boot runs the real agent on a file-backed disk."""

    def __init__(self, boot_url: str, mac: str, disk: Path, workdir: Path) -> None:
        super().__init__()
        self.boot_url, self.mac, self.disk, self.workdir = boot_url, mac, disk, workdir
        self.agent: subprocess.Popen[bytes] | None = None
        self.finished: list[subprocess.Popen[bytes]] = []
        self.disk_boots = 0
        self.agent_boots = 0
        self.agent_restarts = 0
        self._argv: list[str] = []
        self._generation = 0
        self._agent_lock = threading.Lock()

    # Called by the BMC under the machine's lock: must return at once.
    def _boot_now(self) -> None:
        super()._boot_now()
        self._stop_agent()
        if self.boots[-1].device == "pxe":
            generation = self._generation
            threading.Thread(target=self._network_boot, args=(generation,), daemon=True).start()
        else:
            self.disk_boots += 1

    def power_off(self) -> None:
        super().power_off()
        self._stop_agent()

    def _stop_agent(self) -> None:
        with self._agent_lock:
            self._generation += 1
            if self.agent is not None:
                self.agent.terminate()
                self.finished.append(self.agent)
                self.agent = None

    def _network_boot(self, generation: int) -> None:
        """What iPXE does: script, kernel and ramdisk over HTTP, then the kernel command line."""
        script = httpx.get(f"{self.boot_url}/boot.ipxe", params={"mac": self.mac}).text
        kernel_line = next((line for line in script.splitlines()
                            if line.startswith("kernel ")), None)
        if kernel_line is None:
            self.disk_boots += 1  # no ramdisk to boot: the firmware goes on to the disk
            return
        words = kernel_line.split(" || ")[0].split()
        for url in (words[1], next(line.split()[-4] for line in script.splitlines()
                                   if line.startswith("initrd "))):
            httpx.get(url).raise_for_status()
        params = " ".join(words[2:]).replace("${netX/mac}", self.mac)
        with self._agent_lock:
            if generation != self._generation:
                return  # powered off meanwhile
            self.agent_boots += 1
            cmdline = self.workdir / f"cmdline-{self.agent_boots}"
            cmdline.write_text(params + "\n")
            log = self.workdir / f"agent-{self.agent_boots}.log"
            argv = [RAMDISK_PYTHON, "-m", "agent.main", "--cmdline-file", str(cmdline),
                    "--mac", self.mac, "--port", "0", "--listen-host", "127.0.0.1",
                    "--advertise-host", "127.0.0.1",
                    "--heartbeat-interval", str(HEARTBEAT_INTERVAL_S),
                    "--lookup-retry", "0.2", "--lldp-interface", "lo",
                    "--staging-dir", str(self.workdir), "--disk", str(self.disk),
                    "--poweroff-command", "true", "--reboot-command", "true",
                    "--lockdown-command", f"touch {self.workdir}/locked-down",
                    "--power-action-delay", "0.1"]
            self._argv = argv
            self._start_agent(log)

    def _start_agent(self, log: Path) -> None:
        with log.open("wb") as out:
            self.agent = subprocess.Popen(self._argv, cwd=REPO, stdout=out,
                                          stderr=subprocess.STDOUT,
                                          env={**os.environ, "PYTHONPATH": str(REPO)})

    def restart_agent(self) -> None:
        """The agent's process restarts (as after a crash) while the machine stays up: the new
        one has the same command line and none of the old one's state (its token)."""
        with self._agent_lock:
            assert self.agent is not None, "no agent runs"
            self.agent.terminate()
            self.finished.append(self.agent)
            self.agent_restarts += 1
            self._start_agent(self.workdir / f"agent-{self.agent_boots}-restart-"
                                             f"{self.agent_restarts}.log")

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
                         for path in sorted(self.workdir.glob("agent-*.log")))

    def close(self) -> None:
        self._stop_agent()
        for process in self.finished:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
