"""The university's LDAP directory as an identity source (ENCLUME_AUTH_STRATEGY=ldap).

A login binds to the directory as the user (the DN from ``ldap.user_dn_template``) with the
password given, then, still bound as the user, searches the user's groups; the groups named in
``ldap.role_groups`` give the roles, those in ``ldap.room_groups`` the rooms. A user in no
mapped group is refused like a wrong password. Nothing is stored in the directory and no
service account is needed.

The directory unreachable is not a wrong password: ``DirectoryUnavailable`` says so (the
caller answers 503). With ``ldap.users_file_fallback`` the users file (ENCLUME_USERS_FILE)
still lets its users (teachers, admins) in meanwhile. Passwords never reach a log or an error:
ldap3's messages are replaced by our own.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import ldap3
from ldap3.core.exceptions import LDAPException, LDAPSocketOpenError, LDAPStartTLSError
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from services.common.config_classroom_sections import LdapSettings
from services.common.identity import ROLES, DirectoryUnavailable, Identity, UsersFile

LOG = logging.getLogger(__name__)
INVALID_CREDENTIALS = 49


@dataclass(frozen=True)
class _Verified:
    identity: Identity
    until: float


class LdapDirectory:
    """Binds and group searches against one directory; no state but the connection settings."""

    def __init__(self, settings: LdapSettings) -> None:
        if not settings.url:
            raise ValueError("the ldap strategy needs ENCLUME_LDAP_URL")
        self.settings = settings
        self.tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED if settings.tls_verify else ssl.CERT_NONE,
            ca_certs_file=str(settings.ca_file) if settings.ca_file else None,
            version=ssl.PROTOCOL_TLS_CLIENT)

    def groups_of(self, user: str, password: str) -> list[str] | None:
        """The user's group names; None when the directory refuses the credentials."""
        dn = self.settings.user_dn_template.format(user=escape_rdn(user))
        # A Server per login: ldap3's Server remembers a failed address for 5 s and would
        # refuse logins that long after the directory is back.
        server = ldap3.Server(self.settings.url, connect_timeout=self.settings.connect_timeout_s,
                              tls=self.tls, get_info=ldap3.NONE)
        connection = ldap3.Connection(server, user=dn, password=password,
                                      receive_timeout=self.settings.timeout_s,
                                      raise_exceptions=False, read_only=True)
        try:
            connection.open()
            if self.settings.start_tls:
                connection.start_tls()
            if not connection.bind():
                if connection.result.get("result") == INVALID_CREDENTIALS:
                    return None
                raise DirectoryUnavailable(
                    f"the directory {self.settings.url} refused the bind: "
                    f"{connection.result.get('description', 'unknown error')}")
            return self._search_groups(connection, user, dn)
        except LDAPSocketOpenError:
            raise DirectoryUnavailable(
                f"the directory {self.settings.url} cannot be reached") from None
        except LDAPStartTLSError:
            raise DirectoryUnavailable(
                f"StartTLS with the directory {self.settings.url} failed (its certificate "
                "or ENCLUME_LDAP_CA_FILE)") from None
        except LDAPException as exc:
            raise DirectoryUnavailable(f"the directory {self.settings.url} failed to answer "
                                       f"({type(exc).__name__})") from None
        finally:
            # A connection that failed may fail to unbind: what failed first is reported.
            with contextlib.suppress(LDAPException):
                connection.unbind()

    def _search_groups(self, connection: ldap3.Connection, user: str, dn: str) -> list[str]:
        settings = self.settings
        if not settings.group_base:
            return []
        query = settings.group_filter.format(user=escape_filter_chars(user),
                                             dn=escape_filter_chars(dn))
        attribute = settings.group_name_attribute
        if not connection.search(settings.group_base, query, attributes=[attribute]):
            if connection.result.get("result") not in (0, 32):  # 32: no such object
                raise DirectoryUnavailable(
                    f"the directory {settings.url} refused the group search: "
                    f"{connection.result.get('description', 'unknown error')}")
            return []
        names = []
        for entry in connection.response or []:
            values = entry.get("attributes", {}).get(attribute, [])
            names.extend(values if isinstance(values, list) else [values])
        return [str(name) for name in names]


def identity_from_groups(user: str, groups: list[str], settings: LdapSettings) -> Identity:
    roles = {settings.role_groups[g] for g in groups if g in settings.role_groups}
    rooms = {room for g in groups for room in settings.room_groups.get(g, [])}
    return Identity(user, frozenset(roles & set(ROLES)), frozenset(rooms))


class LdapSource:
    """The ``IdentitySource`` of the ldap strategy (services/common/identity.py's protocol).

    Verified logins are remembered for ``ldap.cache_s`` as a salted digest (an API client's
    basic auth does not bind on each request); the identities of users who logged in are kept
    for ``identity_of`` (a web session follows them until it expires).
    """

    def __init__(self, settings: LdapSettings, users_file: UsersFile | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.directory = LdapDirectory(settings)
        self.settings = settings
        self.fallback = users_file if settings.users_file_fallback else None
        self.clock = clock
        self._salt = secrets.token_bytes(16)
        self._verified: dict[bytes, _Verified] = {}
        self._known: dict[str, Identity] = {}
        self._guard = threading.Lock()

    def authenticate(self, user: str, password: str) -> Identity | None:
        """The user's identity; None for wrong credentials or no mapped role. Raises
        DirectoryUnavailable when the directory cannot answer and no fallback lets them in."""
        if not user or not password:
            return None  # an empty password would be an anonymous bind, which succeeds
        digest = hmac.new(self._salt, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        now = self.clock()
        with self._guard:
            verified = self._verified.get(digest)
            if verified is not None and verified.until > now:
                return verified.identity
        try:
            groups = self.directory.groups_of(user, password)
        except DirectoryUnavailable as exc:
            LOG.warning("LDAP login of %r: %s", user, exc)
            if self.fallback is not None and self.fallback.identity_of(user) is not None:
                return self.fallback.authenticate(user, password)
            raise
        if groups is None:
            return None
        identity = identity_from_groups(user, groups, self.settings)
        if not identity.roles:
            LOG.info("LDAP login of %r refused: none of their groups maps to a role", user)
            return None
        with self._guard:
            self._forget_expired(now)
            self._verified[digest] = _Verified(identity, now + self.settings.cache_s)
            self._known[user] = identity
        return identity

    def _forget_expired(self, now: float) -> None:
        for key in [k for k, v in self._verified.items() if v.until <= now]:
            del self._verified[key]

    def identity_of(self, user: str) -> Identity | None:
        with self._guard:
            known = self._known.get(user)
        if known is None and self.fallback is not None:
            return self.fallback.identity_of(user)
        return known

    def users(self) -> list[Identity]:
        with self._guard:
            known = dict(self._known)
        for identity in self.fallback.users() if self.fallback is not None else []:
            known.setdefault(identity.user, identity)
        return [known[name] for name in sorted(known)]
