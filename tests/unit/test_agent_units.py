"""Pure pieces of the agent: configuration, checksums, LLDP, config drives, zero runs, layout."""

from __future__ import annotations

import ast
import base64
import gzip
import hashlib
import struct
import sys
import threading
from pathlib import Path

import pytest

from agent import checksum, config, configdrive, lldp, qcow2, stream, write_image
from agent.commands import RUNNING, SUCCEEDED, Busy, Commands, Spec
from agent.disks import Disk, DiskError, MiB, choose
from agent.errors import BadParams, CommandError

AGENT = Path(__file__).resolve().parents[2] / "agent"


def test_the_agent_imports_only_the_standard_library_rtslib_and_zstandard() -> None:
    # zstandard: Debian's python3-zstandard, in the ramdisk (capture_blocks compresses with it)
    allowed = set(sys.stdlib_module_names) | {"agent", "rtslib_fb", "zstandard"}
    for path in AGENT.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def test_kernel_command_line_and_flags(tmp_path: Path) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("initrd=ramdisk enclume.api_url=http://10.0.0.1:6385/ "
                       "enclume.node=abc BOOTIF=01-AA-bb-cc-dd-ee-ff quiet\n")
    loaded, verbose = config.load(["--cmdline-file", str(cmdline)])
    assert loaded.api_url == "http://10.0.0.1:6385"
    assert loaded.node_uuid == "abc"
    assert loaded.boot_mac == "aa:bb:cc:dd:ee:ff" and loaded.macs == ()
    assert loaded.listen_port == 9999 and loaded.disks == () and not verbose
    assert loaded.extra["enclume.node"] == "abc"
    loaded, _ = config.load(["--cmdline-file", str(cmdline), "--api-url", "http://x:1",
                             "--mac", "52:54:00:00:00:01", "--disk", "/tmp/d", "--port", "0",
                             "--poweroff-command", "touch '/tmp/a b'"])
    assert loaded.api_url == "http://x:1" and loaded.macs == ("52:54:00:00:00:01",)
    assert loaded.poweroff_command == ("touch", "/tmp/a b")
    cmdline.write_text("quiet")
    with pytest.raises(config.ConfigError, match="no API URL"):
        config.load(["--cmdline-file", str(cmdline)])
    with pytest.raises(config.ConfigError, match="not a MAC"):
        config.load(["--cmdline-file", str(cmdline), "--api-url", "http://x", "--mac", "zz"])


def test_discovery_mode_from_the_kernel_command_line(tmp_path: Path) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("enclume.api_url=http://10.0.0.1:6385 enclume.discovery=1 "
                       "BOOTIF=52:54:00:00:00:01\n")
    loaded, _ = config.load(["--cmdline-file", str(cmdline)])
    assert loaded.discovery and loaded.node_uuid is None
    assert loaded.after_discovery == "poweroff" and loaded.discovery_retry_max_s == 60
    loaded, _ = config.load(["--cmdline-file", str(cmdline), "--discovery-retry-max", "2"])
    assert loaded.discovery_retry_max_s == 2
    cmdline.write_text("enclume.api_url=http://x enclume.discovery=1 enclume.after_discovery=stay")
    assert config.load(["--cmdline-file", str(cmdline)])[0].after_discovery == "stay"
    # A node given wins: the agent of a planned boot is never in discovery mode.
    loaded, _ = config.load(["--cmdline-file", str(cmdline), "--node-uuid", "abc"])
    assert not loaded.discovery
    cmdline.write_text("enclume.api_url=http://x enclume.discovery=1 enclume.after_discovery=nap")
    with pytest.raises(config.ConfigError, match="after_discovery=nap is not one of poweroff"):
        config.load(["--cmdline-file", str(cmdline)])
    cmdline.write_text("enclume.api_url=http://x enclume.discovery=1")
    with pytest.raises(config.ConfigError, match="must be positive"):
        config.load(["--cmdline-file", str(cmdline), "--discovery-retry-max", "0"])


