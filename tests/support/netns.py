"""A network namespace joined to the root namespace by a veth pair, removed on exit.

    with veth_namespace("wol") as link:
        # root side link.root_address (10.X.Y.1/24), namespace side link.namespace_address
        # (10.X.Y.2/24), link.broadcast is 10.X.Y.255
        subprocess.run(link.exec_argv("ip", "addr"))

Names carry the PID and a random token, and the /24 is picked among 10.200-250.*.0/24 so that it
overlaps no route or address already present in the root namespace; a lock file keeps two test
processes from picking the same one at the same moment. Needs root and iproute2.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from lab.room_network import LOCK_FILE
from lab.room_network import free_network as _free_network
from ramdisk.buildcache import exclusive

IP_TIMEOUT_S = 30


class NetnsError(RuntimeError):
    """An ``ip`` command failed; the message has the command and its error output."""


@dataclass(frozen=True)
class VethNamespace:
    name: str
    root_interface: str
    namespace_interface: str
    network: ipaddress.IPv4Network

    @property
    def root_address(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def namespace_address(self) -> str:
        return str(self.network.network_address + 2)

    @property
    def broadcast(self) -> str:
        return str(self.network.broadcast_address)

    def exec_argv(self, *argv: str) -> list[str]:
        """``argv`` run inside the namespace (``ip netns exec`` execs it: same PID)."""
        return ["ip", "netns", "exec", self.name, *argv]


def ip(*args: str, check: bool = True) -> str:
    try:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_S)
    except FileNotFoundError:
        raise NetnsError("the `ip` command (iproute2) is missing") from None
    if check and done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _remove(link: VethNamespace) -> None:
    # Deleting either end of a veth pair deletes both; the namespace goes with `netns del`.
    ip("link", "del", link.root_interface, check=False)
    ip("netns", "del", link.name, check=False)


@contextmanager
def veth_namespace(purpose: str = "test") -> Iterator[VethNamespace]:
    """A fresh namespace + veth pair with 10.X.Y.1 (root) and 10.X.Y.2 (namespace)."""
    token = secrets.token_hex(3)
    with exclusive(LOCK_FILE):
        link = VethNamespace(name=f"enclume-{purpose}-{os.getpid()}-{token}",
                             root_interface=f"v{token}r", namespace_interface=f"v{token}n",
                             network=_free_network())
        try:
            ip("netns", "add", link.name)
            ip("link", "add", link.root_interface, "type", "veth",
               "peer", "name", link.namespace_interface, "netns", link.name)
            prefix = link.network.prefixlen
            ip("addr", "add", f"{link.root_address}/{prefix}", "brd", "+",
               "dev", link.root_interface)
            ip("link", "set", link.root_interface, "up")
            ip("-n", link.name, "addr", "add", f"{link.namespace_address}/{prefix}", "brd", "+",
               "dev", link.namespace_interface)
            ip("-n", link.name, "link", "set", link.namespace_interface, "up")
            ip("-n", link.name, "link", "set", "lo", "up")
        except BaseException:
            _remove(link)
            raise
    try:
        yield link
    finally:
        _remove(link)


@contextmanager
def routed_network(link: VethNamespace) -> Iterator[ipaddress.IPv4Network]:
    """Another free /24 behind ``link``'s namespace, as a room's subnet behind a router: its
    address .2 is on the namespace's interface and the root namespace routes the /24 via the
    namespace (10.X.Y.2). A datagram sent from the root namespace to the /24's broadcast
    address (a directed broadcast) travels as unicast to the namespace, which takes it as a
    broadcast of its subnet. The route is removed on exit; the address goes with the namespace."""
    with exclusive(LOCK_FILE):
        network = _free_network()
        try:
            ip("-n", link.name, "addr", "add", f"{network.network_address + 2}/24", "brd", "+",
               "dev", link.namespace_interface)
            ip("route", "add", str(network), "via", link.namespace_address,
               "dev", link.root_interface)
        except BaseException:
            ip("route", "del", str(network), check=False)
            raise
    try:
        yield network
    finally:
        ip("route", "del", str(network), check=False)
