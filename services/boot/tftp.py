"""TFTP for the iPXE binaries only (undionly.kpxe, ipxe.efi), read-only, on tftpy's protocol code.

tftpy's own ``TftpServer.listen`` loop dies on some malformed packets (measured with 0.8.7: a
non-numeric blksize or one of over 4,300 digits raises ValueError, a truncated ACK raises
struct.error, both outside its ``except TftpException``) and writes files on a WRQ. So this
module runs its own loop:

- a request on the main port is parsed strictly here first: only an RRQ in octet mode for one of
  the configured file names, with numeric options in range, is accepted; anything else gets a
  TFTP error (or, for stray data, nothing) and never reaches tftpy. tftpy then sees a clean RRQ
  re-encoded from the checked values;
- each transfer is a tftpy ``TftpContextServer``, serving a real file (tftpy 0.8.7 crashes at
  the end of transfers of in-memory objects, upstream issue #155); any exception of one transfer
  ends that transfer only; packets from anyone but the transfer's peer are dropped;
- at most ``max_sessions`` transfers run at once; ``stop()`` wakes the loop at once.
"""

from __future__ import annotations

import logging
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass

from tftpy.TftpContexts import TftpContextServer
from tftpy.TftpPacketTypes import TftpPacketRRQ
from tftpy.TftpShared import TftpErrors, TftpTimeout, TftpTimeoutExpectACK

from services.common.config import Settings
from services.common.metrics import TFTP_REQUESTS

LOG = logging.getLogger(__name__)

RRQ, WRQ, DATA, ACK, ERROR, OACK = 1, 2, 3, 4, 5, 6
MAX_REQUEST_BYTES = 512
MAX_DATAGRAM_BYTES = 65536
# RFC 2348 (blksize), RFC 2349 (timeout, tsize); other options are ignored, as RFC 2347 says.
OPTION_RANGES = {"blksize": (8, 65464), "timeout": (1, 255), "tsize": (0, 0)}
MAX_OPTION_DIGITS = 10
LOOP_WAKE_S = 1.0


