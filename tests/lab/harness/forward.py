"""A TCP port on 127.0.0.1 of this machine that leads to a service inside a lab namespace; and
the same port of the service host relayed by a tenant network's gateway.

enclume-aio listens on the service host's address in its namespace, where the machines reach
it. The test process (or the demo, or a `baremetal` client started by hand) talks to it through
this forwarder: each accepted connection gets a twin made inside the namespace
(tests/lab/harness/nsenter.py) and bytes are pumped both ways. Only loopback is listened on.

A deployed OS (the test images' session service) reaches enclume-aio's API at the service
host's address from a tenant network, as on a real network where the tenant networks are routed
to Enclume's API. The lab routes nothing between its VLANs: instead the tenant gateway, the
machines' router, holds the service host's address on its loopback and relays that one port
into the service host's namespace (`gateway_relay`).
"""

from __future__ import annotations

import socket

from tests.lab.harness.netns import NetnsHost
from tests.lab.harness.nsenter import in_netns
from tests.support.tcp_forward import TcpForwarder, connector

LOOPBACK = "127.0.0.1"


def loopback_forwarder(netns: str, address: str, port: int) -> TcpForwarder:
    """127.0.0.1:<free port> -> `address`:`port` inside the namespace `netns`."""
    connect_here = connector((address, port))

    def connect_inside() -> socket.socket:
        return in_netns(netns, connect_here)

    return TcpForwarder(LOOPBACK, connect=connect_inside, name=f"forward-{netns}")


def gateway_relay(gateway: NetnsHost, service: NetnsHost, port: int) -> TcpForwarder:
    """`service`'s address and `port`, reachable from `gateway`'s network through `gateway`
    (the default router there). Close it when done; the address goes with the namespace."""
    gateway.execute(["ip", "addr", "add", f"{service.ipv4}/32", "dev", "lo"])
    connect_here = connector((service.ipv4, port))

    def connect_inside() -> socket.socket:
        return in_netns(service.name, connect_here)

    return in_netns(gateway.name, lambda: TcpForwarder(
        service.ipv4, port=port, connect=connect_inside, name=f"relay-{gateway.name}"))