def test_checksums() -> None:
    value = hashlib.sha512(b"x").hexdigest()
    assert checksum.from_params({"image_os_hash_algo": "SHA512",
                                 "image_os_hash_value": value.upper()}).value == value
    assert checksum.from_params({"image_checksum": "a" * 32}).algorithm == "md5"
    assert checksum.from_params({"image_checksum": "a" * 64}).algorithm == "sha256"
    assert checksum.from_params({"image_checksum": "sha384:" + "b" * 96}).algorithm == "sha384"
    for bad in ({}, {"image_checksum": "xyz"}, {"image_checksum": "g" * 64},
                {"image_os_hash_algo": "sha256"}, {"image_os_hash_algo": "sha1",
                                                   "image_os_hash_value": "a" * 40}):
        with pytest.raises(BadParams):
            checksum.from_params(bad)
    with pytest.raises(CommandError, match="checksum mismatch for img: its sha256 is 00"):
        checksum.Checksum("sha256", "f" * 64).verify("00", "img")


def _frame(*tlvs: tuple[int, bytes]) -> bytes:
    body = b"".join(struct.pack(">H", (kind << 9) | len(value)) + value for kind, value in tlvs)
    return b"\x01\x80\xc2\x00\x00\x0e" + b"\x52\x54\x00\x00\x00\x02" + b"\x88\xcc" + body


def test_lldp_tlvs() -> None:
    frame = _frame((1, b"\x04\x52\x54\x00\x00\x00\x02"), (2, b"\x05Gi0/1"), (3, b"\x00\x78"),
                   (5, b"switch-1"), (0, b""))
    assert lldp.parse_tlvs(frame) == [[1, "04525400000002"], [2, b"\x05Gi0/1".hex()],
                                      [3, "0078"], [5, b"switch-1".hex()]]
    assert lldp.parse_tlvs(frame[:-6]) == []  # a TLV cut short: nothing, not garbage
    assert lldp.parse_tlvs(b"\x00" * 12 + b"\x08\x00" + b"\x00" * 40) == []  # IPv4


def _iso(label: bytes) -> bytes:
    image = bytearray(64 * 1024)
    image[0x8000:0x8006] = b"\x01CD001"
    image[0x8028:0x8028 + 32] = label.ljust(32)
    return bytes(image)


def test_config_drive_decoding_and_limits() -> None:
    drive = _iso(b"config-2")
    assert configdrive.load(base64.b64encode(gzip.compress(drive)).decode(), 5) == drive
    assert configdrive.load(base64.encodebytes(drive).decode(), 5) == drive  # newlines, no gzip
    with pytest.raises(BadParams, match="labelled config-2"):
        configdrive.load(base64.b64encode(_iso(b"CDROM")).decode(), 5)
    with pytest.raises(BadParams, match="neither an http"):
        configdrive.load("not base64 at all!", 5)
    bomb = gzip.compress(bytes(65 * MiB))  # 65 MiB of zeros, 65 KiB gzipped
    with pytest.raises(BadParams, match="larger than 64 MiB"):
        configdrive.load(base64.b64encode(bomb).decode(), 5)
    assert configdrive.partition_size(drive) == 64 * MiB


def test_zero_runs_are_found_per_block() -> None:
    zeros = bytes(8 * MiB)
    buffer = bytearray(8 * MiB)
    assert stream.data_runs(buffer, 0, len(buffer), zeros) == []
    buffer[1 * MiB + 5] = 1
    buffer[2 * MiB] = 1
    buffer[7 * MiB + 100] = 1
    assert stream.data_runs(buffer, 0, len(buffer), zeros) == [(MiB, 3 * MiB),
                                                                (7 * MiB, 8 * MiB)]
    assert stream.data_runs(buffer, 3 * MiB, 5 * MiB, zeros) == []


def qcow2_header(version: int = 3, backing: int = 0, crypt: int = 0,
                 incompatible: int = 0, size: int = 5 * MiB) -> bytes:
    head = b"QFI\xfb" + struct.pack(">IQIIQI", version, backing, 10 if backing else 0, 16,
                                     size, crypt)
    head = head.ljust(72, b"\x00") + struct.pack(">Q", incompatible)
    return head.ljust(512, b"\x00")