class BadRequest(Exception):
    """A request this server refuses; ``code`` is the TFTP error code to answer, if any."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ReadRequest:
    filename: str
    options: dict[str, str]


def parse_request(packet: bytes, allowed: frozenset[str]) -> ReadRequest:
    """The read request in ``packet`` if this server serves it, else BadRequest."""
    if len(packet) < 4:
        raise BadRequest(None, f"a {len(packet)}-byte packet is no TFTP request")
    if len(packet) > MAX_REQUEST_BYTES:
        raise BadRequest(TftpErrors.IllegalTftpOp, "request longer than 512 bytes")
    (opcode,) = struct.unpack("!H", packet[:2])
    if opcode == WRQ:
        raise BadRequest(TftpErrors.AccessViolation, "this server is read-only")
    if opcode in (DATA, ACK, ERROR, OACK):
        raise BadRequest(None, f"stray packet of opcode {opcode} on the request port")
    if opcode != RRQ:
        raise BadRequest(TftpErrors.IllegalTftpOp, f"unknown opcode {opcode}")
    body = packet[2:]
    if not body.endswith(b"\0"):
        raise BadRequest(TftpErrors.IllegalTftpOp, "request not terminated by NUL")
    fields = body[:-1].split(b"\0")
    if len(fields) < 2 or len(fields) % 2:
        raise BadRequest(TftpErrors.IllegalTftpOp, "request needs a file name, a mode and "
                                                   "option name/value pairs")
    try:
        texts = [field.decode("ascii") for field in fields]
    except UnicodeDecodeError:
        raise BadRequest(TftpErrors.IllegalTftpOp, "request is not ASCII") from None
    if any(not text.isprintable() for text in texts):
        raise BadRequest(TftpErrors.IllegalTftpOp, "request has control characters")
    filename, mode = texts[0].lstrip("/"), texts[1].lower()
    if mode != "octet":
        raise BadRequest(TftpErrors.IllegalTftpOp, f"mode {mode!r} is not served, only octet")
    if filename not in allowed:
        raise BadRequest(TftpErrors.FileNotFound, "file not found")
    return ReadRequest(filename, _options(texts[2:]))


def _options(pairs: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for name, value in zip(pairs[::2], pairs[1::2], strict=True):
        name = name.lower()
        if name not in OPTION_RANGES:
            continue
        low, high = OPTION_RANGES[name]
        if not value.isdigit() or len(value) > MAX_OPTION_DIGITS:
            raise BadRequest(TftpErrors.FailedNegotiation, f"option {name} is not a number")
        if not low <= int(value) <= high:
            raise BadRequest(TftpErrors.FailedNegotiation,
                             f"option {name} must lie in {low}..{high}")
        options[name] = value
    return options


def error_packet(code: int, message: str) -> bytes:
    return struct.pack("!HH", ERROR, code) + message.encode("ascii", "replace") + b"\0"


def _clean_rrq(request: ReadRequest) -> bytes:
    packet = TftpPacketRRQ()
    packet.filename = request.filename
    packet.mode = "octet"
    packet.options = request.options
    return bytes(packet.encode().buffer)


class TftpService:
    """A TFTP server thread serving ``settings.tftp_files`` of ``settings.tftp_root``."""

    def __init__(self, settings: Settings) -> None:
        self.host = settings.tftp.host
        self.requested_port = settings.tftp.port
        self.root = settings.tftp.root
        self.names = frozenset(settings.tftp.files)
        self.timeout_s = settings.tftp.timeout_s
        self.retries = settings.tftp.retries
        self.max_sessions = settings.tftp.max_sessions
        self.port: int | None = None
        self._sock: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sessions: dict[tuple[str, int], TftpContextServer] = {}

    def _check_files(self) -> None:
        for name in sorted(self.names):
            if "/" in name or name in ("", ".", ".."):
                raise RuntimeError(f"ENCLUME_TFTP_FILES holds {name!r}: only plain file names")
            if not (self.root / name).is_file():
                raise RuntimeError(f"the TFTP file {self.root / name} is missing (Debian "
                                   f"package ipxe provides undionly.kpxe and ipxe.efi)")

    def start(self) -> None:
        self._check_files()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self.requested_port))
        except OSError as exc:
            sock.close()
            raise RuntimeError(f"cannot listen for TFTP on {self.host}:{self.requested_port}: "
                               f"{exc.strerror}") from exc
        sock.setblocking(False)
        self._sock = sock
        self.port = int(sock.getsockname()[1])
        self._thread = threading.Thread(target=self._loop, name="tftp", daemon=True)
        self._thread.start()
        LOG.info("TFTP serves %s from %s on %s:%d", ", ".join(sorted(self.names)), self.root,
                 self.host, self.port)

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._wake_w.send(b"\0")
        if self._thread is not None:
            self._thread.join(timeout=10)
        for key in list(self._sessions):
            self._finish(key)
        if self._sock is not None:
            self._sock.close()
        self._wake_r.close()
        self._wake_w.close()

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    def _loop(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            by_socket = {ctx.sock: key for key, ctx in self._sessions.items()}
            try:
                ready, _, _ = select.select([self._sock, self._wake_r, *by_socket], [], [],
                                            min(LOOP_WAKE_S, self.timeout_s))
            except (OSError, ValueError):
                LOG.exception("TFTP select failed; dropping all transfers")
                for key in list(self._sessions):
                    self._finish(key)
                continue
            for sock in ready:
                try:
                    if sock is self._sock:
                        self._on_request()
                    elif sock in by_socket:
                        self._on_transfer_packet(by_socket[sock])
                except Exception:
                    LOG.exception("TFTP: unexpected error, the server goes on")
            self._check_timeouts()

    def _on_request(self) -> None:
        assert self._sock is not None
        try:
            packet, peer = self._sock.recvfrom(MAX_DATAGRAM_BYTES)
        except OSError:
            return
        peer = (str(peer[0]), int(peer[1]))
        if peer in self._sessions:
            return  # a retransmitted request of a running transfer
        try:
            request = parse_request(packet, self.names)
            if len(self._sessions) >= self.max_sessions:
                raise BadRequest(TftpErrors.NotDefined, "server busy, try again later")
        except BadRequest as refused:
            LOG.warning("TFTP: refused a request from %s:%d: %s", *peer, refused.message)
            TFTP_REQUESTS.labels("refused").inc()
            if refused.code is not None:
                self._send(error_packet(refused.code, refused.message), peer)
            return
        self._begin(request, peer)

    def _send(self, packet: bytes, peer: tuple[str, int]) -> None:
        assert self._sock is not None
        try:
            self._sock.sendto(packet, peer)
        except OSError as exc:
            LOG.warning("TFTP: cannot answer %s:%d: %s", *peer, exc)

    def _begin(self, request: ReadRequest, peer: tuple[str, int]) -> None:
        context = TftpContextServer(peer[0], peer[1], self.timeout_s, str(self.root),
                                    retries=self.retries)
        if self.host not in ("", "0.0.0.0"):
            context.sock.bind((self.host, 0))  # answer from the address the client asked
        self._sessions[peer] = context
        try:
            context.start(_clean_rrq(request))
        except TftpTimeoutExpectACK:
            context.timeout_expectACK = True
        except Exception as exc:
            LOG.warning("TFTP: transfer of %s to %s:%d failed to start: %s",
                        request.filename, *peer, exc)
            TFTP_REQUESTS.labels("failed").inc()
            self._finish(peer)
            return
        TFTP_REQUESTS.labels("started").inc()
        LOG.info("TFTP: sending %s to %s:%d", request.filename, *peer)

    def _on_transfer_packet(self, key: tuple[str, int]) -> None:
        context = self._sessions[key]
        try:
            _, source = context.sock.recvfrom(MAX_DATAGRAM_BYTES, socket.MSG_PEEK)
        except OSError:
            self._finish(key)
            return
        if (source[0], source[1]) != key:
            context.sock.recvfrom(MAX_DATAGRAM_BYTES)  # not the peer of this transfer
            LOG.warning("TFTP: dropped a packet from %s:%d to the transfer of %s:%d",
                        source[0], source[1], *key)
            return
        context.timeout_expectACK = False
        try:
            context.cycle()
        except TftpTimeoutExpectACK:
            context.timeout_expectACK = True
            return
        except Exception as exc:
            LOG.warning("TFTP: transfer to %s:%d ended: %s", *key, exc)
            self._finish(key)
            return
        if context.state is None:
            LOG.info("TFTP: sent %s to %s:%d (%d bytes)", context.file_to_transfer, *key,
                     context.metrics.bytes)
            self._finish(key)

    def _check_timeouts(self) -> None:
        now = time.time()
        for key, context in list(self._sessions.items()):
            try:
                context.checkTimeout(now)
                continue
            except TftpTimeout:
                pass
            context.retry_count += 1
            if context.retry_count >= context.retries:
                LOG.warning("TFTP: %s:%d stopped answering; transfer dropped", *key)
                self._finish(key)
                continue
            try:
                context.state.resendLast()
                context.last_update = now
                context.timeout_expectACK = False
            except Exception as exc:
                LOG.warning("TFTP: transfer to %s:%d ended: %s", *key, exc)
                self._finish(key)

    def _finish(self, key: tuple[str, int]) -> None:
        context = self._sessions.pop(key, None)
        if context is None:
            return
        try:
            context.end()
        except Exception:
            LOG.exception("TFTP: closing the transfer of %s:%d failed", *key)

