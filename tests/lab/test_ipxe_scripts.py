"""The boot service's iPXE scripts run by Debian's own iPXE (the ipxe-qemu ROM of a QEMU NIC).

QEMU's user-mode network gives the machine the boot service's script URL by DHCP and reaches
the host's loopback as 10.0.2.2, so no namespace is needed. What the machine ran is read from
its exit code: a tiny multiboot "kernel" and a tiny boot sector each write their own byte to
QEMU's isa-debug-exit port. Shown for real: the chain script's ``${netX/mac}`` expansion, the
ramdisk script (kernel, ``initrd --name``, boot) with its retries after failed downloads, and
the BIOS local boot (``sanboot --drive 0x80``).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from services.boot.http import create_boot_app
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.models import Node, Port
from tests.support.asgi import bound_socket, serving, url_of

pytestmark = [pytest.mark.lab, pytest.mark.slow]

QEMU = "qemu-system-x86_64"
MAC = "52:54:00:5c:71:01"
HOST_FROM_GUEST = "10.0.2.2"  # QEMU user networking: the host's loopback
DEBUG_EXIT_PORT = 0xF4
KERNEL_BYTE, DISK_BYTE = 0x42, 0x31
BOOT_TIMEOUT_S = 90.0


def exit_status(byte: int) -> int:
    """QEMU's exit status after a guest wrote ``byte`` to isa-debug-exit."""
    return (byte << 1) | 1


def write_byte_and_halt(byte: int) -> bytes:
    # mov al, byte; out DEBUG_EXIT_PORT, al; hlt; jmp $ (same encoding in 16 and 32 bits)
    return bytes([0xB0, byte, 0xE6, DEBUG_EXIT_PORT, 0xF4, 0xEB, 0xFE])


def multiboot_kernel(byte: int) -> bytes:
    """A raw multiboot image (address fields in the header) loaded at 1 MiB."""
    magic, flags, load = 0x1BADB002, 0x00010000, 0x100000
    header = struct.pack("<8I", magic, flags, (-(magic + flags)) & 0xFFFFFFFF, load, load, 0, 0,
                         load + 32)
    return header + write_byte_and_halt(byte) + bytes(64)


def boot_sector(byte: int) -> bytes:
    sector = bytearray(512)
    code = write_byte_and_halt(byte)
    sector[:len(code)] = code
    sector[510:] = b"\x55\xaa"
    return bytes(sector)


class FlakyKernelServer:
    """Answers 404 to the first ``failures`` downloads of the kernel, then serves it."""

    def __init__(self, kernel: bytes, failures: int) -> None:
        self.hits: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] += 1
                if server.hits[self.path] <= failures:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(kernel)))
                self.end_headers()
                self.wfile.write(kernel)

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'enclume.sqlite'}"
    upgrade_schema(url)
    return Database(url)


def enroll(db: Database, boot: dict[str, Any]) -> None:
    with db.session() as session:
        node = Node(driver="fake-hardware", driver_internal_info={"boot": boot})
        session.add(node)
        session.flush()
        session.add(Port(address=MAC, node_id=node.id))


@pytest.fixture
def boot_service(tmp_path: Path, db: Database) -> Iterator[tuple[str, Path]]:
    """The boot service's HTTP app on loopback; yields its URL as the guest sees it, and its
    files directory."""
    files = tmp_path / "files"
    sock = bound_socket()
    guest_url = url_of(sock).replace("127.0.0.1", HOST_FROM_GUEST)
    settings = Settings(
        process={"data_dir": tmp_path},
        boot={"files_dir": files, "public_url": guest_url},
    )
    with serving(create_boot_app(settings, db), sock):
        yield guest_url, files


def run_machine(tmp_path: Path, boot_url: str) -> int:
    """Boot a BIOS machine from the network (the DHCP boot file has no MAC: the boot service's
    chain script asks again with it); its exit status."""
    if shutil.which(QEMU) is None:
        pytest.fail(f"{QEMU} is missing: install Debian's qemu-system-x86 and ipxe-qemu "
                    f"(`make deps`)")
    disk = tmp_path / "disk.img"
    disk.write_bytes(boot_sector(DISK_BYTE) + bytes(1024 * 1024))
    command = [
        QEMU, "-accel", "tcg", "-m", "128", "-display", "none", "-serial", "null",
        "-no-reboot", "-boot", "n",
        "-netdev", f"user,id=n0,bootfile={boot_url}/boot.ipxe",
        "-device", f"virtio-net-pci,netdev=n0,mac={MAC}",
        "-drive", f"file={disk},format=raw,if=ide",
        "-device", f"isa-debug-exit,iobase={DEBUG_EXIT_PORT:#x},iosize=0x04",
    ]
    log = tmp_path / "qemu.log"
    with log.open("wb") as out:
        machine = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        return machine.wait(timeout=BOOT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the machine did not finish booting within {BOOT_TIMEOUT_S:.0f} s; "
                    f"QEMU said: {log.read_text(errors='replace')[-2000:]}")
    finally:
        if machine.poll() is None:
            machine.kill()
            machine.wait()


def test_the_ramdisk_script_retries_failed_downloads_then_boots_the_kernel(
        tmp_path: Path, db: Database, boot_service: tuple[str, Path]) -> None:
    boot_url, files = boot_service
    (files / "initrd.img").write_bytes(b"ramdisk of the test")
    flaky = FlakyKernelServer(multiboot_kernel(KERNEL_BYTE), failures=2)
    try:
        enroll(db, {"mode": "ramdisk", "boot_mode": "bios",
                    "kernel": f"http://{HOST_FROM_GUEST}:{flaky.port}/kernel",
                    "ramdisk": f"{boot_url}/files/initrd.img",
                    "kernel_params": "enclume.node=lab"})
        started = time.monotonic()
        status = run_machine(tmp_path, boot_url)
        took = time.monotonic() - started
    finally:
        flaky.http.shutdown()
        flaky.http.server_close()
    assert status == exit_status(KERNEL_BYTE), f"exit status {status}"
    assert flaky.hits["/kernel"] == 3  # two failed attempts, the third one booted
    assert took > 2 * 5  # the script paused between attempts


def test_the_bios_local_boot_script_boots_the_first_disk(
        tmp_path: Path, db: Database, boot_service: tuple[str, Path]) -> None:
    boot_url, _ = boot_service
    enroll(db, {"mode": "local", "boot_mode": "bios"})
    status = run_machine(tmp_path, boot_url)
    assert status == exit_status(DISK_BYTE), f"exit status {status}"
