"""The agent on a machine of its own: a network namespace joined by a veth pair.

It finds its callback address from the route to the API, reports its NIC (MAC, IPv4, carrier)
and the LLDP neighbour a "switch" (a raw socket on the other end of the veth) advertises.
"""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

import pytest

from tests.integration.test_agent_harness import FakeApi, MiB, make_disk, running_agent
from tests.support.netns import ip, veth_namespace

pytestmark = pytest.mark.integration
LLDP_MULTICAST = bytes.fromhex("0180c200000e")


def lldp_frame(source_mac: bytes) -> tuple[bytes, list[list[object]]]:
    tlvs = [(1, b"\x04" + source_mac), (2, b"\x05Gi1/0/7"), (3, b"\x00\x78"),
            (5, b"rack-3-switch"), (0, b"")]
    body = b"".join(struct.pack(">H", (kind << 9) | len(value)) + value for kind, value in tlvs)
    expected = [[kind, value.hex()] for kind, value in tlvs if kind]
    return LLDP_MULTICAST + source_mac + b"\x88\xcc" + body, expected


def test_agent_in_its_own_namespace_reports_its_nic_and_lldp_neighbour(tmp_path: Path) -> None:
    with veth_namespace("agent") as link:
        api = FakeApi(host=link.root_address)
        try:
            mac = ip("-n", link.name, "-j", "link", "show", link.namespace_interface)
            mac = mac.split('"address":"')[1].split('"')[0]
            disk = make_disk(tmp_path / "disk.img", 8 * MiB)
            with running_agent(api, tmp_path, [disk], mac=mac,
                               prefix=["ip", "netns", "exec", link.name],
                               network=["--listen-host", "0.0.0.0"]) as agent:
                assert agent.url.startswith(f"http://{link.namespace_address}:"), agent.url
                switch = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
                switch.bind((link.root_interface, 0))
                root_mac = bytes.fromhex(Path(f"/sys/class/net/{link.root_interface}/address")
                                         .read_text().strip().replace(":", ""))
                frame, expected = lldp_frame(root_mac)
                deadline = time.monotonic() + 10
                while True:
                    switch.send(frame)
                    status, document = agent.command("inventory.get")
                    assert status == 200, document
                    nics = document["command_result"]["inventory"]["interfaces"]
                    if (nics and nics[0]["lldp"]) or time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
                switch.close()
        finally:
            api.close()
    assert nics == [{"name": link.namespace_interface, "mac_address": mac,
                     "ipv4_address": link.namespace_address, "has_carrier": True,
                     "lldp": expected}]
