"""The identity sources: a users file's roles and rooms, its refusals, htpasswd as admins."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from services.api.auth import AuthConfigError, effective_strategy, identity_source
from services.common.config import Settings
from services.common.identity import Htpasswd, IdentityFileError, UsersFile
from services.common.ldap_identity import LdapSource

HASH = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()


def users_file(tmp_path: Path, users: Any) -> Path:
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump({"users": users}))
    return path


def test_users_file_gives_roles_and_rooms_and_checks_the_password(tmp_path: Path) -> None:
    source = UsersFile(users_file(tmp_path, [
        {"name": "alice", "password_hash": HASH, "roles": ["teacher"], "rooms": ["B12"]}]))
    alice = source.authenticate("alice", "pw")
    assert alice is not None and alice.roles == {"teacher"} and alice.rooms == {"B12"}
    assert not alice.may_use_ironic and not alice.is_staff
    assert source.authenticate("alice", "wrong") is None
    assert source.authenticate("mallory", "pw") is None
    assert source.authenticate("alice", "x" * 100) is None  # bcrypt refuses over 72 bytes


@pytest.mark.parametrize(("users", "fragment"), [
    ([{"name": "a", "password_hash": HASH, "roles": ["wizard"]}], "roles are"),
    ([{"name": "a", "password_hash": HASH, "roles": []}], "roles are"),
    ([{"name": "a", "password_hash": "plain", "roles": ["admin"]}], "bcrypt"),
    ([{"name": "a", "password_hash": HASH, "roles": ["admin"], "pw": 1}], "unknown key"),
    ([{"name": "a", "password_hash": HASH, "roles": ["admin"]}] * 2, "twice"),
    ("not a list", "'users' list"),
])
def test_a_broken_users_file_is_refused_with_where_and_why(tmp_path: Path, users: Any,
                                                           fragment: str) -> None:
    with pytest.raises(IdentityFileError, match=fragment):
        UsersFile(users_file(tmp_path, users))


def test_the_strategy_names_the_source(tmp_path: Path) -> None:
    path = users_file(tmp_path, [{"name": "a", "password_hash": HASH, "roles": ["admin"]}])
    settings = Settings(auth={"strategy": "users_file", "users_file": path})
    assert isinstance(identity_source(settings, effective_strategy(settings)), UsersFile)
    with pytest.raises(AuthConfigError, match="ENCLUME_USERS_FILE"):
        effective_strategy(Settings(auth={"strategy": "users_file"}))
    with pytest.raises(AuthConfigError, match="unknown auth strategy"):
        effective_strategy(Settings(auth={"strategy": "kerberos"}))
    # ldap (issue #20) needs its directory, and its fallback needs the users file.
    with pytest.raises(AuthConfigError, match="ENCLUME_LDAP_URL"):
        effective_strategy(Settings(auth={"strategy": "ldap"}))
    with pytest.raises(AuthConfigError, match="ENCLUME_USERS_FILE"):
        effective_strategy(Settings(auth={"strategy": "ldap"}, ldap={
            "url": "ldap://127.0.0.1", "users_file_fallback": True}))
    ldap = Settings(auth={"strategy": "ldap", "users_file": path},
                    ldap={"url": "ldap://127.0.0.1", "users_file_fallback": True})
    assert isinstance(identity_source(ldap, effective_strategy(ldap)), LdapSource)
    path.write_text("users: [{name: a}]")
    with pytest.raises(AuthConfigError, match="bcrypt"):
        identity_source(settings, "users_file")


def test_htpasswd_users_are_admins(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text(f"root:{HASH}\n")
    root = Htpasswd(path).authenticate("root", "pw")
    assert root is not None and root.roles == {"admin"} and root.may_use_ironic


def test_a_users_file_broken_while_running_keeps_the_users_read_before(tmp_path: Path) -> None:
    path = users_file(tmp_path, [{"name": "a", "password_hash": HASH, "roles": ["admin"]}])
    source = UsersFile(path)
    path.write_text("users: [{name: a}]")
    os.utime(path, (1, 1))  # a change of mtime whatever the file system's resolution
    assert source.authenticate("a", "pw") is not None
    users_file(tmp_path, [{"name": "b", "password_hash": HASH, "roles": ["teacher"]}])
    assert source.authenticate("a", "pw") is None
    b = source.authenticate("b", "pw")
    assert b is not None and b.roles == {"teacher"}


def test_a_user_is_looked_up_without_a_password_and_follows_the_file(tmp_path: Path) -> None:
    path = users_file(tmp_path, [
        {"name": "alice", "password_hash": HASH, "roles": ["teacher"], "rooms": ["B12"]},
        {"name": "admin", "password_hash": HASH, "roles": ["admin"]}])
    source = UsersFile(path)
    alice = source.identity_of("alice")
    assert alice is not None and alice.roles == {"teacher"} and alice.rooms == {"B12"}
    assert source.identity_of("mallory") is None
    assert [u.user for u in source.users()] == ["admin", "alice"]
    users_file(tmp_path, [{"name": "admin", "password_hash": HASH, "roles": ["admin"]}])
    os.utime(path, (2, 2))
    assert source.identity_of("alice") is None  # removed: a web session of hers ends
    assert [u.user for u in source.users()] == ["admin"]


def test_a_users_file_that_is_not_yaml_is_refused_without_quoting_its_text(
        tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    path.write_text('users:\n  - name: a\n    password_hash: "$2b$12$secrethashtext\n'
                    '    roles: [admin]\n  - {\n')
    with pytest.raises(IdentityFileError, match=r"not valid YAML: line \d+") as raised:
        UsersFile(path)
    assert "secrethashtext" not in str(raised.value)
