"""Who a user is and what roles they hold, from the one identity source the settings name.

Sources (``ENCLUME_AUTH_STRATEGY``):
- ``http_basic``: an htpasswd file of bcrypt entries; every user is an admin (as before roles).
- ``users_file``: a YAML file of users with a bcrypt hash, roles and, for teachers, rooms.
- LDAP comes later (#15) as another ``IdentitySource``.

Both files are re-read when they change (a users file broken while running is logged and the
users read before are kept). Verified credentials are remembered as a salted
digest (never the password), so bcrypt's deliberate slowness is paid once per user and
password; a change of the file forgets them all.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import bcrypt

from services.common.yaml_errors import describe_yaml_error

LOG = logging.getLogger(__name__)
ROLES = ("admin", "operator", "teacher", "student", "service")
# Roles that may use Ironic's /v1 and manage everything of the classroom API.
IRONIC_ROLES = frozenset({"admin", "operator", "service"})
STAFF_ROLES = frozenset({"admin", "operator"})
BCRYPT_PREFIXES = ("$2y$", "$2b$", "$2a$")


class IdentityFileError(ValueError):
    """The users file cannot be used; the message says where and why."""


class DirectoryUnavailable(RuntimeError):
    """A directory (LDAP) cannot be reached or answer; the message names it, never a password."""


@dataclass(frozen=True)
class KeystoneScope:
    """What a validated Keystone token says of its holder (services/api/keystone_auth.py)."""

    roles: frozenset[str]
    system: bool
    project_id: str | None
    project_name: str | None
    domain_id: str | None = None  # a domain-scoped token's domain


@dataclass(frozen=True)
class Identity:
    user: str
    roles: frozenset[str]
    # Rooms (names) the identity source gives a teacher, beside the rooms' own teacher lists.
    rooms: frozenset[str] = field(default_factory=frozenset)
    # A Keystone token's roles and scope: services/api/policy.py decides on them alone.
    keystone: KeystoneScope | None = None

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & STAFF_ROLES)

    @property
    def may_use_ironic(self) -> bool:
        return bool(self.roles & IRONIC_ROLES)


# What a request is when authentication is off (noauth on loopback): an admin.
ANONYMOUS_ADMIN = Identity("anonymous", frozenset({"admin"}))


class IdentitySource(Protocol):
    def authenticate(self, user: str, password: str) -> Identity | None: ...

    def identity_of(self, user: str) -> Identity | None:
        """The user's identity as the source holds it now (None once removed): a web session
        started with a password follows later changes of roles and rooms."""
        ...

    def users(self) -> list[Identity]:
        """Every user the source holds, by name (the admins' read-only list of the web page)."""
        ...


@dataclass(frozen=True)
class _Entry:
    hashed: bytes
    identity: Identity


class _BcryptFile:
    """A file of users with bcrypt hashes, re-read when it changes; ``_parse`` reads one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, _Entry] = {}
        self._mtime: float | None = None
        self._verified: set[bytes] = set()
        self._salt = secrets.token_bytes(16)
        self._guard = threading.Lock()

    def _parse(self, text: str) -> dict[str, _Entry]:
        raise NotImplementedError

    def _reload_if_changed(self) -> None:
        mtime = os.stat(self.path).st_mtime
        if mtime == self._mtime:
            return
        try:
            entries = self._parse(self.path.read_text())
        except IdentityFileError as exc:
            if self._mtime is None:
                raise  # at start: refuse to run
            # While running: keep the users read last, say why once per change of the file.
            LOG.error("%s; keeping the users read before", exc)
            self._mtime = mtime
            return
        self._entries, self._mtime, self._verified = entries, mtime, set()

    def authenticate(self, user: str, password: str) -> Identity | None:
        digest = hmac.new(self._salt, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        with self._guard:
            self._reload_if_changed()
            entry = self._entries.get(user)
            if entry is not None and digest in self._verified:
                return entry.identity
        if entry is None or not _bcrypt_matches(password, entry.hashed):
            return None
        with self._guard:
            self._verified.add(digest)
        return entry.identity

    def identity_of(self, user: str) -> Identity | None:
        with self._guard:
            self._reload_if_changed()
            entry = self._entries.get(user)
        return entry.identity if entry is not None else None

    def users(self) -> list[Identity]:
        with self._guard:
            self._reload_if_changed()
            return [self._entries[name].identity for name in sorted(self._entries)]

    def check(self, user: str, password: str) -> bool:
        return self.authenticate(user, password) is not None


def _bcrypt_matches(password: str, hashed: bytes) -> bool:
    """bcrypt's verdict; a password bcrypt refuses to hash (over 72 bytes) is simply wrong."""
    try:
        return bcrypt.checkpw(password.encode(), hashed)
    except ValueError:
        return False


def _bcrypt_hash(value: str) -> bytes:
    return value.replace("$2y$", "$2b$", 1).encode()


class Htpasswd(_BcryptFile):
    """An htpasswd file of bcrypt entries; every user in it is an admin."""

    def _parse(self, text: str) -> dict[str, _Entry]:
        entries = {}
        for line in text.splitlines():
            user, sep, hashed = line.strip().partition(":")
            if sep and hashed.startswith(BCRYPT_PREFIXES):
                entries[user] = _Entry(_bcrypt_hash(hashed),
                                       Identity(user, frozenset({"admin"})))
        return entries


class UsersFile(_BcryptFile):
    """A YAML users file (docs/configuration.md)::

        users:
          - name: alice
            password_hash: "$2b$12$..."
            roles: [teacher]
            rooms: [B12]
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._reload_if_changed()  # a broken file is refused at start, not at the first login

    def _parse(self, text: str) -> dict[str, _Entry]:
        import yaml  # here, not at start: PyYAML costs a server ~1 MiB of RSS it rarely needs

        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise IdentityFileError(
                f"{self.path}: not valid YAML: {describe_yaml_error(exc)}") from None
        users = document.get("users") if isinstance(document, dict) else None
        if not isinstance(users, list):
            raise IdentityFileError(f"{self.path}: expected a mapping with a 'users' list")
        entries: dict[str, _Entry] = {}
        for number, user in enumerate(users, start=1):
            entry = _user_entry(user, f"{self.path}: user {number}")
            if entry.identity.user in entries:
                raise IdentityFileError(f"{self.path}: user {entry.identity.user!r} appears "
                                        "twice")
            entries[entry.identity.user] = entry
        return entries


def _strings(value: Any, where: str, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise IdentityFileError(f"{where}: {what} must be a list of names")
    return list(value)


def _user_entry(user: Any, where: str) -> _Entry:
    if not isinstance(user, dict):
        raise IdentityFileError(f"{where}: expected a mapping")
    unknown = set(user) - {"name", "password_hash", "roles", "rooms"}
    if unknown:
        raise IdentityFileError(f"{where}: unknown key(s) {sorted(unknown)}")
    name, hashed = user.get("name"), user.get("password_hash")
    if not isinstance(name, str) or not name or ":" in name:
        raise IdentityFileError(f"{where}: 'name' must be a non-empty string without ':'")
    if not isinstance(hashed, str) or not hashed.startswith(BCRYPT_PREFIXES):
        raise IdentityFileError(f"{where} ({name}): 'password_hash' must be a bcrypt hash")
    roles = _strings(user.get("roles", []), f"{where} ({name})", "'roles'")
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise IdentityFileError(f"{where} ({name}): roles are one or more of "
                                f"{', '.join(ROLES)} (got {roles})")
    rooms = _strings(user.get("rooms", []), f"{where} ({name})", "'rooms'")
    return _Entry(_bcrypt_hash(hashed), Identity(name, frozenset(roles), frozenset(rooms)))
