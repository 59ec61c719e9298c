"""A classroom's network on one machine: PCs in network namespaces on one software switch.

    with room_network(pcs=8, pc_mbit=8, uplink_mbit=80) as net:
        net.server_address           # 10.X.Y.1, in the root namespace (where the services run)
        net.pcs[0].exec_argv("python3", ...)   # a command inside PC 0's namespace
        net.lose(net.pcs[3], 0.05)   # 5% of the packets PC 3 receives are dropped

The switch is a Linux bridge in a namespace of its own, with IGMP snooping and its own querier
(10.X.Y.2): it sends a multicast group only to the ports that joined it, as a classroom switch
with IGMP snooping does (without a querier a bridge floods every group to every port, and two
rooms' streams would share each PC's link). Every PC's namespace has one interface,
``eth0`` (the PC's MAC, 10.X.Y.10+i), on a veth whose other end is a port of the bridge. The
server's port is a veth too: one end on the bridge, the other (10.X.Y.1) in the root
namespace. A Linux bridge rather than vde_switch: every vde host needs a ``vde_plug2tap``
process costing ~2.5x the switch's CPU, and a bridge carries the same load at about half the
CPU (LAB-NOTES.md, "A 40-PC room on 2 cores"); ``measure_switch`` gives this bridge's own
capacity.

Shaping with tbf (this kernel has no netem), on the egress of each veth end, so that both
directions of a link are shaped without ifb: a PC's link is its bridge port (to the PC) and its
``eth0`` (from the PC) at ``pc_mbit``; the server's uplink is the root-namespace end (to the
room) and its bridge port (from the room) at ``uplink_mbit``. Packet loss is iptables'
``statistic`` match in the PC's namespace (INPUT, random drops).

Everything is removed on exit, also when the body raised: processes started in a namespace
must be stopped (by PID) by whoever started them before; the namespaces are deleted here, and
their veths with them. Needs root, iproute2, tc and iptables.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import secrets
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from ramdisk.buildcache import exclusive

LOCK_FILE = Path("/run/lock/enclume-test-netns.lock")  # shared with tests/support/netns.py
FIRST_PC_HOST = 10
MAX_PCS = 200
TBF_LATENCY_MS = 400  # queue length of a shaped link: TCP fills it, it drops nothing needed
COMMAND_TIMEOUT_S = 30
QUERY_RESPONSE_CENTISECONDS = 100  # the querier's max response time; it floods this long first


class RoomNetworkError(RuntimeError):
    """A command building the room's network failed."""


def run(*argv: str, check: bool = True) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
                          check=False)
    if check and done.returncode != 0:
        raise RoomNetworkError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class PcLink:
    index: int
    namespace: str
    mac: str
    address: str
    switch_port: str  # its veth end on the bridge, in the switch's namespace

    def exec_argv(self, *argv: str) -> list[str]:
        """``argv`` run inside the PC's namespace (``ip netns exec`` execs it: same PID)."""
        return ["ip", "netns", "exec", self.namespace, *argv]


