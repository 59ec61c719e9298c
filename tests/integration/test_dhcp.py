"""The DHCP side of enclume-boot, for real: dnsmasq in a network namespace answering a scapy
client in another, in full mode and in proxy mode (a second dnsmasq owns the addresses), with
the DHCP filter (iptables, legacy backend) in the server's namespace.

Nodes are written to the database as the conductor writes them (``driver_internal_info.boot``);
enclume-boot runs as a process (``ip netns exec``), as in production.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select

from lab.local_mariadb import mariadb_installed, running_mariadb_urls
from lab.local_postgres import running_postgres_urls
from services.boot.dhcp_filter import chain_name
from services.common.db import Database, upgrade_schema
from services.common.models import Node, Port
from tests.support.boot_network import (
    INTERFACE,
    OTHER_IP,
    SERVER_IP,
    BootNetwork,
    BootProcess,
    boot_network,
    world_readable_dir,
)
from tests.support.dhcp_client import DHCP_MAGIC, DhcpClient, Reply, encode_options
from tests.support.dnsmasq_hash import macs_hashed_alike
from tests.support.metrics import Scrape, parse
from tests.support.polling import eventually
from tests.support.procfs import process_alive, stop_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHAIN = chain_name(INTERFACE)
SCRIPT_URL = f"http://{SERVER_IP}:8080/boot.ipxe?mac=${{netX/mac}}"
FULL_RANGE = ("10.77.0.100", "10.77.0.200")
OTHER_RANGE = ("10.77.0.50", "10.77.0.90")
RAMDISK_BOOT = {"mode": "ramdisk", "kernel": f"http://{SERVER_IP}:8080/files/deploy.kernel",
                "ramdisk": f"http://{SERVER_IP}:8080/files/deploy.initramfs",
                "kernel_params": "console=ttyS0", "boot_mode": "uefi"}
LOCAL_BOOT = {"mode": "local", "boot_mode": "bios"}
LOADERS = [(0, "undionly.kpxe"), (7, "ipxe.efi"), (9, "ipxe.efi")]
FOLLOW_DEADLINE_S = 1.0
ANSWER_WAIT_S = 0.4
SILENCE_WAIT_S = 1.0
MAX_UDP_PAYLOAD = 1500 - 20 - 8  # Ethernet MTU less the IPv4 and UDP headers
_macs = itertools.count(1)
T = TypeVar("T")


def new_mac() -> str:
    number = next(_macs) + (os.getpid() % 200) * 0x10000
    return "52:54:00:" + ":".join(f"{(number >> shift) & 0xFF:02x}" for shift in (16, 8, 0))


def require_tools() -> None:
    for tool in ("ip", "dnsmasq", "iptables-legacy"):
        if shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
            pytest.fail(f"{tool} is missing; `make deps` installs it (Debian packages iproute2, "
                        f"dnsmasq-base, iptables)", pytrace=False)




# -- the boot service under test ------------------------------------------------------------

@dataclass
class Boot:
    mode: str
    net: BootNetwork
    process: BootProcess
    db: Database

    def add_node(self, *macs: str, boot: dict[str, Any] | None = None) -> str:
        with self.db.session() as session:
            node = Node(driver="fake-hardware",
                        driver_internal_info={"boot": boot} if boot else {})
            session.add(node)
            session.flush()
            for mac in macs:
                session.add(Port(address=mac, node_id=node.id))
            return node.uuid

    def set_boot(self, node_uuid: str, boot: dict[str, Any] | None) -> None:
        """As the conductor's boot interfaces write it."""
        with self.db.session() as session:
            node = session.execute(select(Node).where(Node.uuid == node_uuid)).scalar_one()
            info = {k: v for k, v in node.driver_internal_info.items() if k != "boot"}
            node.driver_internal_info = {**info, "boot": boot} if boot else info

    def filter_rules(self) -> list[str]:
        return self.net.run(self.net.server, "iptables-legacy", "-S", CHAIN).splitlines()

    def filter_allows(self, mac: str) -> bool:
        rule = f"-A {CHAIN} -m mac --mac-source {mac} -j RETURN".lower()
        return rule in (line.lower() for line in self.filter_rules())

    def health(self) -> tuple[int, dict[str, Any]]:
        """``GET /health`` of the boot service, from inside its namespace."""
        script = ("import json, sys, urllib.error, urllib.request\n"
                  "try:\n"
                  f"    r = urllib.request.urlopen('http://{SERVER_IP}:8080/health', timeout=5)\n"
                  "except urllib.error.HTTPError as e:\n"
                  "    r = e\n"
                  "print(r.status, r.read().decode())\n")
        status, body = self.net.run(self.net.server, sys.executable, "-c", script).split(" ", 1)
        return int(status), json.loads(body)

    def metrics(self) -> Scrape:
        """``GET /metrics`` of the boot service, from inside its namespace."""
        script = ("import urllib.request\n"
                  f"r = urllib.request.urlopen('http://{SERVER_IP}:8080/metrics', timeout=5)\n"
                  "print(r.read().decode())\n")
        return parse(self.net.run(self.net.server, sys.executable, "-c", script))

    def dropped(self) -> int:
        """Packets the filter's final DROP rule has dropped."""
        listing = self.net.run(self.net.server, "iptables-legacy", "-L", CHAIN, "-n", "-v", "-x")
        for line in listing.splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2] == "DROP" and "MAC" not in line:
                return int(fields[0])
        raise AssertionError(f"no final DROP rule in {CHAIN}:\n{listing}")


