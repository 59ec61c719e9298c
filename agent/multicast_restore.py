"""deploy.multicast_restore: a disk written from a room's multicast stream, then always repaired.

uftp's ``uftpd`` joins the boot service's session (its group and port, on the provisioning
interface) and writes the image in place through a ``disk`` symlink to the target disk in a
private directory (the sender names the file ``disk``); lost packets are asked for again (NAKs)
and come in uftp's later passes. The agent says it joined with uftpd's id (the sender's closed
group); the stream's end is uftpd's status file (``-F``: ``RESULT;...;copied``), then uftpd is
stopped by its PID. Whatever the stream gave (all of it; a part when the sender died, this PC
was dropped, or uftpd wrote nothing for ``receive_timeout_s`` while the session's state could
not be read; nothing when it came late or the stream never
started), the disk is then restored by ``deploy.restore_blocks`` in delta mode: verified
against the version's block manifest, the missing and bad blocks fetched over HTTP, the disk
read back; the blocks uftpd wrote (its write count, ``/proc/PID/io``) are read back and checked
while the stream goes on (``agent.stream_verify``): the repair skips those found good;
a disk that does not verify is made unbootable and the command fails. The partition table is
not in the stream: its bytes, fetched over HTTP once this PC joined, are written last
(``agent.held_table``).

Parameters: those of ``deploy.restore_blocks`` (``mode`` is ignored) and ``multicast``:
``{"port": <port>, "group": <the session's group>, "joined_url": <the session's /joined URL>,
"interface": <name>, "start_timeout_s": ..., "receive_timeout_s": ...}`` (only ``port`` is
required; uftpd listens on the group, 224.0.0.1 without one; the interface defaults to the one
routing to the boot service).
"""

from __future__ import annotations

import ctypes
import ipaddress
import json
import logging
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from agent import erase, held_table, restore_blocks
from agent.block_manifest import BlockManifest
from agent.disks import Disk, zero_range
from agent.errors import BadParams, CommandError
from agent.inventory import ipv4_address
from agent.stream_verify import StreamVerifier
from agent.tools import require

