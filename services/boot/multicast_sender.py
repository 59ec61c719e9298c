"""Multicast sessions of the boot service: one udpcast ``udp-sender`` per session.

A session streams one image version's raw disk (read from the image store into a FIFO the
sender reads) once, to a group address and an even port base of its own (picked from
ENCLUME_MULTICAST_GROUP_RANGE and ENCLUME_MULTICAST_PORT_BASE; the group is the session's
rendezvous address too, so receivers are given it), out of the provisioning interface, TTL 1,
at a fixed rate cap, asynchronously with forward error correction: a receiver that loses more
than the FEC mends repairs the spoiled blocks over HTTP afterwards, it never slows the others
(docs/architecture.md, "Multicast room restores").

The stream starts when the expected receivers have said they joined, or
ENCLUME_MULTICAST_START_WAIT_S after the first one did (the PCs boot their ramdisks at different
times), whichever comes first: udp-sender runs without ``--nokbd`` and the session writes its
start keystroke on its standard input (in async mode udp-sender does not count receivers
itself). A session nobody joins is closed after UNJOINED_LIMIT_S.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.common.config_hardware_sections import MulticastSettings
from services.images.store import ImageStore

LOG = logging.getLogger(__name__)
SENDER = "udp-sender"
HELLO_INTERVAL_MS = 200
STOP_TIMEOUT_S = 5.0
UNJOINED_LIMIT_S = 3600.0  # longer than any room's PCs take to boot their ramdisks


class SessionError(RuntimeError):
    """No session can be opened (all slots taken, no udp-sender)."""


@dataclass
class MulticastSession:
    id: str
    version_id: str
    expected: int
    group: str
    port: int
    slot: int
    opened: float = field(default_factory=time.monotonic)
    joined: int = 0
    started: bool = False
    closed: bool = False
    process: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def state(self) -> str:
        if self.closed:
            return "closed"
        returncode = None if self.process is None else self.process.poll()
        if returncode is None:
            return "sending" if self.started else "waiting"
        return "done" if returncode == 0 else "failed"

    def document(self) -> dict[str, Any]:
        returncode = None if self.process is None else self.process.poll()
        return {"id": self.id, "version_id": self.version_id, "group": self.group,
                "port": self.port, "expected": self.expected, "joined": self.joined,
                "state": self.state, "sender_exit": returncode}


def sender_argv(settings: MulticastSettings, interface: str, session: MulticastSession,
                fifo: Path) -> list[str]:
    # The session's group carries its rendezvous (hellos, receivers' requests) as well as its
    # data: a switch with IGMP snooping sends neither to another session's PCs (224.0.0.1, the
    # all-hosts group, would be flooded to every port of the network).
    return [SENDER, "--file", str(fifo), "--interface", interface,
            "--portbase", str(session.port), "--mcast-rdv-address", session.group,
            "--mcast-data-address", session.group, "--ttl", "1", "--async",
            "--fec", settings.fec, "--max-bitrate", f"{round(settings.rate_mbit * 1000)}k",
            "--rexmit-hello-interval", str(HELLO_INTERVAL_MS)]


class MulticastSessions:
    """The boot service's open sessions, at most ``max_sessions``, each in its own slot (group
    address and port base)."""

    def __init__(self, settings: MulticastSettings, interface: str, store: ImageStore) -> None:
        self.settings, self.interface, self.store = settings, interface, store
        network = ipaddress.ip_network(settings.group_range)
        if not network.is_multicast:
            raise ValueError(f"ENCLUME_MULTICAST_GROUP_RANGE {network} is not multicast")
        self._groups = [str(address) for address in network.hosts()][:settings.max_sessions]
        self._first_port = settings.port_base + settings.port_base % 2  # udpcast: even
        self._sessions: dict[str, MulticastSession] = {}
        self._lock = threading.Lock()

    def get(self, session_id: str) -> MulticastSession | None:
        with self._lock:
            return self._sessions.get(session_id)

    def open(self, version_id: str, expected: int) -> MulticastSession:
        size = self.store.manifest(version_id).size  # UnknownVersion before anything starts
        if shutil.which(SENDER) is None:
            raise SessionError(f"{SENDER} is missing (Debian package udpcast)")
        self._reap()
        with self._lock:
            used = {session.slot for session in self._sessions.values()}
            free = [slot for slot in range(len(self._groups)) if slot not in used]
            if not free:
                raise SessionError(f"all {len(self._groups)} multicast sessions are in use")
            slot = free[0]
            session = MulticastSession(str(uuid.uuid4()), version_id, expected,
                                       self._groups[slot],
                                       self._first_port + 2 * slot, slot)
            self._sessions[session.id] = session
        try:
            self._launch(session, size)
        except BaseException:
            self.close(session.id)
            raise
        return session

    def _launch(self, session: MulticastSession, size: int) -> None:
        session.workdir = Path(tempfile.mkdtemp(prefix="enclume-multicast-"))
        fifo = session.workdir / "disk"
        os.mkfifo(fifo, 0o600)
        session.process = subprocess.Popen(
            sender_argv(self.settings, self.interface, session, fifo), stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=(session.workdir / "sender.log").open("wb"))
        LOG.info("multicast session %s: version %s to %s port %d, %d receivers expected",
                 session.id, session.version_id, session.group, session.port, session.expected)
        threading.Thread(target=self._feed, args=(session, fifo, size), daemon=True,
                         name=f"multicast-feed-{session.slot}").start()

    def _feed(self, session: MulticastSession, fifo: Path, size: int) -> None:
        """The raw disk into the FIFO udp-sender reads (open blocks until it opens it)."""
        try:
            with fifo.open("wb") as out:
                for piece in self.store.read_range(session.version_id, 0, size):
                    if session.closed:
                        return
                    out.write(piece)
        except OSError as exc:  # the sender died or was stopped
            LOG.warning("multicast session %s: feeding the sender stopped: %s", session.id, exc)

    def _start(self, session: MulticastSession) -> None:
        with session.lock:
            if session.started or session.closed or session.process is None:
                return
            session.started = True
            try:
                assert session.process.stdin is not None
                session.process.stdin.write(b"\n")
                session.process.stdin.flush()
            except OSError as exc:
                LOG.warning("multicast session %s: the sender is gone: %s", session.id, exc)
        LOG.info("multicast session %s starts with %d of %d receivers", session.id,
                 session.joined, session.expected)

    def _reap(self) -> None:
        """Sessions whose sender ended (streamed, died), or that nobody joined for
        UNJOINED_LIMIT_S, free their slot for a new one: a conductor that never closes its
        session leaks nothing."""
        with self._lock:
            now = time.monotonic()
            ended = [session.id for session in self._sessions.values()
                     if (session.process is not None and session.process.poll() is not None)
                     or (session.joined == 0 and now - session.opened > UNJOINED_LIMIT_S)]
        for session_id in ended:
            self.close(session_id)

    def joined(self, session: MulticastSession) -> None:
        with session.lock:
            session.joined += 1
            first, everyone = session.joined == 1, session.joined >= session.expected
        if everyone:
            self._start(session)
        elif first:
            timer = threading.Timer(self.settings.start_wait_s, self._start, args=(session,))
            timer.daemon = True
            timer.start()

    def close(self, session_id: str) -> MulticastSession | None:
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is None:
            return None
        session.closed = True
        if session.process is not None:
            if session.process.poll() is None:
                session.process.terminate()
                try:
                    session.process.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    session.process.kill()
                    session.process.wait()
            if session.process.stdin is not None:
                session.process.stdin.close()
        if session.workdir is not None:
            _release_writer(session.workdir / "disk")
            shutil.rmtree(session.workdir, ignore_errors=True)
        return session

    def start(self) -> None:
        """Nothing to start: sessions open on request (the boot app's lifespan calls it)."""

    def stop(self) -> None:
        with self._lock:
            ids = list(self._sessions)
        for session_id in ids:
            self.close(session_id)


def _release_writer(fifo: Path) -> None:
    """A feeding thread still blocked opening the FIFO (the sender never read it) gets a reader
    that closes at once, so it sees a broken pipe and ends."""
    try:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return
    os.close(fd)
