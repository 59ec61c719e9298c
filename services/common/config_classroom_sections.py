"""Settings sections of the students' side of a classroom: the LDAP directory, logins at a PC
and students' saved states (docs/configuration.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

from services.common.config_fields import section_config
from services.common.identity import ROLES


class LdapSettings(BaseSettings):
    """The university's directory as an identity source (ENCLUME_AUTH_STRATEGY=ldap)."""

    model_config = section_config("LDAP_")
    url: str | None = None  # ldap://host:389 or ldaps://host:636
    # The DN a user binds as; {user} is the login name, escaped as a DN value.
    user_dn_template: str = "uid={user},ou=people,dc=example,dc=org"
    group_base: str | None = None  # where groups are searched; None: no groups, no roles
    # {user}: the login name, {dn}: the user's DN (both escaped for a filter)
    group_filter: str = "(|(memberUid={user})(member={dn})(uniqueMember={dn}))"
    group_name_attribute: str = "cn"
    # group name -> role (admin, operator, teacher, student); a user in no such group is refused
    role_groups: dict[str, str] = Field(default_factory=dict)
    # group name -> rooms (names) its members teach or attend
    room_groups: dict[str, list[str]] = Field(default_factory=dict)
    start_tls: bool = False  # upgrade ldap:// with StartTLS before the bind
    ca_file: Path | None = None  # the CA that signed the directory's certificate
    tls_verify: bool = True
    connect_timeout_s: float = Field(default=5.0, gt=0)
    timeout_s: int = Field(default=10, ge=1)  # seconds for each answer of the directory
    cache_s: float = Field(default=60.0, ge=0)  # a verified login is not re-bound this long
    # The directory unreachable: users of ENCLUME_USERS_FILE (teachers, admins) may log in.
    users_file_fallback: bool = False

    @field_validator("role_groups")
    @classmethod
    def _known_roles(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value.values()) - set(ROLES))
        if unknown:
            raise ValueError(f"roles are {', '.join(ROLES)} (got {', '.join(unknown)})")
        return value


class PcLoginSettings(BaseSettings):
    """Students and teachers logging in at a PC's boot prompt (docs/classroom-api.md)."""

    model_config = section_config("PC_LOGIN_")
    attempts: int = Field(default=5, ge=1)  # failed logins per user name ...
    window_s: float = Field(default=300.0, gt=0)  # ... within this many seconds
    pc_attempts: int = Field(default=20, ge=1)  # failed logins at one PC in the same window
    # True: a deploy of a room's PC waits for a login at its console before it restores
    at_boot: bool = False
    language: Literal["en", "fr"] = "en"  # of the prompt at the PCs


class StudentStateSettings(BaseSettings):
    """Students' saved states (docs/classroom-api.md)."""

    model_config = section_config("STUDENT_STATES_")
    max_count: int = Field(default=5, ge=1)  # states one student keeps
    max_bytes: int = Field(default=20 * 1024**3, ge=0)  # their summed sizes
    retention_days: float = Field(default=90.0, gt=0)  # unused this long (and unpinned): removed
