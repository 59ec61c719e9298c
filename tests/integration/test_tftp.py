"""TFTP of the boot service on loopback: the iPXE binaries of Debian's ipxe package with the
tftpy client, and raw malformed packets that must neither stop the server nor leak files."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tftpy
from tftpy.TftpShared import TftpErrors

from services.boot.tftp import TftpService
from services.common.config import Settings
from tests.support.metrics import scrape, this_process_endpoint
from tests.support.settings import merged_settings

pytestmark = pytest.mark.integration

IPXE = Path("/usr/lib/ipxe")
RRQ, WRQ, DATA, ACK, ERROR = 1, 2, 3, 4, 5


def settings(**sections: dict[str, object]) -> Settings:
    for name in ("undionly.kpxe", "ipxe.efi"):
        assert (IPXE / name).is_file(), f"{IPXE / name} missing: install Debian's ipxe package"
    defaults = {"tftp": {"host": "127.0.0.1", "port": 0, "root": IPXE, "timeout_s": 0.5,
                         "retries": 2}}
    return merged_settings(defaults, **sections)


@pytest.fixture
def tftp() -> Iterator[TftpService]:
    service = TftpService(settings())
    service.start()
    try:
        yield service
    finally:
        service.stop()


def download(service: TftpService, name: str, target: Path, **options: int) -> bytes:
    assert service.port is not None
    client = tftpy.TftpClient("127.0.0.1", service.port, options=options)
    client.download(name, str(target), timeout=3)
    return target.read_bytes()


def request(opcode: int, name: bytes, mode: bytes = b"octet", *options: bytes) -> bytes:
    return struct.pack("!H", opcode) + b"\0".join((name, mode, *options)) + b"\0"


def exchange(service: TftpService, packet: bytes, wait: float = 0.5
             ) -> tuple[bytes, tuple[str, int]] | None:
    """Send ``packet`` from a fresh socket; the first answer and where it came from, or None."""
    assert service.port is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(wait)
        sock.sendto(packet, ("127.0.0.1", service.port))
        try:
            answer, source = sock.recvfrom(70000)
        except TimeoutError:
            return None
        return answer, source


def wait_idle(service: TftpService, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while service.sessions and time.monotonic() < deadline:
        time.sleep(0.02)
    return service.sessions == 0


def error_code(answer: bytes) -> int:
    opcode, code = struct.unpack("!HH", answer[:4])
    assert opcode == ERROR, f"expected an error packet, got opcode {opcode}"
    return int(code)


def test_the_ipxe_binaries_are_served(tftp: TftpService, tmp_path: Path) -> None:
    kpxe = download(tftp, "undionly.kpxe", tmp_path / "a")
    assert kpxe == (IPXE / "undionly.kpxe").read_bytes()
    # ipxe.efi is a link to /boot/ipxe.efi in Debian; large blocks and tsize as iPXE asks
    efi = download(tftp, "/ipxe.efi", tmp_path / "b", blksize=1432, tsize=0)
    assert efi == (IPXE / "ipxe.efi").read_bytes()
    assert wait_idle(tftp)  # the final ACK ended the transfer


MALFORMED: list[tuple[str, bytes, int | None]] = [
    ("empty", b"", None),
    ("one byte", b"\x01", None),
    ("opcode only", b"\x00\x01", None),
    ("garbage opcode", b"\xff\xfe" + b"x" * 40, TftpErrors.IllegalTftpOp),
    ("opcode zero", b"\x00\x00undionly.kpxe\x00octet\x00", TftpErrors.IllegalTftpOp),
    ("truncated RRQ", b"\x00\x01undionly.kp", TftpErrors.IllegalTftpOp),
    ("RRQ without mode", b"\x00\x01undionly.kpxe\x00", TftpErrors.IllegalTftpOp),
    ("write request", request(WRQ, b"undionly.kpxe"), TftpErrors.AccessViolation),
    ("write request outside", request(WRQ, b"../../tmp/enclume-owned"),
     TftpErrors.AccessViolation),
    ("parent directory", request(RRQ, b"../../../etc/passwd"), TftpErrors.FileNotFound),
    ("absolute path", request(RRQ, b"/etc/passwd"), TftpErrors.FileNotFound),
    ("root prefix", request(RRQ, b"/usr/lib/ipxe/../../../etc/shadow"),
     TftpErrors.FileNotFound),
    ("other file of the root", request(RRQ, b"qemu/pxe-virtio.rom"), TftpErrors.FileNotFound),
    ("ISO of the root", request(RRQ, b"ipxe.iso"), TftpErrors.FileNotFound),
    ("NUL-split name", request(RRQ, b"undionly.kpxe\x00../../etc/passwd"),
     TftpErrors.IllegalTftpOp),
    ("binary name", request(RRQ, b"\xff\xfe\x80"), TftpErrors.IllegalTftpOp),
    ("netascii", request(RRQ, b"undionly.kpxe", b"netascii"), TftpErrors.IllegalTftpOp),
    ("huge blksize", request(RRQ, b"undionly.kpxe", b"octet", b"blksize", b"9" * 400),
     TftpErrors.FailedNegotiation),
    ("text blksize", request(RRQ, b"undionly.kpxe", b"octet", b"blksize", b"big"),
     TftpErrors.FailedNegotiation),
    ("option without value", request(RRQ, b"undionly.kpxe", b"octet", b"blksize"),
     TftpErrors.IllegalTftpOp),
    ("65000-byte request", request(RRQ, b"undionly.kpxe", b"octet", b"x" * 65000, b"1"),
     TftpErrors.IllegalTftpOp),
    ("stray DATA", struct.pack("!HH", DATA, 1) + b"data", None),
    ("stray ACK", struct.pack("!HH", ACK, 1), None),
    ("truncated ACK", b"\x00\x04\x00", None),
]


def test_malformed_packets_get_an_error_or_nothing_and_never_a_file(
        tftp: TftpService, tmp_path: Path) -> None:
    for label, packet, expected in MALFORMED:
        answer = exchange(tftp, packet, wait=0.3 if expected is None else 2)
        if expected is None:
            assert answer is None, f"{label}: unexpected answer {answer!r}"
        else:
            assert answer is not None, f"{label}: no answer"
            assert error_code(answer[0]) == expected, f"{label}: {answer[0]!r}"
    assert not Path("/tmp/enclume-owned").exists()
    assert tftp.sessions == 0
    # still serving
    assert download(tftp, "undionly.kpxe", tmp_path / "after") == \
        (IPXE / "undionly.kpxe").read_bytes()


def test_malformed_packets_inside_a_transfer_end_only_that_transfer(
        tftp: TftpService, tmp_path: Path) -> None:
    assert tftp.port is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as intruder:
        client.settimeout(2)
        client.sendto(request(RRQ, b"undionly.kpxe"), ("127.0.0.1", tftp.port))
        first, transfer = client.recvfrom(70000)
        assert struct.unpack("!HH", first[:4]) == (DATA, 1) and len(first) == 4 + 512
        assert transfer[1] != tftp.port  # a port of its own, as TFTP wants
        # someone else's ACK to the transfer's port is dropped, the transfer goes on
        intruder.sendto(struct.pack("!HH", ACK, 1), transfer)
        time.sleep(0.2)
        assert tftp.sessions == 1
        client.sendto(struct.pack("!HH", ACK, 1), transfer)
        second, _ = client.recvfrom(70000)
        assert struct.unpack("!HH", second[:4]) == (DATA, 2)
        # a truncated ACK (struct.error inside tftpy) ends this transfer, not the server
        client.sendto(b"\x00\x04\x00", transfer)
        assert wait_idle(tftp)
    assert download(tftp, "undionly.kpxe", tmp_path / "after") == \
        (IPXE / "undionly.kpxe").read_bytes()


def test_a_silent_client_is_retried_then_dropped(tftp: TftpService) -> None:
    assert tftp.port is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(3)
        client.sendto(request(RRQ, b"ipxe.efi"), ("127.0.0.1", tftp.port))
        blocks = [client.recvfrom(70000)[0][:4] for _ in range(2)]  # sent, then sent again
        assert blocks == [struct.pack("!HH", DATA, 1)] * 2
        assert wait_idle(tftp)


def test_transfers_beyond_the_limit_are_told_the_server_is_busy() -> None:
    service = TftpService(settings(tftp={"max_sessions": 1}))
    service.start()
    try:
        assert exchange(service, request(RRQ, b"undionly.kpxe")) is not None  # left hanging
        busy = exchange(service, request(RRQ, b"undionly.kpxe"))
        assert busy is not None and error_code(busy[0]) == TftpErrors.NotDefined
        assert b"busy" in busy[0]
    finally:
        started = time.monotonic()
        service.stop()
        assert time.monotonic() - started < 2  # stop wakes the loop at once


def test_a_missing_binary_stops_the_start_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"ipxe\.efi is missing"):
        TftpService(settings(tftp={"root": tmp_path})).start()
    with pytest.raises(RuntimeError, match="only plain file names"):
        TftpService(settings(tftp={"files": ["../etc/passwd"]})).start()


def test_transfers_and_refusals_are_counted_in_the_metrics(tftp: TftpService,
                                                           tmp_path: Path) -> None:
    with this_process_endpoint() as url:
        before = scrape(url)
        download(tftp, "undionly.kpxe", tmp_path / "undionly.kpxe")
        refused = exchange(tftp, request(WRQ, b"undionly.kpxe"))
        assert refused is not None and error_code(refused[0]) > 0
        after = scrape(url)
    name = "enclume_tftp_requests_total"
    assert after.value(name, outcome="started") == before.value(name, outcome="started") + 1
    assert after.value(name, outcome="refused") == before.value(name, outcome="refused") + 1
