"""A virtual machine of the lab: QEMU (TCG) with BIOS or UEFI firmware, a disk and a NIC on a
switch port, its serial console in a file and a QMP socket to power it off, reset it and ask
its state (what a virtual BMC drives)."""

from __future__ import annotations

import re
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tests.lab.harness.processes import (
    LabError,
    ManagedProcess,
    check_socket_path,
    require_tool,
    tail,
    wait_until,
)
from tests.lab.harness.qmp import qmp_execute
from tests.lab.harness.vde import VdeSwitch

Firmware = Literal["bios", "uefi"]
BootDevice = Literal["network", "disk"]
# Who network-boots: the iPXE option ROM of the NIC, or the firmware's own PXE (OVMF only:
# SeaBIOS has none), which then chainloads iPXE over TFTP as a real PC's PXE ROM would.
NetworkBoot = Literal["ipxe-rom", "firmware-pxe"]
QEMU = "qemu-system-x86_64"
# Debian's ovmf package: the 4 MiB build first, the 2 MiB one of older releases second.
OVMF_CANDIDATES = [
    (Path("/usr/share/OVMF/OVMF_CODE_4M.fd"), Path("/usr/share/OVMF/OVMF_VARS_4M.fd")),
    (Path("/usr/share/OVMF/OVMF_CODE.fd"), Path("/usr/share/OVMF/OVMF_VARS.fd")),
]
# QEMU's own MAC prefix; the rest is random so that concurrent labs do not collide.
MAC_PREFIX = "52:54:00"
# virtio-net-pci loads Debian's iPXE ROM (ipxe-qemu's efi-virtio.rom: BIOS and UEFI images).
NIC_MODEL = "virtio-net-pci"
# On the console: OVMF starting its boot entry for the virtio disk ("Misc Device" is its name for
# virtio-blk), as opposed to its network entries ("UEFI PXEv4", "UEFI HTTPv4").
UEFI_DISK_BOOT = re.compile(r'BdsDxe: starting Boot[0-9A-F]{4} "UEFI Misc Device"')
START_TIMEOUT_S = 15.0
SERIAL_POLL_S = 0.2
SERIAL_TYPING_S = 1.0  # a typing client stays connected this long


@dataclass(frozen=True)
class DirectKernel:
    """Boot a kernel given to QEMU directly (-kernel/-initrd/-append) instead of the firmware."""

    vmlinuz: Path
    initramfs: Path
    command_line: str


def find_ovmf() -> tuple[Path, Path]:
    """(code, vars template) of Debian's OVMF build."""
    for code, variables in OVMF_CANDIDATES:
        if code.is_file() and variables.is_file():
            return code, variables
    raise LabError("OVMF firmware not found in /usr/share/OVMF: run `make deps` (package ovmf)")


def random_mac() -> str:
    return MAC_PREFIX + "".join(f":{byte:02x}" for byte in secrets.token_bytes(3))


