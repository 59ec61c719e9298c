"""Virtual BMCs of the lab: what VirtualBMC does with libvirt, done with a QEMU process.

`QemuBackedMachine` is a `Machine` (tests/support/ipmi_bmc.py) driving one `QemuMachine`:

- power on: start QEMU with the boot order of the next boot: the boot override (IPMI "next boot
  device" / Redfish BootSourceOverrideTarget) if one is set, else the machine's own order;
  `pxe` puts the NIC first (bootindex 1, its iPXE ROM or OVMF's PXE), `disk` the disk. A one-time
  override is consumed by that boot, a persistent one stays. Other devices (cdrom, bios, ...)
  boot in the machine's own order: the lab's machines have no CD drive or setup screen to show.
- power off: the QEMU process is ended (hard); soft power off presses the ACPI power button
  (QMP `system_powerdown`) and the guest decides. QEMU runs with -no-shutdown, so a guest that
  powers itself off leaves a process in QMP status "shutdown": that reads as off, and the next
  power on replaces that process.
- reset: QMP `system_reset` when the boot order stays the same. QEMU cannot change its boot
  order while running, so a reset that must boot from another device (a one-time `pxe` override
  on a disk-first machine, say) ends the process and starts a new one: the guest sees the same
  thing, a reboot from the wanted device. Power cycle always starts a new process.
- power state: on while QEMU runs and its QMP status is not "shutdown", and while a power on is
  in progress; off otherwise.

The disk image and the UEFI variables (a copy of OVMF_VARS per machine) live in the machine's
directory and survive power cycles, as on real hardware.

The BMC protocols call these methods on their own threads (the IPMI fleet's loop, the Redfish
server's request threads, the Wake-on-LAN listener) and expect them to return at once: starting
and stopping QEMU is queued to one worker thread per machine, which also owns the QEMU processes
(they die with the thread that started them, see ManagedProcess). `wait_idle()` waits for the
queue to drain.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.lab.harness.processes import LabError
from tests.lab.harness.qemu import BootDevice, QemuMachine
from tests.support.ipmi_bmc import POWER_OFF, POWER_ON, BootSetting, MachineStateError

LOG = logging.getLogger(__name__)

# Boot override device (IPMI/Ironic names) -> QEMU boot order; absent: the machine's own order.
BOOT_ORDERS: dict[str, BootDevice] = {"pxe": "network", "disk": "disk"}
OFF_STATUSES = ("off", "shutdown")
IDLE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Boot:
    """One boot the BMC caused: how it happened and from which device QEMU was told to boot."""

    how: str  # "start", "restart" (new process) or "reset" (same process)
    order: BootDevice
    at: float  # time.monotonic()


class QemuBackedMachine:
    """The `Machine` of a virtual BMC, driving `machine` (which must not be started by hand)."""

    def __init__(self, machine: QemuMachine) -> None:
        self.machine = machine
        self.default_order: BootDevice = machine.boot_device  # the "firmware's" own order
        self.boots: list[Boot] = []
        self.errors: list[str] = []  # what failed on the worker (a test checks it is empty)
        self._boot = BootSetting()
        self._lock = threading.Lock()
        self._pending: list[str] = []  # queued actions not finished yet
        self._running_order: BootDevice | None = None
        self._actions: queue.Queue[tuple[str, Callable[[], None]] | None] = queue.Queue()
        self._idle = threading.Condition(self._lock)
        self._worker = threading.Thread(target=self._work, name=f"bmc-{machine.name}",
                                         daemon=True)
        self._worker.start()

    # --- the Machine protocol ------------------------------------------------------------------

    def power_state(self) -> str:
        with self._lock:
            if self._pending:
                return POWER_OFF if self._pending[-1] == "stop" else POWER_ON
        try:
            status = self.machine.status()
        except (OSError, LabError):  # QMP not answering: the process is all there is to go by
            status = "running" if self.machine.running() else "off"
        return POWER_ON if status not in OFF_STATUSES else POWER_OFF

    def power_on(self) -> None:
        if self.power_state() == POWER_ON:
            return
        order = self._next_boot_order()
        self._queue("start", lambda: self._start(order, "start"))

    def power_off(self) -> None:
        self._queue("stop", self._stop)

    def power_reset(self) -> None:
        if self.power_state() == POWER_OFF:
            raise MachineStateError("reset of a machine that is off")
        order = self._next_boot_order()
        self._queue("start", lambda: self._reset(order))

    def power_cycle(self) -> None:
        if self.power_state() == POWER_OFF:
            raise MachineStateError("power cycle of a machine that is off")
        order = self._next_boot_order()
        self._queue("start", lambda: self._start(order, "restart"))

    def soft_shutdown(self) -> None:
        if self.power_state() == POWER_ON:
            self._queue("soft-off", self._press_power_button)

    def boot_setting(self) -> BootSetting:
        with self._lock:
            return self._boot

    def set_boot_setting(self, setting: BootSetting) -> None:
        with self._lock:
            self._boot = setting

    # --- for tests and the lab -----------------------------------------------------------------

    def wait_idle(self, timeout: float = IDLE_TIMEOUT_S) -> None:
        """Wait until every queued power action has been carried out."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LabError(f"machine {self.machine.name}: power actions "
                                   f"{self._pending} not done after {timeout:.0f} s")
                self._idle.wait(remaining)

    def close(self) -> None:
        """Stop the worker and pull the machine's plug."""
        self._actions.put(None)
        self._worker.join(timeout=IDLE_TIMEOUT_S)
        self.machine.stop()

    # --- internals -----------------------------------------------------------------------------

    def _next_boot_order(self) -> BootDevice:
        """The boot order of the boot about to happen; a one-time override is used up."""
        with self._lock:
            setting = self._boot
            if not setting.persistent:
                self._boot = BootSetting()
        if setting.device is None:
            return self.default_order
        return BOOT_ORDERS.get(setting.device, self.default_order)

    def _queue(self, kind: str, action: Callable[[], None]) -> None:
        with self._lock:
            self._pending.append(kind)
        self._actions.put((kind, action))

    def _work(self) -> None:
        while (item := self._actions.get()) is not None:
            kind, action = item
            try:
                action()
            except Exception as exc:  # recorded: a failed action must not stop the BMC
                LOG.exception("machine %s: %s failed", self.machine.name, kind)
                self.errors.append(f"{kind}: {exc}")
            finally:
                with self._idle:
                    self._pending.remove(kind)
                    self._idle.notify_all()

    def _start(self, order: BootDevice, how: str) -> None:
        if self.machine.running():
            self.machine.stop()
        self.machine.boot_device = order
        self.machine.start()
        self._running_order = order
        self.boots.append(Boot(how, order, time.monotonic()))

    def _stop(self) -> None:
        self.machine.stop()
        self._running_order = None

    def _reset(self, order: BootDevice) -> None:
        if self.machine.status() in OFF_STATUSES or order != self._running_order:
            self._start(order, "restart")
            return
        self.machine.reset()
        self.boots.append(Boot("reset", order, time.monotonic()))

    def _press_power_button(self) -> None:
        if self.machine.status() not in OFF_STATUSES:
            self.machine.request_power_off()
