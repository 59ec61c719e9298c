"""deploy.multicast_restore: a disk written from a room's multicast stream, then always repaired.

udpcast's ``udp-receiver`` joins the boot service's session (its port base; the group comes with
the sender's hello) and writes the raw disk to a pipe; non-zero blocks are written as they arrive
(zero ones are left to the discard done first), the first block (the partition table) is held
back. Whatever the stream gave (all of it, wrong blocks where this PC lost more than the FEC
mends: ``--ignore-lost-data`` goes on past them; a prefix when the sender died; nothing when it
never started), the disk is then restored by
``deploy.restore_blocks`` in delta mode: verified against the version's block manifest, the
missing and bad blocks fetched over HTTP, the first block written last, the disk read back;
the blocks the stream wrote are read back and checked while it goes on
(``agent.stream_verify``): the repair skips those found good;
a disk that does not verify is made unbootable and the command fails.

Parameters: those of ``deploy.restore_blocks`` (``mode`` is ignored) and ``multicast``:
``{"port": <even port base>, "group": <the session's group>, "joined_url": <the session's
/joined URL>, "interface": <name>, "start_timeout_s": ..., "receive_timeout_s": ...}`` (only
``port`` is required; the group is where udp-receiver finds the sender, the boot service's
sessions rendezvous on their own group, 224.0.0.1 without one; the interface defaults to the one
routing to the boot service).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import IO, Any

from agent import erase, restore_blocks
from agent.block_manifest import BlockManifest
from agent.disks import Disk, write_all, zero_range
from agent.errors import BadParams, CommandError
from agent.inventory import ipv4_address
from agent.stream_verify import StreamVerifier
from agent.tools import require

LOG = logging.getLogger(__name__)
RECEIVER = "udp-receiver"
# Where a receiver given no group looks for the sender: udpcast's all-hosts rendezvous, which
# a switch floods to every port (the boot service's sessions use their own group instead).
ALL_HOSTS_RENDEZVOUS = "224.0.0.1"
CONNECTED = b"Connected as"  # udp-receiver's line once the sender answered
DEFAULT_START_TIMEOUT_S = 60.0
DEFAULT_RECEIVE_TIMEOUT_S = 5.0
EXIT_WAIT_S = 3.0
JOINED = "/joined"  # the session's joined URL is the session's URL and this
SESSION_POLL_S = 2.0  # while not connected: has the session's stream ended already?
SESSION_OVER = ("done", "failed", "closed", "gone")
RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024  # the kernel caps it at net.core.rmem_max


@dataclass(frozen=True)
class MulticastRequest:
    restore: restore_blocks.RestoreRequest
    port: int
    group: str
    joined_url: str | None
    interface: str | None
    start_timeout_s: float
    receive_timeout_s: float


def _seconds(options: dict[str, Any], key: str, default: float) -> float:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise BadParams(f"multicast.{key} must be a positive number of seconds")
    return float(value)


def parse_params(params: dict[str, Any]) -> MulticastRequest:
    options = params.get("multicast")
    if not isinstance(options, dict):
        raise BadParams("multicast must be the session: {\"port\": <port base>, ...}")
    port = options.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not 1024 <= port < 65535 \
            or port % 2:
        raise BadParams(f"multicast.port must be an even port number, got {port!r}")
    group = options.get("group", ALL_HOSTS_RENDEZVOUS)
    try:
        multicast = isinstance(group, str) and ipaddress.IPv4Address(group).is_multicast
    except ValueError:
        multicast = False
    if not multicast:
        raise BadParams(f"multicast.group must be an IPv4 multicast address, got {group!r}")
    joined = options.get("joined_url")
    if joined is not None and urllib.parse.urlsplit(str(joined)).scheme not in ("http", "https"):
        raise BadParams("multicast.joined_url must be an http(s) URL")
    interface = options.get("interface")
    if interface is not None and (not isinstance(interface, str) or not interface.isprintable()):
        raise BadParams("multicast.interface must be an interface name")
    restore = restore_blocks.parse_params(
        {**{key: value for key, value in params.items() if key != "multicast"}, "mode": "delta"})
    return MulticastRequest(restore, port, group, joined, interface,
                            _seconds(options, "start_timeout_s", DEFAULT_START_TIMEOUT_S),
                            _seconds(options, "receive_timeout_s", DEFAULT_RECEIVE_TIMEOUT_S))


def interface_towards(url: str) -> str:
    """The interface holding the address the kernel sends to ``url``'s host from (the
    provisioning one), found without ``ip`` (busybox's has no JSON)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((host, 9))  # a UDP connect sends nothing: it only picks the route
            local = probe.getsockname()[0]
        for _, name in socket.if_nameindex():
            if ipv4_address(name) == local:
                return name
    except OSError as exc:
        raise CommandError(f"no interface routes to {host}: {exc}") from None
    raise CommandError(f"no interface holds {local}, the address towards {host}")


class Receiver:
    """One udp-receiver run writing into the open disk ``fd``."""

    def __init__(self, request: MulticastRequest, disk: Disk, fd: int, manifest: BlockManifest,
                 on_progress: Callable[[int], None],
                 on_written: Callable[[int], None] = lambda index: None) -> None:
        self.request, self.disk, self.fd, self.manifest = request, disk, fd, manifest
        self.on_progress, self.on_written = on_progress, on_written
        self.received = 0
        self.first_block: bytes | None = None
        self.log_tail: list[bytes] = []
        self.connected = threading.Event()

    def argv(self, interface: str) -> list[str]:
        request = self.request
        return [RECEIVER, "--interface", interface, "--portbase", str(request.port),
                "--mcast-rdv-address", request.group, "--nokbd",
                # a lost slice the FEC cannot mend leaves its blocks wrong and the stream goes
                # on: the repair fetches just those; a large buffer rides out busy moments
                "--ignore-lost-data", "--rcvbuf", str(RECEIVE_BUFFER_BYTES),
                "--start-timeout", str(round(request.start_timeout_s)),
                "--receive-timeout", str(max(1, round(request.receive_timeout_s)))]

    def run(self) -> int | None:
        """Receive until the stream ends; udp-receiver's exit code (None: it could not run)."""
        try:
            require(RECEIVER)
            interface = self.request.interface or interface_towards(self.request.restore.disk_url)
        except CommandError as exc:
            LOG.warning("no multicast: %s", exc)
            return None
        process = subprocess.Popen(self.argv(interface), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        assert process.stdout is not None and process.stderr is not None
        watching = threading.Thread(target=self._watch, args=(process.stderr,), daemon=True)
        watching.start()
        threading.Thread(target=self._give_up_when_over, args=(process,), daemon=True).start()
        try:
            self._write_stream(process.stdout)
            process.wait(EXIT_WAIT_S)  # the sender's end of transfer, when all came
        except subprocess.TimeoutExpired:
            pass
        finally:
            if process.poll() is None:
                process.kill()
            returncode = process.wait()
            watching.join(5)
        LOG.info("multicast: received %d of %d bytes, udp-receiver exited %d (%s)",
                 self.received, self.manifest.size, returncode,
                 b" | ".join(self.log_tail[-3:]).decode(errors="replace"))
        return returncode

    def _write_stream(self, stream: IO[bytes]) -> None:
        block = bytearray(self.manifest.block_size)
        for index in range(len(self.manifest.blocks)):
            offset, length = self.manifest.span(index)
            view = memoryview(block)[:length]
            filled = 0
            while filled < length and (count := stream.readinto(view[filled:])):
                filled += count
            if filled < length:
                return  # the stream ended early: the repair fetches the rest
            if index == 0:
                self.first_block = bytes(view)
            elif self.manifest.blocks[index] is not None:  # zero blocks: discarded before
                write_all(self.fd, view, offset, self.disk)
                self.on_written(index)
            self.received += length
            self.on_progress(self.received)

    def _watch(self, stderr: IO[bytes]) -> None:
        """Keep udp-receiver's last lines; tell the boot service once it has connected."""
        told = False
        for line in iter(stderr.readline, b""):
            self.log_tail = [*self.log_tail[-9:], line.strip()]
            if not told and CONNECTED in line:
                told = True
                self.connected.set()
                self._say_joined()

    def _give_up_when_over(self, process: subprocess.Popen[bytes]) -> None:
        """A PC that comes after its session's stream ended (its deploy started late) stops
        waiting for it (udp-receiver would wait its whole start timeout) and repairs at once:
        the session is asked while the receiver has not connected."""
        url = self.request.joined_url
        if url is None or not url.endswith(JOINED):
            return
        session_url = url.removesuffix(JOINED)
        while not self.connected.wait(SESSION_POLL_S) and process.poll() is None:
            state = _session_state(session_url, self.request.restore.token_headers)
            if state in SESSION_OVER and not self.connected.is_set():
                LOG.warning("multicast session over (%s) before this PC joined it", state)
                process.kill()
                return

    def _say_joined(self) -> None:
        url = self.request.joined_url
        if url is None:
            return
        call = urllib.request.Request(url, data=b"{}", method="POST", headers={
            **self.request.restore.token_headers, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(call, timeout=10):
                pass
        except OSError as exc:
            LOG.warning("could not tell %s that this PC joined: %s", url, exc)


def _session_state(url: str, headers: dict[str, str]) -> str | None:
    """The boot service's state of the session (``gone`` when it has none), None when it
    cannot be asked."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=10) as answer:
            return str(json.loads(answer.read()).get("state"))
    except urllib.error.HTTPError as exc:
        return "gone" if exc.code == 404 else None
    except (OSError, ValueError):
        return None


def multicast_restore(request: MulticastRequest, disks: list[Disk], timeout_s: float,
                      on_progress: Callable[[int, int | None], None]) -> dict[str, Any]:
    disk, manifest = restore_blocks.load_checked(request.restore, disks, timeout_s)
    size = manifest.size  # progress in bytes of the image: received (a third), then the
    # repair's compare and verification (two thirds)

    fd = disk.open()
    try:
        erase.wipe_metadata(disk)
        zero_range(fd, disk, 0, size, cheap_only=True)
        verifier = StreamVerifier(fd, disk, manifest)
        receiver = Receiver(request, disk, fd, manifest, lambda done: on_progress(done // 3, size),
                            verifier.written)
        returncode = receiver.run()
        verified = verifier.finish()
    except BaseException:
        os.close(fd)
        erase.make_unbootable(disk)
        raise
    os.close(fd)
    held = {}
    if receiver.first_block is not None and manifest.matches(0, receiver.first_block):
        held[0] = receiver.first_block
    result = restore_blocks.restore_blocks(
        replace(request.restore, mode="delta"), disks, timeout_s,
        lambda done, _total: on_progress((size + 2 * done) // 3, size), (disk, manifest), held,
        verified)
    result.update(transfer="multicast", multicast_received_bytes=receiver.received,
                  multicast_receiver_exit=returncode, verified_while_received=len(verified),
                  repaired_over_http=result.get("differing_blocks", 0) > 0)
    return result
