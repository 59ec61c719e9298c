"""Multicast sessions of the boot service: one ``uftp`` per session.

A session streams one image version's raw disk once, to a group address and a port of its own
(picked from ENCLUME_MULTICAST_GROUP_RANGE and ENCLUME_MULTICAST_PORT_BASE; the group carries
the announcements and the data, ``-M`` and ``-P``, so the receivers' uftpd listen on it), out of
the provisioning interface (``-I``), TTL 1, at a fixed rate cap (``-R``). uftp needs a regular
file (its NAK passes seek back to resend): the version's raw disk is made once into the image
cache (``ImageCache.acquire_built``, keyed by the version, evicted by the cache's size limit
like any image) while the PCs join. A receiver that lost packets asks for them again (NAKs) and
gets them in later passes, the others are done at the end of the first; a receiver that stops
answering is dropped after uftp's retries (``-s``), the others finish (docs/architecture.md,
"Multicast room restores").

The stream starts when the expected receivers have said they joined, or
ENCLUME_MULTICAST_START_WAIT_S after the first one did (the PCs boot their ramdisks at different
times), whichever comes first: uftp is started then, with the joined receivers' ids as its
closed group (``-H``), so it waits for no announce of a PC that is not there; a PC joining
later is told it is late and repairs over HTTP. A session nobody joins is closed after
UNJOINED_LIMIT_S.

The partition table is not streamed (``services.boot.partition_table``: the MBR and its EBR
chain, or a GPT's headers and entries): the file carries its bytes zeroed and the session's
document names them (``table``: ``[[offset, length], ...]``), which the agents fetch over HTTP and
write last, once the rest of their disk verified. A corrupt EBR chain is logged; the EBRs read
before the fault are held back, the rest is streamed (the PCs verify it by the manifest).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.boot.partition_table import Range, held_ranges, zeroed
from services.common.bootconfig.image_cache import ImageCache
from services.common.config_hardware_sections import MulticastSettings
from services.images.store import ImageStore

LOG = logging.getLogger(__name__)
SENDER = "uftp"
DEST_NAME = "disk"  # the name the receivers' uftpd give the file: their symlink to the disk
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
MAX_NAK_TIMES = 10  # the most uftp's -m takes
ROBUST = 20  # uftp's -s: a receiver silent through this many retries is dropped
# uftp's -r: the group round trip time it starts from, before it has measured the real one
# (well under a millisecond on the provisioning VLAN, TTL 1). Its default, 0.5 s, spaces the
# announcements and the end of the session by 1.5 s waits: 0.2 s saves about a second a
# session (docs/benchmarks.md) and still gives late PCs 20 x 3 x 0.2 = 12 s to register.
INITIAL_GRTT_S = 0.2
STOP_TIMEOUT_S = 5.0
UNJOINED_LIMIT_S = 3600.0  # longer than any room's PCs take to boot their ramdisks
OWN_CACHE_MAX_BYTES = 20 * 1024**3
OWN_CACHE_TIMEOUT_S = 60.0  # unused: that cache downloads nothing
CLIENT_ID = re.compile(r"0x[0-9a-fA-F]{8}")  # uftp's -H / uftpd's -U


class SessionError(RuntimeError):
    """No session can be opened (all slots taken, no uftp)."""


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
    clients: list[str] = field(default_factory=list)  # the receivers' uftpd ids
    started: bool = False
    closed: bool = False
    process: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None
    cache_key: str | None = None  # the image cache's file this session holds
    table: list[Range] = field(default_factory=list)  # held back from the stream
    go: threading.Event = field(default_factory=threading.Event)
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
                "state": self.state, "sender_exit": returncode,
                "table": [list(piece) for piece in self.table]}


def sender_argv(settings: MulticastSettings, interface: str, session: MulticastSession,
                image: Path) -> list[str]:
    # The session's group carries its announcements as well as its data: a switch with IGMP
    # snooping sends neither to another session's PCs. Without joined ids the group is open
    # (uftp takes whoever answers its announcements).
    closed_group = ["-H", ",".join(session.clients)] if session.clients else []
    return [SENDER, "-I", interface, "-M", session.group, "-P", session.group,
            "-p", str(session.port), "-t", "1", "-R", str(round(settings.rate_mbit * 1000)),
            "-B", str(SOCKET_BUFFER_BYTES), "-s", str(ROBUST), "-r", str(INITIAL_GRTT_S),
            "-N", str(min(settings.max_nak_percent, 100)),
            "-m", str(min(settings.max_nak_times, MAX_NAK_TIMES)), *closed_group,
            "-D", DEST_NAME, str(image)]


def sender_file_key(version_id: str, table: list[Range]) -> str:
    """The image cache's key of a version's file with ``table`` zeroed: it names the ranges (a
    digest), so a file an earlier boot service made with other ranges zeroed is not reused."""
    digest = hashlib.sha256(json.dumps(table).encode()).hexdigest()[:16]
    return f"multicast-version-{version_id}-table-zeroed-{digest}.raw"


class MulticastSessions:
    """The boot service's open sessions, at most ``max_sessions``, each in its own slot (group
    address and port); the versions' raw disks are made into ``cache`` (a cache of its own in
    a temporary directory without one)."""

    def __init__(self, settings: MulticastSettings, interface: str, store: ImageStore,
                 cache: ImageCache | None = None) -> None:
        self.settings, self.interface, self.store = settings, interface, store
        network = ipaddress.ip_network(settings.group_range)
        if not network.is_multicast:
            raise ValueError(f"ENCLUME_MULTICAST_GROUP_RANGE {network} is not multicast")
        self._groups = [str(address) for address in network.hosts()][:settings.max_sessions]
        self._first_port = settings.port_base + settings.port_base % 2
        self._own_cache: Path | None = None
        if cache is None:  # tests, tools: a cache of the sessions' own, removed at stop
            self._own_cache = Path(tempfile.mkdtemp(prefix="enclume-multicast-cache-"))
            cache = ImageCache(self._own_cache, OWN_CACHE_MAX_BYTES, OWN_CACHE_TIMEOUT_S)
        self.cache = cache
        self._sessions: dict[str, MulticastSession] = {}
        self._lock = threading.Lock()

    def get(self, session_id: str) -> MulticastSession | None:
        with self._lock:
            return self._sessions.get(session_id)

    def open(self, version_id: str, expected: int) -> MulticastSession:
        size = self.store.manifest(version_id).size  # UnknownVersion before anything starts
        table = self._held_ranges(version_id, size)
        if shutil.which(SENDER) is None:
            raise SessionError(f"{SENDER} is missing (Debian package uftp)")
        self._reap()
        with self._lock:
            used = {session.slot for session in self._sessions.values()}
            free = [slot for slot in range(len(self._groups)) if slot not in used]
            if not free:
                raise SessionError(f"all {len(self._groups)} multicast sessions are in use")
            slot = free[0]
            session = MulticastSession(str(uuid.uuid4()), version_id, expected,
                                       self._groups[slot],
                                       self._first_port + 2 * slot, slot, table=table)
            self._sessions[session.id] = session
        session.workdir = Path(tempfile.mkdtemp(prefix="enclume-multicast-"))
        LOG.info("multicast session %s: version %s to %s port %d, %d receivers expected",
                 session.id, session.version_id, session.group, session.port, session.expected)
        threading.Thread(target=self._send, args=(session, size), daemon=True,
                         name=f"multicast-send-{session.slot}").start()
        return session

    def _held_ranges(self, version_id: str, size: int) -> list[Range]:
        """The version's partition table's ranges (a corrupt EBR chain: those read before the
        fault, which is logged)."""
        held = held_ranges(lambda offset, length: b"".join(
            self.store.read_range(version_id, offset, length)), size)
        for fault in held.faults:
            LOG.warning("version %s: %s; the rest of its partition table is streamed, the "
                        "PCs verify it by the block manifest", version_id, fault)
        return held.ranges

    def _send(self, session: MulticastSession, size: int) -> None:
        """Makes the version's regular file (while the PCs join), then runs uftp once the
        session starts."""
        key = sender_file_key(session.version_id, session.table)
        try:
            image = self.cache.acquire_built(key, size, lambda: zeroed(self.store.read_range(
                session.version_id, 0, size), session.table))
        except Exception:
            LOG.exception("multicast session %s: the image file could not be made", session.id)
            self.close(session.id)
            return
        with session.lock:
            session.cache_key = key
            if session.closed:
                self.cache.release_key(key)
                return
        session.go.wait()
        with session.lock:
            if session.closed or session.workdir is None:
                return
            session.process = subprocess.Popen(
                sender_argv(self.settings, self.interface, session, image),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=(session.workdir / "sender.log").open("wb"))

    def _start(self, session: MulticastSession) -> None:
        with session.lock:
            if session.started or session.closed:
                return
            session.started = True
            session.go.set()
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

    def joined(self, session: MulticastSession, client_id: str | None = None) -> bool:
        """A receiver joined (``client_id``: its uftpd's id); False when it came after the
        stream started (it is not in uftp's group: it repairs over HTTP)."""
        with session.lock:
            late = session.started
            session.joined += 1
            if client_id is not None and not late and client_id not in session.clients:
                session.clients.append(client_id)
            first, everyone = session.joined == 1, session.joined >= session.expected
        if late:
            return False
        if everyone:
            self._start(session)
        elif first:
            timer = threading.Timer(self.settings.start_wait_s, self._start, args=(session,))
            timer.daemon = True
            timer.start()
        return True

    def close(self, session_id: str) -> MulticastSession | None:
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is None:
            return None
        with session.lock:
            session.closed = True
            session.go.set()
            key, session.cache_key = session.cache_key, None
        if session.process is not None and session.process.poll() is None:
            session.process.terminate()
            try:
                session.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                session.process.kill()
                session.process.wait()
        if key is not None:
            self.cache.release_key(key)
        if session.workdir is not None:
            shutil.rmtree(session.workdir, ignore_errors=True)
        return session

    def start(self) -> None:
        """Nothing to start: sessions open on request (the boot app's lifespan calls it)."""

    def stop(self) -> None:
        with self._lock:
            ids = list(self._sessions)
        for session_id in ids:
            self.close(session_id)
        if self._own_cache is not None:
            self.cache.stop()
            shutil.rmtree(self._own_cache, ignore_errors=True)