@dataclass
class RoomNetwork:
    tag: str
    switch_namespace: str
    network: ipaddress.IPv4Network
    server_interface: str  # root namespace end of the server's veth
    pc_mbit: float | None
    uplink_mbit: float | None
    pcs: list[PcLink] = field(default_factory=list)

    @property
    def server_address(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def switch_address(self) -> str:
        """The switch's own (its IGMP querier's source)."""
        return str(self.network.network_address + 2)

    def lose(self, pc: PcLink, probability: float) -> None:
        """Drop ``probability`` of the packets ``pc`` receives (iptables, random)."""
        run(*pc.exec_argv("iptables", "-w", "-A", "INPUT", "-m", "statistic", "--mode",
                          "random", "--probability", f"{probability:.4f}", "-j", "DROP"))

    def dropped(self, pc: PcLink) -> int:
        """Packets the loss rule of ``pc`` dropped so far."""
        out = run(*pc.exec_argv("iptables", "-w", "-L", "INPUT", "-v", "-x", "-n"))
        return sum(int(line.split()[0]) for line in out.splitlines()
                   if "statistic" in line and line.split()[0].isdigit())


def _tbf(namespace: str | None, device: str, mbit: float) -> None:
    rate_bytes_s = mbit * 1e6 / 8
    burst = max(32 * 1024, int(rate_bytes_s / 100))  # 10 ms of traffic, at least 32 KiB
    prefix = ["-n", namespace] if namespace else []
    run("tc", *prefix, "qdisc", "replace", "dev", device, "root", "tbf", "rate",
        f"{mbit * 1000:.0f}kbit", "burst", str(burst), "latency", f"{TBF_LATENCY_MS}ms")


def _add_snooping_switch(net: RoomNetwork) -> None:
    """The bridge as a classroom switch with IGMP snooping and its own querier: a group goes
    only to the ports whose PCs joined it. Snooping alone is not enough: with no querier on the
    network the kernel floods every group to every port (as many switches do), and an own
    querier floods too until its first query response interval has passed (10 s by default,
    1 s here), so the interval is set before the querier is turned on. The querier sends from
    the switch's address (``mcast_query_use_ifaddr``), as a managed switch's does."""
    namespace = net.switch_namespace
    run("ip", "-n", namespace, "link", "add", "br0", "type", "bridge", "mcast_snooping", "1",
        "mcast_igmp_version", "2", "mcast_query_use_ifaddr", "1",
        "mcast_query_response_interval", str(QUERY_RESPONSE_CENTISECONDS))
    run("ip", "-n", namespace, "addr", "add", f"{net.switch_address}/{net.network.prefixlen}",
        "dev", "br0")
    run("ip", "-n", namespace, "link", "set", "br0", "up")
    run("ip", "-n", namespace, "link", "set", "br0", "type", "bridge", "mcast_querier", "1")


def networks_in_use() -> list[ipaddress.IPv4Network]:
    """The IPv4 networks routed or addressed in the root namespace."""
    used = []
    for route in json.loads(run("ip", "-j", "-4", "route", "show", "table", "all") or "[]"):
        with suppress(ValueError):
            if route.get("dst", "default") != "default":
                used.append(ipaddress.ip_network(route["dst"], strict=False))
    for link in json.loads(run("ip", "-j", "-4", "addr", "show") or "[]"):
        for address in link.get("addr_info", []):
            used.append(ipaddress.ip_network(f"{address['local']}/{address['prefixlen']}",
                                             strict=False))
    return used


def free_network() -> ipaddress.IPv4Network:
    """A 10.200-250.*.0/24 overlapping nothing in the root namespace (take LOCK_FILE first)."""
    used = networks_in_use()
    for _ in range(200):
        candidate = ipaddress.ip_network(f"10.{random.randrange(200, 251)}."
                                         f"{random.randrange(256)}.0/24")
        if not any(candidate.overlaps(network) for network in used):
            return candidate
    raise RoomNetworkError("no free 10.200-250.*.0/24 network for a test namespace")


def pc_mac(tag_byte: int, index: int) -> str:
    return f"52:54:{tag_byte:02x}:7c:{index >> 8 & 0xff:02x}:{index & 0xff:02x}"


def _add_pc(net: RoomNetwork, index: int, mac: str) -> PcLink:
    pc = PcLink(index, f"enclume-room-{net.tag}-pc{index}", mac,
                str(net.network.network_address + FIRST_PC_HOST + index), f"p{index}")
    run("ip", "netns", "add", pc.namespace)
    net.pcs.append(pc)
    run("ip", "-n", net.switch_namespace, "link", "add", pc.switch_port, "type", "veth", "peer",
        "name", "eth0", "netns", pc.namespace)
    run("ip", "-n", net.switch_namespace, "link", "set", pc.switch_port, "master", "br0", "up")
    run("ip", "-n", pc.namespace, "link", "set", "eth0", "address", mac)
    run("ip", "-n", pc.namespace, "addr", "add", f"{pc.address}/{net.network.prefixlen}",
        "dev", "eth0")
    run("ip", "-n", pc.namespace, "link", "set", "eth0", "up")
    run("ip", "-n", pc.namespace, "link", "set", "lo", "up")
    # No default route in a PC: a multicast join or send on INADDR_ANY needs this one.
    run("ip", "-n", pc.namespace, "route", "add", "224.0.0.0/4", "dev", "eth0")
    if net.pc_mbit:
        _tbf(net.switch_namespace, pc.switch_port, net.pc_mbit)
        _tbf(pc.namespace, "eth0", net.pc_mbit)
    return pc


def _remove(net: RoomNetwork) -> None:
    for pc in net.pcs:
        run("ip", "netns", "del", pc.namespace, check=False)
    run("ip", "link", "del", net.server_interface, check=False)
    run("ip", "netns", "del", net.switch_namespace, check=False)


@contextmanager
def room_network(pcs: int, pc_mbit: float | None, uplink_mbit: float | None,
                 macs: Sequence[str] | None = None) -> Iterator[RoomNetwork]:
    """``pcs`` namespaces on one bridge, PC links at ``pc_mbit`` and the server's uplink at
    ``uplink_mbit`` (None: not shaped), the server in the root namespace."""
    if not 0 < pcs <= MAX_PCS:
        raise ValueError(f"a room has 1 to {MAX_PCS} PCs")
    tag = f"{os.getpid()}-{secrets.token_hex(2)}"
    tag_byte = secrets.randbelow(256)
    with exclusive(LOCK_FILE):
        net = RoomNetwork(tag, f"enclume-room-{tag}-switch", free_network(),
                          f"rs{tag.replace('-', '')[-11:]}", pc_mbit, uplink_mbit)
        try:
            run("ip", "netns", "add", net.switch_namespace)
            _add_snooping_switch(net)
            querier_ready = time.monotonic() + QUERY_RESPONSE_CENTISECONDS / 100
            run("ip", "link", "add", net.server_interface, "type", "veth", "peer", "name",
                "up0", "netns", net.switch_namespace)
            run("ip", "-n", net.switch_namespace, "link", "set", "up0", "master", "br0", "up")
            run("ip", "addr", "add", f"{net.server_address}/{net.network.prefixlen}", "dev",
                net.server_interface)
            run("ip", "link", "set", net.server_interface, "up")
            if uplink_mbit:
                _tbf(None, net.server_interface, uplink_mbit)
                _tbf(net.switch_namespace, "up0", uplink_mbit)
        except BaseException:
            _remove(net)
            raise
    try:
        for index in range(pcs):
            _add_pc(net, index, macs[index] if macs else pc_mac(tag_byte, index))
        time.sleep(max(0.0, querier_ready - time.monotonic()))
        yield net
    finally:
        _remove(net)
