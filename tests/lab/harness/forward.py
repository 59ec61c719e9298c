"""A TCP port on 127.0.0.1 of this machine that leads to a service inside a lab namespace.

enclume-aio listens on the service host's address in its namespace, where the machines reach
it. The test process (or the demo, or a `baremetal` client started by hand) talks to it through
this forwarder: each accepted connection gets a twin made inside the namespace
(tests/lab/harness/nsenter.py) and bytes are pumped both ways. Only loopback is listened on.
"""

from __future__ import annotations

import socket

from tests.lab.harness.nsenter import in_netns
from tests.support.tcp_forward import TcpForwarder, connector

LOOPBACK = "127.0.0.1"


def loopback_forwarder(netns: str, address: str, port: int) -> TcpForwarder:
    """127.0.0.1:<free port> -> `address`:`port` inside the namespace `netns`."""
    connect_here = connector((address, port))

    def connect_inside() -> socket.socket:
        return in_netns(netns, connect_here)

    return TcpForwarder(LOOPBACK, connect=connect_inside, name=f"forward-{netns}")
