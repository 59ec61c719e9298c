"""Wake-on-LAN peer: a UDP listener inside a network namespace that records magic packets.

``running_wol_listener()`` creates a namespace + veth pair (tests/support/netns.py: root side
10.X.Y.1/24, namespace side 10.X.Y.2/24) and runs, inside the namespace,
``python -m tests.support.wol_listener --port P``. That process prints one JSON line per datagram
it receives (source, length, payload, and the parsed magic packet if it is one), which the
``WolListener`` reads so a test can wait for "a magic packet for MAC m with password p".

A magic packet is 6 x 0xFF then the target MAC 16 times, anywhere in the datagram, optionally
followed by a SecureOn password of 4 or 6 bytes. Anything else is recorded with ``magic: null``;
a malformed datagram never stops the listener.

Measured here: a sender in the root namespace reaches the listener at the subnet-directed
broadcast 10.X.Y.255 (sent out of the veth as an Ethernet broadcast) and at 10.X.Y.2, but only
with ``SO_BROADCAST`` set for the broadcast address (without it ``sendto`` fails with
``PermissionError``). 255.255.255.255 would leave through the root namespace's default route,
not the veth: a sender must never be pointed there in a test.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.netns import VethNamespace, veth_namespace
from tests.support.procfs import stop_process

WOL_PORT = 9  # the usual "discard" port; free in a namespace of our own
SYNC = b"\xff" * 6
MAC_REPEATS = 16
MAGIC_LENGTH = len(SYNC) + 6 * MAC_REPEATS
PASSWORD_LENGTHS = (4, 6)
MAX_DATAGRAM = 65535
# Linux <netinet/in.h>: IP_PKTINFO and struct in_pktinfo {int ifindex; in_addr spec_dst, addr;}
IP_PKTINFO = 8
IN_PKTINFO = struct.Struct("=i4s4s")
READY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
REPO_ROOT = Path(__file__).resolve().parents[2]


def _colon_hex(data: bytes) -> str:
    return ":".join(f"{byte:02x}" for byte in data)


@dataclass(frozen=True)
class MagicPacket:
    mac: str  # lower-case, colon-separated
    password: str | None  # SecureOn password as colon-separated hex, or None
    trailing_bytes: int  # bytes after the 16 MAC repetitions


def parse_magic_packet(payload: bytes) -> MagicPacket | None:
    """The first magic packet in ``payload``, or None."""
    start = payload.find(SYNC)
    while start != -1 and start + MAGIC_LENGTH <= len(payload):
        mac = payload[start + 6:start + 12]
        if payload[start + 6:start + MAGIC_LENGTH] == mac * MAC_REPEATS:
            trailing = payload[start + MAGIC_LENGTH:]
            password = _colon_hex(trailing) if len(trailing) in PASSWORD_LENGTHS else None
            return MagicPacket(mac=_colon_hex(mac), password=password,
                               trailing_bytes=len(trailing))
        start = payload.find(SYNC, start + 1)
    return None


def describe_datagram(payload: bytes, source: tuple[str, int],
                      destination: str | None) -> dict[str, Any]:
    magic = parse_magic_packet(payload)
    return {
        "event": "datagram",
        "received_at": time.time(),
        "source": source[0],
        "source_port": source[1],
        "destination": destination,
        "length": len(payload),
        "payload_hex": payload.hex(),
        "magic": None if magic is None else {"mac": magic.mac, "password": magic.password,
                                             "trailing_bytes": magic.trailing_bytes},
    }


def _destination(ancillary: list[tuple[int, int, bytes]]) -> str | None:
    for level, kind, data in ancillary:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= IN_PKTINFO.size:
            return socket.inet_ntoa(IN_PKTINFO.unpack_from(data)[2])
    return None


def serve(port: int) -> int:
    """The in-namespace process: report every datagram on ``port`` as a JSON line."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", port))  # not the unicast address: broadcasts must arrive too
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)  # to report the destination address
        sock.settimeout(0.2)
        print(json.dumps({"event": "ready", "port": port}), flush=True)
        while not stop.is_set():
            try:
                payload, ancillary, _, source = sock.recvmsg(
                    MAX_DATAGRAM, socket.CMSG_SPACE(IN_PKTINFO.size))
            except TimeoutError:
                continue
            print(json.dumps(describe_datagram(payload, source, _destination(ancillary))),
                  flush=True)
    return 0


class WolListener:
    """The root-namespace side: starts the listener process and collects what it reports."""

    def __init__(self, link: VethNamespace, port: int = WOL_PORT) -> None:
        self.link = link
        self.port = port
        self._records: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._ended = False
        self.errors = ""

    @property
    def address(self) -> str:
        """Unicast address of the listening host (10.X.Y.2)."""
        return self.link.namespace_address

    @property
    def broadcast(self) -> str:
        """Subnet-directed broadcast address to send magic packets to (10.X.Y.255)."""
        return self.link.broadcast

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def datagrams(self) -> list[dict[str, Any]]:
        with self._changed:
            return [record for record in self._records if record["event"] == "datagram"]

    def start(self) -> None:
        argv = self.link.exec_argv(sys.executable, "-m", "tests.support.wol_listener",
                                   "--port", str(self.port))
        self._process = subprocess.Popen(argv, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True)
        self._reader = threading.Thread(target=self._read, name="wol-listener", daemon=True)
        self._reader.start()
        if self._wait(lambda r: r["event"] == "ready", READY_TIMEOUT_S) is None:
            self.stop()
            raise RuntimeError(f"the WoL listener did not start in {self.link.name}: "
                               f"{self.errors.strip() or 'no output'}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        stop_process(process, STOP_TIMEOUT_S)
        if process.stderr is not None:
            self.errors += process.stderr.read()
        if self._reader is not None:
            self._reader.join(timeout=STOP_TIMEOUT_S)

    def _read(self) -> None:
        process = self._process
        assert process is not None and process.stdout is not None
        for line in process.stdout:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self._changed:
                self._records.append(record)
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def _wait(self, matches: Any, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for record in self._records:
                    if matches(record):
                        return record
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._ended:
                    return None
                self._changed.wait(remaining)

    def wait_for_magic(self, mac: str, password: str | None = None,
                       timeout: float = 30.0) -> dict[str, Any] | None:
        """The first datagram carrying a magic packet for ``mac`` (and ``password``, if given),
        or None after ``timeout`` seconds. MAC and password: colon-separated hex, any case."""
        mac = mac.lower().replace("-", ":")
        wanted = password.lower().replace("-", ":") if password is not None else None

        def matches(record: dict[str, Any]) -> bool:
            magic = record.get("magic")
            return (record["event"] == "datagram" and magic is not None
                    and magic["mac"] == mac and (wanted is None or magic["password"] == wanted))

        return self._wait(matches, timeout)


@contextmanager
def running_wol_listener(port: int = WOL_PORT) -> Iterator[WolListener]:
    """A namespace + veth pair with a WoL listener in it; all removed on exit."""
    with veth_namespace("wol") as link:
        listener = WolListener(link, port)
        try:
            listener.start()
            yield listener
        finally:
            listener.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.wol_listener",
                                     description="Print every UDP datagram on PORT as JSON.")
    parser.add_argument("--port", type=int, default=WOL_PORT)
    return serve(parser.parse_args(argv).port)


if __name__ == "__main__":
    sys.exit(main())