class QemuMachine:
    """One QEMU machine; `start()` powers it on (a new process), `stop()` pulls the plug.

    Its disk, UEFI variables and console log live in `workdir` and survive restarts. QEMU runs
    with -no-shutdown: a guest powering off leaves the process in QMP status "shutdown".
    """

    def __init__(self, name: str, workdir: Path, firmware: Firmware = "bios",
                 switch: VdeSwitch | None = None, port: int | None = None,
                 mac: str | None = None, memory_mib: int = 512, disk_size: str = "2G",
                 boot_device: BootDevice = "network", network_boot: NetworkBoot = "ipxe-rom",
                 direct_kernel: DirectKernel | None = None, disk_image: Path | None = None,
                 extra_disks: tuple[Path, ...] = ()) -> None:
        """`disk_image`: the disk starts as a copy-on-write overlay of this qcow2 image (left
        unchanged); `extra_disks`: raw images attached read-only as further virtio disks (a
        config drive). The serial port is a Unix socket (`serial_socket`, QEMU listening: a
        test types through it, a BMC's SOL relay connects to it), always logged."""
        require_tool(QEMU)
        if (switch is None) != (port is None):
            raise LabError("a machine's NIC needs both a switch and a port (or neither)")
        if network_boot == "firmware-pxe" and firmware != "uefi":
            raise LabError("SeaBIOS has no PXE of its own: firmware-pxe needs UEFI firmware")
        self.name = name
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.firmware = firmware
        self.switch = switch
        self.port = port
        self.mac = mac or random_mac()
        self.memory_mib = memory_mib
        self.boot_device = boot_device
        self.network_boot = network_boot
        self.direct_kernel = direct_kernel
        self.extra_disks = extra_disks
        self.serial_log = workdir / "serial.log"
        self.qmp_socket = check_socket_path(workdir / "qmp.sock")
        # The serial line's input: a test types at the machine's console through this socket
        # (`type_serial`) or a BMC's SOL relay holds it; what the machine prints goes to
        # serial_log, a client or not.
        self.serial_socket = check_socket_path(workdir / "serial.sock")
        self.disk = workdir / "disk.qcow2"
        self.process: ManagedProcess | None = None
        self.started_at: float | None = None
        self._serial_start = 0
        self._create_disk(disk_size, disk_image)
        self._uefi_vars = self._copy_uefi_vars() if firmware == "uefi" else None

    def _create_disk(self, size: str, image: Path | None) -> None:
        require_tool("qemu-img")
        backing = ["-b", str(image.resolve()), "-F", "qcow2"] if image is not None else []
        done = subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", *backing,
                               str(self.disk), size],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise LabError(f"qemu-img create {self.disk} failed: {done.stderr.strip()}")

    def _copy_uefi_vars(self) -> Path:
        _code, template = find_ovmf()
        writable = self.workdir / "OVMF_VARS.fd"
        shutil.copyfile(template, writable)
        return writable

    def _firmware_args(self) -> list[str]:
        if self.firmware == "bios":
            return []  # SeaBIOS is QEMU's default
        code, _template = find_ovmf()
        return ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
                "-drive", f"if=pflash,format=raw,unit=1,file={self._uefi_vars}"]

    def _device_args(self) -> list[str]:
        network_first = self.boot_device == "network"
        args = ["-drive", f"file={self.disk},if=none,id=disk0,format=qcow2",
                "-device", f"virtio-blk-pci,drive=disk0,bootindex={2 if network_first else 1}"]
        for index, extra in enumerate(self.extra_disks, start=1):
            args += ["-drive", f"file={extra},if=none,id=disk{index},format=raw,readonly=on",
                     "-device", f"virtio-blk-pci,drive=disk{index}"]
        if self.switch is not None:
            rom = ",romfile=" if self.network_boot == "firmware-pxe" else ""
            args += ["-netdev", f"vde,id=net0,sock={self.switch.socket_dir},port={self.port}",
                     "-device", f"{NIC_MODEL},netdev=net0,mac={self.mac},"
                                f"bootindex={1 if network_first else 2}{rom}"]
        if self.direct_kernel is not None:
            args += ["-kernel", str(self.direct_kernel.vmlinuz),
                     "-initrd", str(self.direct_kernel.initramfs),
                     "-append", self.direct_kernel.command_line]
        return args

    def command_line(self) -> list[str]:
        # graphics=off: SeaBIOS and iPXE print to the serial console too (there is no screen).
        return [
            QEMU, "-name", self.name, "-accel", "tcg", "-machine", "q35,graphics=off",
            "-m", str(self.memory_mib), "-smp", "1", "-nodefaults", "-display", "none",
            "-chardev", f"socket,id=serial0,path={self.serial_socket},server=on,wait=off,"
                        f"logfile={self.serial_log},logappend=on",
            "-serial", "chardev:serial0",
            "-qmp", f"unix:{self.qmp_socket},server=on,wait=off",
            "-no-shutdown",
            *self._firmware_args(), *self._device_args(),
        ]

    def start(self) -> None:
        """Power on: start QEMU and wait for its QMP socket."""
        if self.process is not None and self.process.alive():
            raise LabError(f"machine {self.name} is already running")
        self.qmp_socket.unlink(missing_ok=True)
        self._mark_boot()
        self.process = ManagedProcess(f"qemu-{self.name}", self.command_line(),
                                      self.workdir / "qemu.log")
        try:
            wait_until(self._qmp_ready, START_TIMEOUT_S, f"QMP of machine {self.name}")
        except BaseException:
            self.stop()
            raise

    def _mark_boot(self) -> None:
        """A new boot begins: console waits and timings count from here."""
        self._serial_start = self.serial_log.stat().st_size if self.serial_log.exists() else 0
        self.started_at = time.monotonic()

    def _qmp_ready(self) -> bool:
        assert self.process is not None
        self.process.check_alive()
        if not self.qmp_socket.exists():
            return False
        try:
            self.qmp("query-status")
        except OSError:
            return False
        return True

    def running(self) -> bool:
        return self.process is not None and self.process.alive()

    def qmp(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        return qmp_execute(self.qmp_socket, command, arguments)

    def status(self) -> str:
        """QMP run state ("running", "shutdown", "paused", …), or "off" without a process."""
        if not self.running():
            return "off"
        return str(self.qmp("query-status")["status"])

    def reset(self) -> None:
        """Hard reset, like the reset button; a machine in "shutdown" state starts again."""
        self._mark_boot()
        self.qmp("system_reset")
        if self.status() != "running":
            self.qmp("cont")

    def request_power_off(self) -> None:
        """ACPI power button: the guest decides (a soft power off)."""
        self.qmp("system_powerdown")

    def power_off(self, timeout: float = START_TIMEOUT_S) -> None:
        """Hard power off: QEMU quits (over QMP), its process ends."""
        if not self.running():
            return
        assert self.process is not None
        self.qmp("quit")
        if self.process.wait_exit(timeout) is None:
            raise LabError(f"machine {self.name} did not quit within {timeout:.0f} s")

    def wait_for_status(self, status: str, timeout: float) -> None:
        wait_until(lambda: self.status() == status, timeout,
                   f"machine {self.name} to reach status {status!r}", interval=0.2)

    def serial_text(self, since_start: bool = True) -> str:
        """The console output of the current boot (since start or reset), or all of it."""
        if not self.serial_log.exists():
            return ""
        with self.serial_log.open("rb") as log:
            log.seek(self._serial_start if since_start else 0)
            return log.read().decode(errors="replace")

    def type_serial(self, line: str) -> None:
        """Type ``line`` and Enter (CR, as a serial terminal sends it) at the serial console."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(START_TIMEOUT_S)
            client.connect(str(self.serial_socket))
            client.sendall(line.encode() + b"\r")
            # Stay connected a moment, reading what the machine prints (its log has it): QEMU
            # takes the keys as fast as the UART's FIFO drains and drops what is left unread
            # when the client hangs up.
            until = time.monotonic() + SERIAL_TYPING_S
            client.settimeout(0.1)
            while time.monotonic() < until:
                try:
                    if not client.recv(65536):
                        break  # QEMU closed the connection
                except TimeoutError:
                    pass

    def wait_for_serial(self, marker: str, timeout: float) -> str:
        """The first console line containing `marker` in this boot; LabError (with the
        end of the console and QEMU's log) after `timeout` seconds or if QEMU exits."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.serial_text().splitlines():
                if marker in line:
                    return line
            if not self.running() or time.monotonic() > deadline:
                reason = "QEMU exited" if not self.running() else f"{timeout:.0f} s passed"
                raise LabError(
                    f"machine {self.name}: {marker!r} not on the console ({reason}).\n"
                    f"--- console (end) ---\n{tail(self.serial_log, 40)}\n"
                    f"--- qemu log ---\n{tail(self.workdir / 'qemu.log', 20)}")
            time.sleep(SERIAL_POLL_S)

    def seconds_since_start(self) -> float:
        if self.started_at is None:
            raise LabError(f"machine {self.name} was never started")
        return time.monotonic() - self.started_at

    def stop(self) -> None:
        """Pull the plug: end the QEMU process by its PID (cleanup; no guest involvement)."""
        if self.process is not None:
            self.process.stop()
