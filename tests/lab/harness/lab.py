"""The virtual lab: switches, namespace hosts and QEMU machines, all cleaned up together."""

from __future__ import annotations

import os
import re
import signal
import threading
from contextlib import ExitStack
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from tests.lab.harness.netns import NetnsHost
from tests.lab.harness.processes import LabError, require_tool
from tests.lab.harness.qemu import QemuMachine
from tests.lab.harness.vde import DEFAULT_VLAN, VdeSwitch

REQUIRED_TOOLS = ["ip", "vde_switch", "vde_plug2tap", "qemu-system-x86_64", "qemu-img",
                  "busybox"]
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")


class Terminated(BaseException):
    """SIGTERM arrived while a lab was open: unwind like Ctrl-C so everything is cleaned up."""


def check_prerequisites() -> None:
    if os.geteuid() != 0:
        raise LabError("the virtual lab needs root (network namespaces, tap devices)")
    for tool in REQUIRED_TOOLS:
        require_tool(tool)


class Lab:
    """`with Lab(workdir) as lab:` — everything made through the lab is stopped and removed on
    leaving the block, newest first, whatever ends it (failure, Ctrl-C, SIGTERM)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._stack = ExitStack()
        self._names: set[str] = set()
        self._previous_sigterm: Any = None

    def __enter__(self) -> Lab:
        check_prerequisites()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        try:
            self.close()
        finally:
            if self._previous_sigterm is not None:
                signal.signal(signal.SIGTERM, self._previous_sigterm)
                self._previous_sigterm = None

    @staticmethod
    def _on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise Terminated(f"signal {signum}")

    def _directory(self, name: str) -> Path:
        if not NAME.match(name) or name in self._names:
            raise LabError(f"lab names are unique, lower-case, short: {name!r}")
        self._names.add(name)
        return self.workdir / name

    def switch(self, name: str = "switch", numports: int = 32) -> VdeSwitch:
        switch = VdeSwitch(self._directory(name), numports)
        self._stack.callback(switch.stop)
        return switch

    def host(self, name: str, switch: VdeSwitch, ipv4: str, ipv6: str | None = None,
             vlan: int = DEFAULT_VLAN) -> NetnsHost:
        """A namespace host on a new port of `switch`, untagged in `vlan`."""
        port = switch.create_port(vlan)
        host = NetnsHost(name, self._directory(name), switch, port, ipv4, ipv6)
        self._stack.callback(host.close)
        return host

    def machine(self, name: str, switch: VdeSwitch | None = None, vlan: int = DEFAULT_VLAN,
                **options: Any) -> QemuMachine:
        """A QEMU machine (not started) with its NIC on a new port of `switch` in `vlan`."""
        port = switch.create_port(vlan) if switch is not None else None
        machine = QemuMachine(name, self._directory(name), switch=switch, port=port, **options)
        self._stack.callback(machine.stop)
        return machine

    def close(self) -> None:
        self._stack.close()
