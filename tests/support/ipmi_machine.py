"""What an emulated BMC drives: the ``Machine`` protocol, the boot override it keeps
(``BootSetting``) and ``MemoryMachine``, a machine only in memory (the lab drives QEMU instead).

Semantics of ``MemoryMachine`` (chosen to match real BMCs): reset and power cycle of a machine that
is off are refused (``MachineStateError``, the BMC's completion code 0xD5, "not supported in
present state"); power on/off of a machine already in that state do nothing; a one-time boot
override is consumed by the next boot (power on, reset or cycle), a persistent one stays; soft
power off lands after ``soft_off_delay_s`` (``None``: no OS listens to ACPI, the machine stays on).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

POWER_ON = "on"
POWER_OFF = "off"

# Boot device selector (bits 5:2 of the boot flags' second data byte) by Ironic's device names.
BOOT_DEVICE_CODES = {"pxe": 1, "disk": 2, "safe": 3, "diag": 4, "cdrom": 5, "bios": 6,
                     "floppy": 15}


class MachineStateError(Exception):
    """The machine cannot do this in its present state (IPMI completion code 0xD5)."""


@dataclass(frozen=True)
class BootSetting:
    """Boot override: ``device`` None means none (the firmware's own boot order)."""

    device: str | None = None
    persistent: bool = False
    uefi: bool = False


class Machine(Protocol):
    """What a BMC drives. Called on the fleet's one loop thread: every method must return fast."""

    def power_state(self) -> str:
        """``"on"`` or ``"off"``."""

    def power_on(self) -> None: ...
    def power_off(self) -> None: ...
    def power_reset(self) -> None: ...
    def power_cycle(self) -> None: ...
    def soft_shutdown(self) -> None: ...
    def boot_setting(self) -> BootSetting: ...
    def set_boot_setting(self, setting: BootSetting) -> None: ...


class MemoryMachine:
    """A machine that exists only in memory. ``actions`` and ``boots`` record what happened."""

    def __init__(self, power: str = POWER_OFF, soft_off_delay_s: float | None = 0.0) -> None:
        if power not in (POWER_ON, POWER_OFF):
            raise ValueError(f"power must be {POWER_ON!r} or {POWER_OFF!r}, not {power!r}")
        self._lock = threading.Lock()
        self._power = power
        self._soft_off_delay_s = soft_off_delay_s
        self._soft_off_at: float | None = None
        self._boot = BootSetting()
        self.actions: list[str] = []
        # The override in force at each boot (power on from off, reset, cycle), in order.
        self.boots: list[BootSetting] = []

    def _settle(self) -> None:
        if self._soft_off_at is not None and time.monotonic() >= self._soft_off_at:
            self._power = POWER_OFF
            self._soft_off_at = None

    def _boot_now(self) -> None:
        self.boots.append(self._boot)
        if not self._boot.persistent:
            self._boot = BootSetting()

    def power_state(self) -> str:
        with self._lock:
            self._settle()
            return self._power

    def power_on(self) -> None:
        with self._lock:
            self._settle()
            self.actions.append("power_on")
            if self._power == POWER_OFF:
                self._power = POWER_ON
                self._boot_now()

    def power_off(self) -> None:
        with self._lock:
            self.actions.append("power_off")
            self._power = POWER_OFF
            self._soft_off_at = None

    def power_reset(self) -> None:
        self._boot_again("power_reset", "reset of a machine that is off")

    def power_cycle(self) -> None:
        self._boot_again("power_cycle", "power cycle of a machine that is off")

    def _boot_again(self, action: str, refusal: str) -> None:
        """Reset and power cycle: a new boot of a machine that is on, refused when it is off."""
        with self._lock:
            self._settle()
            if self._power == POWER_OFF:
                raise MachineStateError(refusal)
            self.actions.append(action)
            self._soft_off_at = None
            self._boot_now()

    def soft_shutdown(self) -> None:
        with self._lock:
            self._settle()
            self.actions.append("soft_shutdown")
            if self._power == POWER_ON and self._soft_off_delay_s is not None:
                deadline = time.monotonic() + self._soft_off_delay_s
                if self._soft_off_at is None or deadline < self._soft_off_at:
                    self._soft_off_at = deadline
                self._settle()

    def boot_setting(self) -> BootSetting:
        with self._lock:
            return self._boot

    def set_boot_setting(self, setting: BootSetting) -> None:
        if setting.device is not None and setting.device not in BOOT_DEVICE_CODES:
            raise ValueError(f"unknown boot device {setting.device!r}")
        with self._lock:
            self.actions.append("set_boot_setting")
            self._boot = setting