def test_qcow2_header() -> None:
    assert qcow2.parse_header(qcow2_header()) == 5 * MiB
    assert qcow2.parse_header(qcow2_header(version=2)[:72]) == 5 * MiB
    assert qcow2.parse_header(qcow2_header(incompatible=1)) == 5 * MiB  # dirty: harmless
    for header, reason in ((qcow2_header(backing=512), "backing file"),
                           (qcow2_header(crypt=2), "encrypted"),
                           (qcow2_header(incompatible=4), "external data file"),
                           (qcow2_header()[:80], "truncated"),
                           (b"\x00" * 64, "not qcow2")):
        with pytest.raises(CommandError, match=reason):
            qcow2.parse_header(header)


def _disk(path: str, size_mib: int) -> Disk:
    return Disk(path=path, size=size_mib * MiB, is_block=True)


def test_disk_choice() -> None:
    disks = [_disk("/dev/sda", 100_000), _disk("/dev/sdb", 8000), _disk("/dev/sdc", 2000)]
    assert choose(disks, None, 4096 * MiB).path == "/dev/sdb"
    assert choose(disks, "/dev/sdc", 4096 * MiB).path == "/dev/sdc"
    assert choose(disks[2:], None, 4096 * MiB).path == "/dev/sdc"  # the only disk
    with pytest.raises(DiskError, match="not one of this machine's disks"):
        choose(disks, "/dev/sdz", 0)
    with pytest.raises(DiskError, match="no disk"):
        choose([], None, 0)


def test_partition_layout() -> None:
    request = write_image.parse({"image_url": "http://x/i", "image_checksum": "a" * 64,
                                 "image_type": "partition", "root_mb": 100, "swap_mb": 10,
                                 "configdrive": base64.b64encode(_iso(b"config-2")).decode()},
                                5)
    table = write_image.partition_layout(_disk("/dev/vda", 1000), request,
                                         request.configdrive)
    assert [(p.number, p.start // MiB, p.size // MiB, p.type, p.role)
            for p in table.partitions] == [(1, 1, 100, "L", "root"), (2, 101, 10, "S", "swap"),
                                           (3, 936, 64, "L", "configdrive")]
    assert table.label == "dos" and table.partitions[0].bootable
    with pytest.raises(CommandError, match="need 111 MiB"):
        write_image.partition_layout(_disk("/dev/vda", 150), request, request.configdrive)
    uefi = write_image.parse({"image_url": "http://x/i", "image_checksum": "a" * 64,
                              "image_type": "partition", "root_mb": 100, "boot_mode": "uefi",
                              "configdrive": base64.b64encode(_iso(b"config-2")).decode()}, 5)
    table = write_image.partition_layout(_disk("/dev/vda", 1000), uefi, uefi.configdrive)
    assert table.label == "gpt"
    assert [(p.number, p.start // MiB, p.size // MiB, p.type, p.role, p.bootable)
            for p in table.partitions] == [(1, 1, 128, "U", "esp", False),
                                           (2, 129, 100, "L", "root", False),
                                           (3, 935, 64, "L", "configdrive", False)]


def test_one_long_command_at_a_time() -> None:
    release = threading.Event()

    def slow(_: dict[str, object]):  # type: ignore[no-untyped-def]
        return lambda progress: (release.wait(5), {"done": True})[1]

    commands = Commands({"slow": Spec(slow, long=True),
                         "quick": Spec(lambda _: lambda progress: {"ok": 1})})
    first = commands.start("slow", {})
    assert first.status == RUNNING
    with pytest.raises(Busy, match=first.id):
        commands.start("slow", {})
    assert commands.start("quick", {}).status == SUCCEEDED
    release.set()
    for _ in range(100):
        if first.status != RUNNING:
            break
        threading.Event().wait(0.02)
    assert first.status == SUCCEEDED and first.result == {"done": True}
    release.clear()  # the first one ended: a new long command may start
    assert commands.start("slow", {}).status == RUNNING
    release.set()
    with pytest.raises(BadParams, match="unknown command"):
        commands.start("nope", {})
