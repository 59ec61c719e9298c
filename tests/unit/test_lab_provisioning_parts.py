"""Parts of the provisioning lab (tests/lab/harness) that need no namespace: recognising a DHCP
client's frame, the config drives given to deploys, the inventory's shape, and the step times
of NodeProgress."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from tests.lab.harness.dhcp_sniffer import dhcp_client_mac
from tests.lab.harness.progress import NodeProgress
from tests.lab.harness.provisioning import config_drive, has_boot_signature, sha256_of

MAC = "52:54:00:ab:cd:ef"


def _discover(dport: int = 67) -> bytes:
    frame = (Ether(src=MAC, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
             / UDP(sport=68, dport=dport) / BOOTP(chaddr=bytes.fromhex(MAC.replace(":", "")))
             / DHCP(options=[("message-type", "discover"), "end"]))
    return bytes(frame)


def test_a_dhcp_client_frame_gives_its_source_mac_and_nothing_else_does() -> None:
    assert dhcp_client_mac(_discover()) == MAC
    assert dhcp_client_mac(_discover(dport=68)) is None  # a server's answer
    assert dhcp_client_mac(bytes(Ether(src=MAC) / IP() / UDP(dport=53))) is None
    assert dhcp_client_mac(bytes(Ether(src=MAC, type=0x86DD) / (b"\0" * 60))) is None
    assert dhcp_client_mac(_discover()[:30]) is None  # truncated
    assert dhcp_client_mac(b"") is None


def test_a_config_drive_is_a_gzipped_iso_labelled_config_2_with_the_meta_data(
        tmp_path: Path) -> None:
    drive = config_drive({"hostname": "tenant-1", "uuid": "1234"})
    iso = tmp_path / "drive.iso"
    iso.write_bytes(gzip.decompress(base64.b64decode(drive)))
    described = subprocess.run(["isoinfo", "-d", "-i", str(iso)], capture_output=True,
                               text=True, check=True).stdout
    assert "Volume id: config-2" in described
    meta = subprocess.run(["isoinfo", "-R", "-x", "/openstack/latest/meta_data.json", "-i",
                           str(iso)], capture_output=True, check=True).stdout
    assert json.loads(meta) == {"hostname": "tenant-1", "uuid": "1234"}


def test_checksum_files_and_boot_signatures(tmp_path: Path) -> None:
    line = tmp_path / "disk.raw.sha256"
    line.write_text(f"{'ab' * 32}  disk.raw\n")
    assert sha256_of(line) == "ab" * 32
    line.write_text("not-a-digest disk.raw\n")
    with pytest.raises(RuntimeError, match="no sha256 digest"):
        sha256_of(line)
    sector = bytearray(512)
    assert not has_boot_signature(bytes(sector))
    sector[510:512] = b"\x55\xaa"
    assert has_boot_signature(bytes(sector))
    assert not has_boot_signature(b"\x55\xaa")


def test_node_progress_records_each_state_once_and_times_the_steps(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([10.0, 11.0, 15.0])  # read once per change
    monkeypatch.setattr("tests.lab.harness.progress.time.monotonic", lambda: next(clock))
    answers = iter([("deploying", "active"), ("wait call-back", "active"),
                    ("wait call-back", "active"), ("active", None)])
    seen: list[str] = []

    def get_node(name: str) -> dict[str, Any]:
        state, target = next(answers)
        return {"provision_state": state, "target_provision_state": target,
                "last_error": None, "reservation": None}

    progress = NodeProgress(get_node, lambda name, change: seen.append(change.provision_state))
    for _ in range(4):
        progress.poll(["node-1"])
    assert seen == ["deploying", "wait call-back", "active"]
    assert progress.first_seen("node-1", "active") == 15.0
    assert progress.first_seen("node-1", "deploying", since=10.5) is None
    assert progress.steps("node-1", since=0.0, until=20.0) == [
        ("deploying", 1.0), ("wait call-back", 4.0), ("active", 5.0)]
