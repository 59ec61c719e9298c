"""The session service of a deployed OS, as the server sees it: tokens, heartbeats, commands.

- At each deploy (direct deploy interface) the conductor issues a new token: a random secret
  written into the node's config drive, of which only the sha256 is stored (a later deploy's
  token replaces it: the old one is refused from then on, "expired");
- the service heartbeats with its token and the OS's boot time, and fetches the command waiting
  for it (at most one: a new request replaces an unfetched one);
- the conductor (Wake-on-LAN power interface) asks for a command and waits until it is
  delivered; what the node's power is then follows from the service's heartbeats: ``up``
  while they come, ``off`` once a power-off was delivered and no heartbeat came after it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.session_models import SessionService

POWER_OFF = "power-off"
REBOOT = "reboot"
REBOOT_TO_NETWORK = "reboot-to-network"
COMMANDS = (POWER_OFF, REBOOT, REBOOT_TO_NETWORK)
UP = "up"
OFF = "off"
TOKEN_BYTES = 32


class BadToken(Exception):
    """No session service token for this node, or not this one."""


def token_hash(token: str) -> str:
    # A 256-bit random secret: a plain hash is enough (no password to stretch).
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, node_id: int, now: datetime) -> str:
    """A new token for ``node_id``'s next deployed OS; the previous one is refused from now."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = session.scalar(select(SessionService).where(SessionService.node_id == node_id))
    if row is None:
        row = SessionService(node_id=node_id)
        session.add(row)
    row.token_hash, row.issued_at = token_hash(token), now
    row.last_seen_at = row.booted_at = row.command = row.command_at = None
    row.delivered_command = row.delivered_at = None
    return token


def authenticate(session: Session, node_id: int, token: str) -> SessionService:
    row = session.scalar(select(SessionService).where(SessionService.node_id == node_id))
    if row is None or not hmac.compare_digest(row.token_hash, token_hash(token)):
        raise BadToken("The session token is wrong or expired (each deploy issues a new one).")
    return row


def heartbeat(row: SessionService, booted_at: datetime | None, now: datetime) -> None:
    row.last_seen_at, row.booted_at = now, booted_at


def take_command(row: SessionService, now: datetime) -> str | None:
    """The command waiting for the service, now marked delivered; None when there is none."""
    command = row.command
    if command is not None:
        row.delivered_command, row.delivered_at = command, now
        row.command = row.command_at = None
    return command


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value  # SQLite: naive UTC


def find(session: Session, node_id: int) -> SessionService | None:
    return session.scalar(select(SessionService).where(SessionService.node_id == node_id))


def status(row: SessionService | None, now: datetime, timeout: timedelta) -> str | None:
    """``up``, ``off`` (a power-off was delivered and it was not heard of since), or None
    (unknown: never heard of, silent for longer than ``timeout``, or rebooting)."""
    if row is None or row.last_seen_at is None:
        return None
    seen = _utc(row.last_seen_at)
    if row.delivered_at is not None and seen <= _utc(row.delivered_at):
        return OFF if row.delivered_command == POWER_OFF else None
    return UP if seen >= now - timeout else None


def forget_state(row: SessionService) -> None:
    """The PC was woken: what its service said before (up, powered off) no longer holds; its
    next heartbeat says it is up."""
    row.last_seen_at = row.delivered_command = row.delivered_at = None


def request_command(row: SessionService, command: str, now: datetime) -> None:
    if command not in COMMANDS:
        raise ValueError(f"unknown session service command {command!r}")
    row.command, row.command_at = command, now


def delivered(row: SessionService, command: str, before: datetime | None) -> bool:
    """Whether ``command`` was handed out since the delivery at ``before`` (the row's
    ``delivered_at`` when it was asked: no clock of another host is compared)."""
    if row.command is not None or row.delivered_command != command or row.delivered_at is None:
        return False
    return before is None or _utc(row.delivered_at) != _utc(before)
