"""The software switch's own capacity: TCP from the server to N PCs at once, nothing shaped.

A sink (Debian's python3) listens in each PC's namespace and counts what it receives; one
sender thread per PC in the root namespace pushes 1 MiB buffers to it for ``seconds``
(``sendall`` leaves the GIL: the kernel's copies and the bridge are what is measured). The
aggregate is what the server side can push through the bridge into that many ports on this
machine; a room's shaped traffic must stay well below it for its timings to mean anything.

    .venv/bin/python -m lab.switch_capacity --pcs 1 10 40
    .venv/bin/python -m lab.switch_capacity --pcs 1 10 40 --pc-mbit 10 --uplink-mbit 100

With ``--pc-mbit``/``--uplink-mbit`` the links are shaped as in a simulated room: what each PC
then gets shows the shaping itself (a PC at its link's rate, or its share of the uplink).
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import threading
import time
from typing import Any

from lab.room_network import PcLink, room_network

SINK_PORT = 5201
BUFFER = b"\0" * (1024 * 1024)
SINK = f"""
import socket, sys
server = socket.create_server(("0.0.0.0", {SINK_PORT}))
print("listening", flush=True)
connection, _ = server.accept()
total = 0
buffer = bytearray(1 << 20)
while (n := connection.recv_into(buffer)):
    total += n
print(total, flush=True)
"""


def _send(address: str, seconds: float) -> None:
    with socket.create_connection((address, SINK_PORT), timeout=10) as sock:
        sock.settimeout(None)  # a shaped link may take long to drain 1 MiB
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            sock.sendall(BUFFER)


def measure(pcs: list[PcLink], seconds: float = 5.0) -> dict[str, Any]:
    """Aggregate and per-PC Mbit/s from the root namespace to every PC of ``pcs`` at once."""
    sinks = [subprocess.Popen(pc.exec_argv("/usr/bin/python3", "-c", SINK),
                              stdout=subprocess.PIPE, text=True) for pc in pcs]
    try:
        for sink in sinks:
            assert sink.stdout is not None and sink.stdout.readline().strip() == "listening"
        senders = [threading.Thread(target=_send, args=(pc.address, seconds)) for pc in pcs]
        started = time.monotonic()
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        received = [int(sink.communicate(timeout=30)[0].strip()) for sink in sinks]
        elapsed = time.monotonic() - started
    finally:
        for sink in sinks:  # by PID: each is ours
            if sink.poll() is None:
                sink.kill()
                sink.wait()
    per_pc = [n * 8 / elapsed / 1e6 for n in received]
    return {"pcs": len(pcs), "seconds": round(elapsed, 2),
            "aggregate_mbit": round(sum(per_pc), 1),
            "slowest_pc_mbit": round(min(per_pc), 1), "fastest_pc_mbit": round(max(per_pc), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pcs", type=int, nargs="+", default=[1, 10, 40])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--pc-mbit", type=float, default=None)
    parser.add_argument("--uplink-mbit", type=float, default=None)
    args = parser.parse_args()
    for count in args.pcs:
        with room_network(count, args.pc_mbit, args.uplink_mbit) as net:
            shaped = {"pc_link_mbit": args.pc_mbit, "uplink_mbit": args.uplink_mbit}
            print(json.dumps({**measure(net.pcs, args.seconds), **shaped}), flush=True)


if __name__ == "__main__":
    main()
