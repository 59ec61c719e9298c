"""A Redfish BMC for lab machines: sushy-emulator's own Flask application (its routes, templates,
authentication) with a systems driver of ours that drives `QemuBackedMachine`s.

sushy-tools 2.2 chooses its systems driver from its configuration (libvirt, nova, ironic or
fake) and has no plugin hook; without libvirt none fits. Its application builds the driver once,
in the memoized `Application.systems` property, so this module puts a `QemuSystemsDriver` into
that memo before the first request, and serves the application with werkzeug on a socket made
inside the lab host's namespace (tests/lab/harness/nsenter.py). The application is a module-level
singleton of sushy-tools: one `RedfishBmc` per process at a time.

What the emulator does not carry and therefore neither does this BMC: `BootSourceOverrideEnabled`
always reads "Continuous" and a "Once" request is taken as persistent (sushy-emulator ignores the
field for every driver); the boot mode is the machine's firmware and cannot be switched (a PATCH
asking for the other mode is refused with 400).
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

from sushy_tools import error as sushy_error
from sushy_tools.emulator import main as emulator
from sushy_tools.emulator.resources.systems.base import AbstractSystemsDriver
from werkzeug.serving import BaseWSGIServer, make_server

from tests.lab.harness.bmc import QemuBackedMachine
from tests.lab.harness.netns import NetnsHost
from tests.lab.harness.nsenter import in_netns
from tests.lab.harness.processes import LabError
from tests.support.aio import write_htpasswd
from tests.support.ipmi_bmc import POWER_ON, BootSetting, MachineStateError

SYSTEMS_PATH = "/redfish/v1/Systems"
# Redfish BootSourceOverrideTarget <-> the override devices of the Machine protocol.
TARGETS = {"Pxe": "pxe", "Hdd": "disk", "Cd": "cdrom", "BiosSetup": "bios"}
DEVICES = {device: target for target, device in TARGETS.items()}
ORDER_TARGETS = {"network": "Pxe", "disk": "Hdd"}
BOOT_MODES = {"bios": "Legacy", "uefi": "UEFI"}
STOP_TIMEOUT_S = 10.0
_in_use = threading.Lock()  # the emulator application is one per process


class QemuSystemsDriver(AbstractSystemsDriver):
    """sushy-emulator systems driver over lab machines, each known by a UUID and its name."""

    def __init__(self, machines: dict[str, QemuBackedMachine]) -> None:
        self._machines = machines

    def _get(self, identity: str) -> QemuBackedMachine:
        for system_id, machine in self._machines.items():
            if identity in (system_id, machine.machine.name):
                return machine
        raise sushy_error.NotFound(f"no system {identity!r}")

    def _uuid_of(self, identity: str) -> str:
        machine = self._get(identity)
        return next(key for key, value in self._machines.items() if value is machine)

    @property
    def driver(self) -> str:
        return "<lab QEMU machines>"

    @property
    def systems(self) -> list[str]:
        return list(self._machines)

    def uuid(self, identity: str) -> str:
        return self._uuid_of(identity)

    def name(self, identity: str) -> str:
        return self._get(identity).machine.name

    def get_power_state(self, identity: str) -> str:
        return "On" if self._get(identity).power_state() == POWER_ON else "Off"

    def set_power_state(self, identity: str, state: str) -> None:
        machine = self._get(identity)
        try:
            if state in ("On", "ForceOn"):
                machine.power_on()
            elif state == "ForceOff":
                machine.power_off()
            elif state == "GracefulShutdown":
                machine.soft_shutdown()
            elif state in ("ForceRestart", "GracefulRestart"):
                machine.power_reset()
            elif state == "PushPowerButton":
                if machine.power_state() == POWER_ON:
                    machine.soft_shutdown()
                else:
                    machine.power_on()
            else:
                raise sushy_error.BadRequest(f"reset type {state!r} is not supported")
        except MachineStateError as exc:
            raise sushy_error.Conflict(str(exc)) from None

    def get_boot_device(self, identity: str) -> str:
        machine = self._get(identity)
        device = machine.boot_setting().device
        if device is None:
            return ORDER_TARGETS[machine.default_order]
        return DEVICES.get(device, "Hdd")

    def set_boot_device(self, identity: str, boot_source: str) -> None:
        if boot_source not in TARGETS:
            raise sushy_error.BadRequest(f"boot source {boot_source!r} is not supported; "
                                         f"use one of {', '.join(TARGETS)}")
        self._get(identity).set_boot_setting(BootSetting(TARGETS[boot_source], persistent=True))

    def get_boot_mode(self, identity: str) -> str:
        return BOOT_MODES[self._get(identity).machine.firmware]

    def set_boot_mode(self, identity: str, boot_mode: str) -> None:
        current = self.get_boot_mode(identity)
        if boot_mode != current:
            raise sushy_error.BadRequest(f"this machine's firmware boots {current} only, "
                                         f"not {boot_mode}")

    def get_total_memory(self, identity: str) -> int:
        return max(1, self._get(identity).machine.memory_mib // 1024)

    def get_total_cpus(self, identity: str) -> int:
        return 1

    def get_nics(self, identity: str) -> list[dict[str, str]]:
        mac = self._get(identity).machine.mac
        return [{"id": mac, "mac": mac}]


def _install(driver: QemuSystemsDriver | None) -> None:
    """Make `driver` what the emulator application's `systems` returns (None: forget it)."""
    systems = emulator.Application.systems.fget.__wrapped__  # type: ignore[attr-defined]
    # A fresh memo: the managers and chassis drivers memoized with an older systems driver go.
    emulator.app._cache = {} if driver is None else {  # type: ignore[attr-defined]
        systems: {(frozenset(), frozenset()): driver}}


class RedfishBmc:
    """sushy-emulator serving `machines` on 127.0.0.1 of `host`'s namespace, basic auth."""

    def __init__(self, host: NetnsHost, workdir: Path, username: str, password: str) -> None:
        if not _in_use.acquire(blocking=False):
            raise LabError("sushy-emulator's application is one per process: close the other "
                           "RedfishBmc first")
        self.host = host
        self.username = username
        self._machines: dict[str, QemuBackedMachine] = {}
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        try:
            workdir.mkdir(parents=True, exist_ok=True)
            auth_file = write_htpasswd(workdir / "htpasswd", {username: password})
            _install(QemuSystemsDriver(self._machines))
            application: Any = emulator.RedfishAuthMiddleware(emulator.app, str(auth_file))
            self._server = in_netns(host.name, lambda: make_server(
                "127.0.0.1", 0, application, threaded=True))
            self.port = self._server.server_port
            self._thread = threading.Thread(target=self._server.serve_forever,
                                            name="redfish-bmc", daemon=True)
            self._thread.start()
        except BaseException:
            self.close()
            raise

    @property
    def address(self) -> str:
        """What Ironic calls redfish_address, as the namespace reaches it."""
        return f"http://127.0.0.1:{self.port}"

    def add(self, machine: QemuBackedMachine) -> str:
        """Serve `machine`; its system path (redfish_system_id)."""
        system_id = str(uuid.uuid4())
        self._machines[system_id] = machine
        return f"{SYSTEMS_PATH}/{system_id}"

    def close(self) -> None:
        try:
            if self._server is not None:
                if self._thread is not None:  # shutdown() waits for serve_forever to return
                    self._server.shutdown()
                    self._thread.join(timeout=STOP_TIMEOUT_S)
                self._server.server_close()
            self._server, self._thread = None, None
            _install(None)
        finally:
            if _in_use.locked():
                _in_use.release()