def ours(replies: list[Reply]) -> list[Reply]:
    return [reply for reply in replies if reply.source == SERVER_IP]


def in_range(address: str, bounds: tuple[str, str]) -> bool:
    low, high = (ipaddress.IPv4Address(bound) for bound in bounds)
    return low <= ipaddress.IPv4Address(address) <= high


def answered(client: DhcpClient, mac: str, **kind: Any) -> list[Reply]:
    return ours(client.discover(mac, wait=ANSWER_WAIT_S, **kind))


def wait_answered(client: DhcpClient, mac: str, **kind: Any) -> Reply:
    replies = eventually(lambda: answered(client, mac, **kind), 30, f"an answer to {mac}")
    assert len(replies) == 1, replies
    return replies[0]


class OtherDhcpServer:
    """The DHCP server that owns the addresses in proxy mode: dnsmasq without any PXE."""

    def __init__(self, net: BootNetwork, directory: Path) -> None:
        config = directory / "other.conf"
        config.write_text("\n".join([
            "port=0", f"interface={INTERFACE}", "bind-interfaces", "no-ping", "user=root",
            f"dhcp-range={OTHER_RANGE[0]},{OTHER_RANGE[1]},255.255.255.0,3600",
            f"dhcp-leasefile={directory / 'other.leases'}", f"pid-file={directory / 'other.pid'}",
        ]) + "\n")
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", net.other, "dnsmasq", "--keep-in-foreground",
             "--log-facility=-", f"--conf-file={config}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        stop_process(self.process, 10)


@pytest.fixture(scope="module")
def net() -> Iterator[BootNetwork]:
    require_tools()
    with boot_network() as network:
        yield network


@pytest.fixture(scope="module")
def client(net: BootNetwork) -> Iterator[DhcpClient]:
    dhcp_client = DhcpClient(net.client, INTERFACE)
    try:
        yield dhcp_client
    finally:
        dhcp_client.close()


def start_boot(net: BootNetwork, data_dir: Path, mode: str, **env: str) -> BootProcess:
    settings = {"ENCLUME_BOOT_DHCP_MODE": mode, "ENCLUME_BOOT_DHCP_NO_PING": "true",
                "ENCLUME_LOG_LEVEL": "INFO", **env}
    if mode == "full":
        settings |= {"ENCLUME_BOOT_DHCP_RANGE_START": FULL_RANGE[0],
                     "ENCLUME_BOOT_DHCP_RANGE_END": FULL_RANGE[1]}
    process = BootProcess(net, data_dir, settings)
    try:
        process.wait_ready()
    except BaseException:
        process.stop()
        raise
    return process


