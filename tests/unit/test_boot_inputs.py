"""What the boot service accepts from the network and from instance_info: file names, TFTP
requests, image checksums."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest
from tftpy.TftpShared import TftpErrors

from services.boot.tftp import BadRequest, parse_request
from services.common.bootconfig.files import UnsafeName, checked_name, file_inside
from services.common.bootconfig.image_cache import InvalidImageSource, shown_url, source_of

ALLOWED = frozenset({"undionly.kpxe", "ipxe.efi"})


@pytest.mark.parametrize("name", [
    "", "../etc/passwd", "a/../../b", "/etc/passwd", "a//b", "./a", "a/.", "a\\..\\b",
    "a\x00b", "a\nb", "x" * 2000,
])
def test_hostile_file_names_are_refused(name: str) -> None:
    with pytest.raises(UnsafeName):
        checked_name(name)


def test_file_inside_follows_links_only_within_the_directory(tmp_path: Path) -> None:
    root = tmp_path / "files"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "kernel").write_bytes(b"k")
    (tmp_path / "secret").write_bytes(b"s")
    (root / "inside").symlink_to(root / "sub" / "kernel")
    (root / "outside").symlink_to(tmp_path / "secret")
    assert file_inside(root, "sub/kernel") == root / "sub" / "kernel"
    assert file_inside(root, "inside") == root / "sub" / "kernel"
    assert file_inside(root, "outside") is None
    assert file_inside(root, "sub") is None  # a directory
    assert file_inside(root, "missing") is None


def rrq(name: bytes, mode: bytes = b"octet", *options: bytes, opcode: int = 1) -> bytes:
    return struct.pack("!H", opcode) + b"\0".join((name, mode, *options)) + b"\0"


def test_a_read_request_for_a_served_file_is_accepted_with_its_options() -> None:
    request = parse_request(rrq(b"/undionly.kpxe", b"OCTET", b"blksize", b"1432", b"tsize",
                                b"0", b"windowsize", b"4"), ALLOWED)
    assert request.filename == "undionly.kpxe"
    assert request.options == {"blksize": "1432", "tsize": "0"}  # unknown options ignored


@pytest.mark.parametrize(("packet", "code"), [
    (b"", None),
    (b"\x00\x01", None),
    (rrq(b"undionly.kpxe", opcode=2), TftpErrors.AccessViolation),      # WRQ
    (rrq(b"undionly.kpxe", opcode=4), None),                           # stray ACK
    (rrq(b"undionly.kpxe", opcode=99), TftpErrors.IllegalTftpOp),
    (rrq(b"../../etc/passwd"), TftpErrors.FileNotFound),
    (rrq(b"qemu/pxe-virtio.rom"), TftpErrors.FileNotFound),
    (rrq(b"undionly.kpxe", b"netascii"), TftpErrors.IllegalTftpOp),
    (rrq(b"undionly.kpxe")[:-1], TftpErrors.IllegalTftpOp),            # no final NUL
    (rrq(b"undionly.kpxe", b"octet", b"blksize"), TftpErrors.IllegalTftpOp),
    (rrq(b"undionly.kpxe", b"octet", b"blksize", b"9" * 300), TftpErrors.FailedNegotiation),
    (rrq(b"undionly.kpxe", b"octet", b"blksize", b"abc"), TftpErrors.FailedNegotiation),
    (rrq(b"undionly.kpxe", b"octet", b"blksize", b"70000"), TftpErrors.FailedNegotiation),
    (rrq(b"undionly.kpxe", b"octet", b"tsize", b"5"), TftpErrors.FailedNegotiation),
    (rrq(b"undionly.kpxe\xff"), TftpErrors.IllegalTftpOp),
    (rrq(b"undionly.kpxe", b"octet", b"x" * 600, b"1"), TftpErrors.IllegalTftpOp),
])
def test_malformed_or_refused_requests(packet: bytes, code: int | None) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_request(packet, ALLOWED)
    assert refused.value.code == code


DATA = b"image bytes"


@pytest.mark.parametrize("info", [
    {"image_os_hash_algo": "sha512", "image_os_hash_value": hashlib.sha512(DATA).hexdigest()},
    {"image_checksum": hashlib.md5(DATA).hexdigest()},
    {"image_checksum": hashlib.sha256(DATA).hexdigest().upper()},
    {"image_checksum": "sha256:" + hashlib.sha256(DATA).hexdigest()},
])
def test_image_checksums_in_ironic_forms(info: dict[str, str]) -> None:
    source = source_of({"image_source": "http://images/disk.qcow2", **info})
    assert hashlib.new(source.algorithm, DATA).hexdigest() == source.digest
    assert source.key == f"{source.algorithm}-{source.digest}"


@pytest.mark.parametrize(("info", "message"), [
    ({"image_source": "6a7c1e9e-glance-uuid", "image_checksum": "0" * 32}, "http"),
    ({"image_source": "http://i/d"}, "no checksum"),
    ({"image_source": "http://i/d", "image_checksum": "abc"}, "length"),
    ({"image_source": "http://i/d", "image_checksum": "z" * 32}, "hexadecimal"),
    ({"image_source": "http://i/d", "image_checksum": "crc32:0000"}, "unknown checksum"),
    ({"image_source": "http://i/d", "image_checksum": "http://i/d.sha256"}, "URL"),
    ({"image_source": "http://i/d", "image_os_hash_algo": "sha1",
      "image_os_hash_value": "0" * 40}, "image_os_hash_algo"),
    ({"image_source": "http://i/d", "image_os_hash_algo": "sha256",
      "image_os_hash_value": "0" * 32}, "64 hexadecimal"),
])
def test_unusable_image_sources_say_why(info: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidImageSource, match=message):
        source_of(info)


def test_shown_urls_lose_credentials_and_query() -> None:
    assert shown_url("https://user:pw@images.example:8443/d.img?X-Amz-Signature=abc") == \
        "https://images.example:8443/d.img"
