"""Make sockets inside a lab host's network namespace from the test process itself.

A socket belongs to the network namespace of the thread that created it, for its whole life,
whichever thread uses it later. `in_netns(host_ns, make)` runs `make` on a short-lived thread that
has entered the namespace (setns(2); Python 3.11 has no os.setns), so a BMC, a listener or a server
can bind 127.0.0.1 or a lab address *of that namespace* while its objects stay in this process,
where a test can look at them. Threads started by `make` are in the namespace too; nothing else
of the process is.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from tests.lab.harness.processes import LabError

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"  # where `ip netns add` keeps the namespaces' handles


def _enter(netns: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    descriptor = os.open(os.path.join(NETNS_DIR, netns), os.O_RDONLY)
    try:
        if libc.setns(descriptor, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise LabError(f"setns into {netns} failed: {os.strerror(error)}")
    finally:
        os.close(descriptor)


def in_netns(netns: str, make: Callable[[], T]) -> T:
    """`make()` run inside the network namespace `netns`; its result or its exception."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            _enter(netns)
            outcome["value"] = make()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"netns-{netns}")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