@pytest.fixture(scope="module", params=["full", "proxy"])
def boot(request: pytest.FixtureRequest, net: BootNetwork) -> Iterator[Boot]:
    mode: str = request.param
    data_dir = world_readable_dir(f"enclume-dhcp-{mode}-")
    other = OtherDhcpServer(net, data_dir) if mode == "proxy" else None
    process = None
    try:
        process = start_boot(net, data_dir, mode)
        db = Database(process.database_url)
        yield Boot(mode, net, process, db)
        db.engine.dispose()
    finally:
        if process is not None:
            process.stop()
        if other is not None:
            other.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


# -- answers --------------------------------------------------------------------------------

@pytest.mark.parametrize(("arch", "loader"), LOADERS, ids=["bios", "uefi-7", "uefi-9"])
def test_a_pxe_rom_gets_ipxe_for_its_firmware(boot: Boot, client: DhcpClient, arch: int,
                                              loader: str) -> None:
    mac = new_mac()
    boot.add_node(mac, boot=RAMDISK_BOOT)
    offer = wait_answered(client, mac, arch=arch)
    assert offer.message_type == "2"  # DHCPOFFER
    if boot.mode == "full":
        assert in_range(offer.yiaddr, FULL_RANGE)
        assert offer.siaddr == SERVER_IP and offer.bootfile == loader
        return
    # Proxy mode: no address from us, the PXE marker, and the file name on the second step.
    assert offer.yiaddr == "0.0.0.0" and offer.vendor_class == "PXEClient"
    others = [r for r in client.discover(mac, arch=arch, wait=ANSWER_WAIT_S)
              if r.source == OTHER_IP]
    assert others and in_range(others[0].yiaddr, OTHER_RANGE) and not others[0].bootfile
    if arch == 0:
        # A BIOS ROM picks the (only) item of the PXE menu and asks for it on port 4011.
        assert offer.pxe_menu_types(), offer.options
        item: tuple[int, int] | None = (offer.pxe_menu_types()[0], 0)
    else:
        # UEFI ROMs are sent straight to port 4011 (next-server set, no menu).
        assert offer.siaddr == SERVER_IP
        item = None
    acks = ours(client.boot_request(mac, arch=arch, client_ip=others[0].yiaddr, server=offer,
                                    boot_item=item, wait=ANSWER_WAIT_S))
    assert len(acks) == 1, acks
    assert acks[0].message_type == "5"  # DHCPACK
    assert acks[0].siaddr == SERVER_IP and acks[0].bootfile == loader
    assert acks[0].vendor_class == "PXEClient"


@pytest.mark.parametrize("arch", [0, 7], ids=["bios", "uefi"])
def test_ipxe_gets_the_url_of_its_boot_script(boot: Boot, client: DhcpClient,
                                              arch: int) -> None:
    mac = new_mac()
    boot.add_node(mac, boot=LOCAL_BOOT)  # deployed nodes that boot from the network first
    offer = wait_answered(client, mac, arch=arch, ipxe=True)
    assert offer.bootfile == SCRIPT_URL
    assert offer.siaddr == SERVER_IP
    if boot.mode == "full":
        assert in_range(offer.yiaddr, FULL_RANGE)
    else:
        assert offer.yiaddr == "0.0.0.0" and offer.vendor_class == "PXEClient"


def test_dhcp_messages_are_counted_by_type_in_the_metrics(boot: Boot,
                                                          client: DhcpClient) -> None:
    before = boot.metrics()
    mac = new_mac()
    boot.add_node(mac, boot=LOCAL_BOOT)
    wait_answered(client, mac, arch=0, ipxe=True)
    name = "enclume_dhcp_messages_total"

    def counted() -> Scrape | None:
        scraped = boot.metrics()
        return scraped if scraped.value(name) > before.value(name) else None

    after = eventually(counted, 30, "a DHCP message counted")
    if boot.mode == "full":  # proxy mode: dnsmasq logs its answers as PXE(...)
        assert after.value(name, type="DHCPDISCOVER") > before.value(name, type="DHCPDISCOVER")
        assert after.value(name, type="DHCPOFFER") > before.value(name, type="DHCPOFFER")
    assert after.label_values(name, "type") <= {
        "DHCPDISCOVER", "DHCPOFFER", "DHCPREQUEST", "DHCPACK", "DHCPNAK", "DHCPDECLINE",
        "DHCPRELEASE", "DHCPINFORM", "PXE"}
    assert not any(mac in value for sample in after.samples for value in sample.labels.values())