LOG = logging.getLogger(__name__)
RECEIVER = "uftpd"
DEST_NAME = "disk"  # the name the boot service's uftp gives the file (its -D)
STATUS_FILE = "status"
READY = b"Loaded"  # uftpd's first line once it listens (its session key loaded)
ABORTED = b"Transfer aborted by server"  # this PC was dropped (uftp's -N/-m: too many NAKs)
READY_TIMEOUT_S = 30.0
# Where uftpd given no group listens: uftp's default public group (the boot service's sessions
# use their own group).
ALL_HOSTS_RENDEZVOUS = "230.4.4.1"
DEFAULT_START_TIMEOUT_S = 60.0
DEFAULT_RECEIVE_TIMEOUT_S = 5.0
EXIT_WAIT_S = 3.0
FOLLOW_INTERVAL_S = 0.2
JOINED = "/joined"  # the session's joined URL is the session's URL and this
SESSION_POLL_S = 2.0  # has the session's stream ended (its sender died, done without us)?
SESSION_OVER = ("done", "failed", "closed", "gone")
PR_SET_PDEATHSIG = 1
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl
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
    if isinstance(port, bool) or not isinstance(port, int) or not 1024 <= port < 65535:
        raise BadParams(f"multicast.port must be a port number, got {port!r}")
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
    """One uftpd run writing the image onto ``disk`` (``fd``: the agent's own descriptor of
    it, for the read-back)."""

    def __init__(self, request: MulticastRequest, disk: Disk, fd: int, manifest: BlockManifest,
                 on_progress: Callable[[int], None],
                 on_written: Callable[[int], None] = lambda index: None) -> None:
        self.request, self.disk, self.fd, self.manifest = request, disk, fd, manifest
        self.on_progress, self.on_written = on_progress, on_written
        self.received = 0
        self.complete = False
        self.log_tail: list[bytes] = []
        self._logged = 0  # bytes uftpd wrote to its log (they count in its write total)
        self.ready = threading.Event()
        self.dropped = threading.Event()
        self.table: list[held_table.Range] = []  # the session's held-back partition table
        self.table_pieces: dict[int, bytes] = {}
        self.table_fetched_bytes = 0

    def argv(self, interface: str, folder: Path | None = None,
             client_id: str = "0x00000000") -> list[str]:
        request, folder = self.request, folder or Path(tempfile.gettempdir())
        return [RECEIVER, "-d", "-q", "-D", str(folder), "-I", interface, "-M", request.group,
                "-p", str(request.port), "-U", client_id, "-F", str(folder / STATUS_FILE),
                "-B", str(RECEIVE_BUFFER_BYTES)]

    def run(self) -> int | None:
        """Receive until the stream ends for this PC; uftpd's exit code (None: it could not
        run)."""
        try:
            require(RECEIVER)
            interface = self.request.interface or interface_towards(self.request.restore.disk_url)
            client_id = uftp_id(ipv4_address(interface) or "")
        except CommandError as exc:
            LOG.warning("no multicast: %s", exc)
            return None
        with tempfile.TemporaryDirectory(prefix="enclume-uftpd-") as folder:
            (Path(folder) / DEST_NAME).symlink_to(self.disk.path)
            process = subprocess.Popen(self.argv(interface, Path(folder), client_id),
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, preexec_fn=_ends_with_the_agent)
            assert process.stderr is not None
            watching = threading.Thread(target=self._watch, args=(process.stderr,), daemon=True)
            watching.start()
            try:
                if self.ready.wait(READY_TIMEOUT_S) and self._say_joined(client_id):
                    self._fetch_table()
                    self._follow(process, Path(folder) / STATUS_FILE)
            finally:
                _stop(process)
                watching.join(5)
        if self.complete:
            self.received = self.manifest.size
        LOG.info("multicast: received %d of %d bytes, uftpd exited %d (%s)",
                 self.received, self.manifest.size, process.returncode,
                 b" | ".join(self.log_tail[-3:]).decode(errors="replace"))
        return process.returncode

    def _follow(self, process: subprocess.Popen[bytes], status: Path) -> None:
        """Until uftpd says the file is complete, the sender dropped this PC (too many NAKs),
        the session ended without it, it waited
        ``start_timeout_s`` for the stream, or (while the session's state cannot be read)
        ``receive_timeout_s`` for more data: a PC that waits for the resends of a later pass
        writes nothing while uftp resends another PC's losses, and must not give up then."""
        request = self.request
        began = last_change = last_poll = time.monotonic()
        connected, checked, state = False, 0, None
        while process.poll() is None:
            if self.dropped.wait(FOLLOW_INTERVAL_S):
                LOG.warning("multicast: dropped from the stream (%s)",
                            self.log_tail[-1].decode(errors="replace"))
                return  # uftpd stopped: its port leaves the group, the repair has the link
            now = time.monotonic()
            said = status.read_bytes() if status.exists() else b""
            connected = connected or b"CONNECT;" in said
            if re.search(rb"^RESULT;.*;(copy|copied|overwrite)\s*$", said, re.MULTILINE):
                self.complete = True
                return
            written = min(_written(process.pid) - self._logged - len(said), self.manifest.size)
            if written > self.received:
                self.received, last_change = written, now
                self.on_progress(written)
                checked = self._check_up_to(checked, written)
            if not connected and now - began > request.start_timeout_s:
                LOG.warning("multicast: no stream after %.0f s", request.start_timeout_s)
                return
            if connected and self.received and state is None \
                    and now - last_change > request.receive_timeout_s:
                LOG.warning("multicast: nothing received for %.0f s", request.receive_timeout_s)
                return
            if now - last_poll >= SESSION_POLL_S:
                last_poll = now
                state = self._session_state()
                if state in SESSION_OVER:
                    time.sleep(EXIT_WAIT_S)  # uftpd's last status line, when it completed
                    self.complete = b";copied" in (status.read_bytes() if status.exists()
                                                   else b"")
                    return

    def _fetch_table(self) -> None:
        """The partition table's bytes the stream leaves out, while the session waits for the
        room's other PCs (a few KiB)."""
        if self.table:
            self.table_pieces, self.table_fetched_bytes = held_table.fetch(
                self.request.restore, self.manifest, self.table, READY_TIMEOUT_S)

    def _check_up_to(self, checked: int, written: int) -> int:
        """Hand the blocks wholly below uftpd's write count to the read-back (a block with
        packets still missing reads wrong and is left to the repair)."""
        while checked < len(self.manifest.blocks):
            offset, length = self.manifest.span(checked)
            if offset + length > written:
                break
            if self.manifest.blocks[checked] is not None:
                self.on_written(checked)
            checked += 1
        return checked

    def _watch(self, stderr: IO[bytes]) -> None:
        """Keep uftpd's last lines; ``ready`` once it listens."""
        for line in iter(stderr.readline, b""):
            self._logged += len(line)
            self.log_tail = [*self.log_tail[-9:], line.strip()]
            if READY in line:
                self.ready.set()
            if ABORTED in line:
                self.dropped.set()

    def _session_state(self) -> str | None:
        """The boot service's state of the session (None: it cannot be asked)."""
        url = self.request.joined_url
        if url is None or not url.endswith(JOINED):
            return None
        state = _session_state(url.removesuffix(JOINED), self.request.restore.token_headers)
        if state in SESSION_OVER:
            LOG.warning("multicast session over (%s)", state)
        return state

    def _say_joined(self, client_id: str) -> bool:
        """Tells the boot service; False when the session started without this PC (or is
        over): uftp will not send to it."""
        url = self.request.joined_url
        if url is None:
            return True
        call = urllib.request.Request(url, data=json.dumps({"client_id": client_id}).encode(),
                                      method="POST", headers={
                                          **self.request.restore.token_headers,
                                          "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(call, timeout=10) as answer:
                session = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            LOG.warning("the session refused this PC (%s): repairing over HTTP", exc.code)
            return False
        except (OSError, ValueError) as exc:
            LOG.warning("could not tell %s that this PC joined: %s", url, exc)
            return True
        self.table = held_table.parse_ranges(session.get("table"), self.manifest.size)
        if session.get("late") or session.get("state") in SESSION_OVER:
            LOG.warning("multicast session %s without this PC: repairing over HTTP",
                        session.get("state"))
            return False
        return True


def uftp_id(address: str) -> str:
    """uftpd's id (``-U``) from the PC's address on the provisioning network, as uftpd's own
    default is."""
    try:
        return f"0x{int(ipaddress.IPv4Address(address)):08x}"
    except ValueError:
        raise CommandError(f"no IPv4 address for uftpd's id: {address!r}") from None


def _ends_with_the_agent() -> None:
    """In uftpd's child before it runs: uftpd is a daemon that never ends by itself, so it gets
    SIGTERM when the agent's thread that started it dies (an agent killed mid-stream; run()
    stops it otherwise). Only the libc call prepared at import runs here, after fork."""
    _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)


def _written(pid: int) -> int:
    """Bytes the process wrote (its log and status file included)."""
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


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
        held = held_table.held_blocks(fd, disk, manifest, receiver.table_pieces)
    except BaseException:
        os.close(fd)
        erase.make_unbootable(disk)
        raise
    os.close(fd)
    result = restore_blocks.restore_blocks(
        replace(request.restore, mode="delta"), disks, timeout_s,
        lambda done, _total: on_progress((size + 2 * done) // 3, size), (disk, manifest), held,
        verified, held_table.table_blocks(manifest, receiver.table))
    result.update(transfer="multicast", multicast_received_bytes=receiver.received,
                  multicast_receiver_exit=returncode, verified_while_received=len(verified),
                  table_fetched_bytes=receiver.table_fetched_bytes,
                  multicast_dropped=receiver.dropped.is_set(),
                  repaired_over_http=result.get("fetched_bytes", 0) > 0)
    return result