def test_a_mac_without_a_planned_boot_gets_no_offer(boot: Boot, client: DhcpClient) -> None:
    known_idle, unknown, booting = new_mac(), new_mac(), new_mac()
    boot.add_node(known_idle)
    boot.add_node(booting, boot=RAMDISK_BOOT)
    wait_answered(client, booting, arch=0)
    dropped_before = boot.dropped()
    for mac in (known_idle, unknown):
        for kind in ({"arch": 0}, {"arch": 7}, {"arch": 0, "ipxe": True}):
            replies = client.discover(mac, wait=SILENCE_WAIT_S / 3, **kind)
            assert ours(replies) == [], replies
            if boot.mode == "proxy":
                assert [r.source for r in replies] == [OTHER_IP]  # the network did carry it
    # The filter dropped them before dnsmasq saw them.
    assert boot.dropped() >= dropped_before + 6
    assert not boot.filter_allows(known_idle) and boot.filter_allows(booting)


def test_machines_whose_macs_dnsmasq_hashes_alike_get_different_addresses(
        boot: Boot, client: DhcpClient) -> None:
    """dnsmasq seeds a dynamic address with a hash of the MAC and keeps no record of its
    offers: two machines booting together (a classroom woken at once) whose MACs hash alike
    would be offered one address. Each answered MAC has an address reserved instead."""
    first, second = macs_hashed_alike(2, FULL_RANGE, prefix="52:54:01")
    for mac in (first, second):
        boot.add_node(mac, boot=RAMDISK_BOOT)
    offers = [wait_answered(client, mac, arch=0).yiaddr for mac in (first, second)]
    if boot.mode == "proxy":  # the addresses are the other server's
        assert offers == ["0.0.0.0", "0.0.0.0"]
        return
    assert offers[0] != offers[1], offers
    assert all(in_range(offer, FULL_RANGE) for offer in offers)
    assert wait_answered(client, first, arch=0).yiaddr == offers[0]  # kept


def test_node_state_changes_are_followed_within_a_second(boot: Boot,
                                                         client: DhcpClient) -> None:
    mac = new_mac()
    node = boot.add_node(mac)
    assert answered(client, mac, arch=0) == []

    boot.set_boot(node, RAMDISK_BOOT)
    changed = time.monotonic()
    filter_at = answer_at = None
    while time.monotonic() - changed < FOLLOW_DEADLINE_S and not (filter_at and answer_at):
        if filter_at is None and boot.filter_allows(mac):
            filter_at = time.monotonic() - changed
        if answer_at is None and (offers := ours(client.discover(mac, arch=0, wait=0.1))):
            answer_at = time.monotonic() - changed
            first_address = offers[0].yiaddr
    assert filter_at is not None and answer_at is not None, (filter_at, answer_at)

    boot.set_boot(node, None)
    changed = time.monotonic()
    closed_at = silent_at = None
    while time.monotonic() - changed < FOLLOW_DEADLINE_S and not (closed_at and silent_at):
        if closed_at is None and not boot.filter_allows(mac):
            closed_at = time.monotonic() - changed
        if silent_at is None and not ours(client.discover(mac, arch=0, wait=0.1)):
            silent_at = time.monotonic() - changed
    assert closed_at is not None and silent_at is not None, (closed_at, silent_at)
    print(f"\n{boot.mode}: filter opened in {filter_at:.2f} s, answered in {answer_at:.2f} s; "
          f"filter closed in {closed_at:.2f} s, silent in {silent_at:.2f} s")
    assert answered(client, mac, arch=0) == []

    # Answered again (a node deployed after its cleaning), at the same address: its host file
    # was kept (dnsmasq would refuse the address in a rewritten one), the filter did the rest.
    boot.set_boot(node, RAMDISK_BOOT)
    assert wait_answered(client, mac, arch=0).yiaddr == first_address


def test_router_advertisement_lets_ipxe_stop_waiting_for_ipv6(boot: Boot,
                                                              client: DhcpClient) -> None:
    advert = client.router_advertisement(wait=3.0)
    assert advert is not None, "no router advertisement"
    assert advert["router_lifetime"] == 0  # not offered as a default router
    assert not advert["managed"] and not advert["other"]  # no DHCPv6 to wait for
    assert [p["prefix"] for p in advert["prefixes"]] == ["fd77::"]


# -- robustness -----------------------------------------------------------------------------

def malformed_packets(mac: str) -> list[bytes]:
    chaddr = bytes.fromhex(mac.replace(":", "")).ljust(16, b"\0")
    header = (b"\x01\x01\x06\x00" + os.urandom(4) + b"\0" * 20 + chaddr + b"\0" * 192)
    discover = header + encode_options([(53, b"\x01"), (93, b"\x00\x00"),
                                        (60, b"PXEClient:Arch:00000:UNDI:002001")])
    rng = random.Random(5)
    packets = [
        b"",
        b"\x01",
        header[:100],  # truncated BOOTP header
        header,  # no magic cookie
        header + DHCP_MAGIC,  # no options, no end
        header + DHCP_MAGIC + b"\x35\xc8\x01",  # option 53 longer than the packet
        header + DHCP_MAGIC + bytes(rng.randrange(256) for _ in range(1000)),  # garbage
        header + encode_options([(77, b"\xff" * 255)] * 3 + [(60, b"P" * 255)]),  # huge
        header + encode_options([(53, b"\x01"), (55, bytes(range(255))), (93, b""),
                                 (97, b"\x00"), (94, b"\x01")]),  # short PXE options
        header + encode_options([(53, b"\x01"), (52, b"\x03")]),  # overload into junk fields
        header + encode_options([(53, b"\x03"), (60, b"PXEClient"), (93, b"\x00\x00"),
                                 (43, b"\x47\x09\x80")]),  # boot item sub-option overflows
        header + encode_options([(53, b"\x03"), (82, b"\x01\xff\x00")]),  # relay info
        b"\x01\xff\xff\x00" + header[4:] + DHCP_MAGIC + b"\x35\x01\x01\xff",  # hlen 255
        (discover + b"\x00" * MAX_UDP_PAYLOAD)[:MAX_UDP_PAYLOAD],  # the largest unfragmented
    ]
    for _ in range(300):  # the valid DISCOVER, mutated
        mutated = bytearray(discover)
        for _ in range(rng.randrange(1, 8)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        packets.append(bytes(mutated[:rng.randrange(len(mutated) + 1)]))
    return packets


def test_malformed_dhcp_packets_do_not_kill_the_service(boot: Boot, client: DhcpClient) -> None:
    mac = new_mac()
    boot.add_node(mac, boot=RAMDISK_BOOT)  # allowed: the packets get past the filter
    wait_answered(client, mac, arch=0)
    dnsmasq_pid = boot.process.dnsmasq_pid()
    log_start = len(boot.process.log())
    packets = malformed_packets(mac)
    assert max(len(packet) for packet in packets) <= MAX_UDP_PAYLOAD
    client.send_raw(mac, packets, port=67)
    client.send_raw(mac, packets, port=4011)
    offer = wait_answered(client, mac, arch=7)
    assert offer.bootfile == "ipxe.efi" or boot.mode == "proxy"
    assert boot.process.process.poll() is None, boot.process.log()
    assert boot.process.dnsmasq_pid() == dnsmasq_pid  # the same dnsmasq: never restarted
    assert "exited with status" not in boot.process.log()[log_start:]


def test_dnsmasq_is_restarted_when_it_dies(boot: Boot, client: DhcpClient) -> None:
    mac = new_mac()
    boot.add_node(mac, boot=RAMDISK_BOOT)
    wait_answered(client, mac, arch=0)
    # Down during the restart back-off: the health check says so. The back-off is 1 s, then
    # 2, 4, 8 s for a dnsmasq killed again before it ran stably: a loaded machine that missed a
    # window of 503 kills again and sees a longer one.
    seen = None
    for _window in range(5):
        killed = eventually(boot.process.dnsmasq_pid, 60, "a running dnsmasq")
        os.kill(killed, signal.SIGKILL)  # dnsmasq is a child of the enclume-boot this test started
        seen = eventually(lambda killed=killed: (boot.health()[0] == 503 and "503") or (
            boot.process.dnsmasq_pid() not in (None, killed) and "restarted"), 60,
            "/health to answer 503, or a new dnsmasq")
        if seen == "503":
            break
    assert seen == "503", "/health never answered 503 while dnsmasq was down"
    eventually(lambda: boot.process.dnsmasq_pid() not in (None, killed), 60, "a new dnsmasq")
    wait_answered(client, mac, arch=0)
    assert "restarting in" in boot.process.log()
    status, health = boot.health()
    assert status == 200 and health["dnsmasq"] == "running" and health["dnsmasq_restarts"] >= 1


# -- discovery, refusals, stop: each with an enclume-boot of its own -------------------------

@pytest.fixture(scope="module")
def spare_net() -> Iterator[BootNetwork]:
    """A second network, so that these tests never meet the module's running boot service."""
    require_tools()
    with boot_network() as network:
        yield network


@pytest.fixture
def spare_dir() -> Iterator[Path]:
    directory = world_readable_dir("enclume-dhcp-spare-")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_discovery_answers_unknown_macs_then_stop_cleans_up(spare_net: BootNetwork,
                                                            spare_dir: Path) -> None:
    process = start_boot(spare_net, spare_dir, "full", ENCLUME_BOOT_DISCOVERY="true")
    dhcp_client = DhcpClient(spare_net.client, INTERFACE)
    try:
        boot = Boot("full", spare_net, process, Database(process.database_url))
        known_idle, booting, unknown = new_mac(), new_mac(), new_mac()
        boot.add_node(known_idle)
        boot.add_node(booting, boot=LOCAL_BOOT)
        assert wait_answered(dhcp_client, booting, arch=0).bootfile == "undionly.kpxe"
        assert wait_answered(dhcp_client, unknown, arch=9).bootfile == "ipxe.efi"
        drop_rule = f"-A {CHAIN} -m mac --mac-source {known_idle} -j DROP".lower()
        eventually(lambda: drop_rule in [rule.lower() for rule in boot.filter_rules()], 30,
                 f"the DROP rule of {known_idle}")
        assert boot.filter_rules()[-1] == f"-A {CHAIN} -j RETURN"
        assert answered(dhcp_client, known_idle, arch=0) == []
        dnsmasq_pid = process.dnsmasq_pid()
        assert dnsmasq_pid is not None
    finally:
        dhcp_client.close()
        returncode = process.stop()
    assert returncode in (0, -signal.SIGTERM), process.log()
    assert "-N" not in spare_net.run(spare_net.server, "iptables-legacy", "-S")
    assert CHAIN not in spare_net.run(spare_net.server, "iptables-legacy", "-S")
    with pytest.raises(ProcessLookupError):
        os.kill(dnsmasq_pid, 0)


def test_after_a_kill_the_next_start_stops_the_old_dnsmasq_and_resyncs(
        spare_net: BootNetwork, spare_dir: Path) -> None:
    first = start_boot(spare_net, spare_dir, "full")
    dhcp_client = DhcpClient(spare_net.client, INTERFACE)
    orphan = first.dnsmasq_pid()
    try:
        boot = Boot("full", spare_net, first, Database(first.database_url))
        mac = new_mac()
        boot.add_node(mac, boot=RAMDISK_BOOT)
        wait_answered(dhcp_client, mac, arch=0)
        first.process.kill()  # SIGKILL: no clean-up at all
        first.process.wait()
        # What was last applied stays in force: the old dnsmasq and the filter.
        assert orphan is not None and process_alive(orphan)
        assert boot.filter_allows(mac)

        second = start_boot(spare_net, spare_dir, "full")
        try:
            assert not process_alive(orphan), second.log()
            assert second.dnsmasq_pid() not in (None, orphan)
            assert "left running by an earlier enclume-boot" in second.log()
            jumps = [rule for rule in spare_net.run(spare_net.server, "iptables-legacy", "-S",
                                                    "INPUT").splitlines() if CHAIN in rule]
            assert jumps == [f"-A INPUT -i {INTERFACE} -p udp -m udp --dport 67 -j {CHAIN}",
                             f"-A INPUT -i {INTERFACE} -p udp -m udp --dport 4011 -j {CHAIN}"]
            assert boot.filter_allows(mac)
            assert wait_answered(dhcp_client, mac, arch=0).bootfile == "undionly.kpxe"
        finally:
            second.stop()
        boot.db.engine.dispose()
    finally:
        dhcp_client.close()
        first.stop()
        if orphan is not None and process_alive(orphan):
            os.kill(orphan, signal.SIGTERM)  # the dnsmasq this test's first service started


WITH_RANGE = {"ENCLUME_BOOT_DHCP_RANGE_START": FULL_RANGE[0],
              "ENCLUME_BOOT_DHCP_RANGE_END": FULL_RANGE[1]}


@pytest.mark.parametrize(("env", "message"), [
    ({}, "ENCLUME_BOOT_DHCP_MODE=full needs ENCLUME_BOOT_DHCP_RANGE_START"),
    ({**WITH_RANGE, "ENCLUME_BOOT_DNSMASQ_BINARY": "/nonexistent/dnsmasq"},
     "ENCLUME_BOOT_DNSMASQ_BINARY=/nonexistent/dnsmasq: no such program"),
    ({**WITH_RANGE, "ENCLUME_BOOT_INTERFACE": "missing0"},
     "ENCLUME_BOOT_INTERFACE=missing0: there is no network interface"),
], ids=["no-range", "no-dnsmasq", "no-interface"])
def test_a_setting_at_fault_stops_the_start_with_its_name(spare_net: BootNetwork,
                                                          spare_dir: Path, env: dict[str, str],
                                                          message: str) -> None:
    process = BootProcess(spare_net, spare_dir, {"ENCLUME_BOOT_DHCP_MODE": "full", **env})
    try:
        returncode = process.process.wait(timeout=60)
    finally:
        process.stop()
    assert returncode == 2, process.log()
    assert f"refusing to start: {message}" in process.log()
    assert CHAIN not in spare_net.run(spare_net.server, "iptables-legacy", "-S")


def test_the_boot_service_follows_node_states_in_postgresql(spare_net: BootNetwork,
                                                            spare_dir: Path) -> None:
    """The compose topology: enclume-boot reading the cluster's PostgreSQL database."""
    with running_postgres_urls() as (tcp_url, socket_url):
        follows_node_states(spare_net, spare_dir, tcp_url, socket_url)


def test_the_boot_service_follows_node_states_in_mariadb(spare_net: BootNetwork,
                                                         spare_dir: Path) -> None:
    """The same on MariaDB, over its Unix socket."""
    if not mariadb_installed():
        pytest.skip("MariaDB is not installed")
    with running_mariadb_urls() as (tcp_url, socket_url):
        follows_node_states(spare_net, spare_dir, tcp_url, socket_url)


def follows_node_states(spare_net: BootNetwork, spare_dir: Path, tcp_url: str,
                        socket_url: str) -> None:
    upgrade_schema(tcp_url)
    process = start_boot(spare_net, spare_dir, "full", ENCLUME_DATABASE_URL=socket_url)
    db = Database(tcp_url)
    spare_client = DhcpClient(spare_net.client, INTERFACE)
    try:
        boot = Boot("full", spare_net, process, db)
        mac = new_mac()
        node = boot.add_node(mac)
        assert answered(spare_client, mac, arch=0) == []
        boot.set_boot(node, RAMDISK_BOOT)
        reply = wait_answered(spare_client, mac, arch=0)
        assert reply.bootfile == "undionly.kpxe"
        assert boot.filter_allows(mac)
    finally:
        spare_client.close()
        db.engine.dispose()
        process.stop()
