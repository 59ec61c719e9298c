"""The LDAP identity source against a real OpenLDAP slapd (tests/support/slapd.py): binds,
group → role and room mapping, TLS, the directory down with and without the users file's
fallback, and through the API's basic auth and the web page's login. No password ever appears
in a log line or an error."""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.identity import UsersFile
from services.common.ldap_identity import DirectoryUnavailable, LdapSource
from tests.support import slapd
from tests.support.api_stack import served_api
from tests.support.classroom_users import ok, write_users_file
from tests.support.pc_login_room import pc_in_a_class
from tests.support.slapd import ldap_settings

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not slapd.available(), reason="needs Debian's slapd")]

LOCAL_PASSWORD = "local teacher password"


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[slapd.Slapd]:
    server = slapd.Slapd(tmp_path_factory.mktemp("slapd")).start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="module")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tina is also a local teacher (another password); sam is not local."""
    return write_users_file(tmp_path_factory.mktemp("users"), {"tina": (["teacher"], ["B12"])},
                            LOCAL_PASSWORD)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends


def test_teachers_students_and_admins_get_the_roles_and_rooms_of_their_groups(
        directory: slapd.Slapd) -> None:
    source = LdapSource(ldap_settings(directory.url))
    tina = source.authenticate("tina", slapd.password_of("tina"))
    assert tina is not None and tina.roles == {"teacher"} and tina.rooms == {"B12", "B14"}
    sam = source.authenticate("sam", slapd.password_of("sam"))
    assert sam is not None and sam.roles == {"student"} and sam.rooms == {"B12"}
    sue = source.authenticate("sue", slapd.password_of("sue"))
    assert sue is not None and sue.roles == {"student"} and sue.rooms == frozenset()
    ada = source.authenticate("ada", slapd.password_of("ada"))  # a groupOfNames member
    assert ada is not None and ada.roles == {"admin"} and ada.is_staff
    # A web session started with the password follows the user by name afterwards.
    assert source.identity_of("tina") == tina and source.identity_of("tom") is None
    assert [u.user for u in source.users()] == ["ada", "sam", "sue", "tina"]


def test_wrong_passwords_unknown_users_and_unmapped_groups_are_refused(
        directory: slapd.Slapd) -> None:
    source = LdapSource(ldap_settings(directory.url))
    assert source.authenticate("tina", "not-her-password") is None
    assert source.authenticate("tina", slapd.password_of("sam")) is None
    assert source.authenticate("nobody", "whatever") is None
    assert source.authenticate("tina", "") is None  # not an anonymous bind
    assert source.authenticate("nora", slapd.password_of("nora")) is None  # no mapped group
    # A name with DN and filter syntax is escaped, not interpreted.
    assert source.authenticate("tina,ou=people", slapd.password_of("tina")) is None
    assert source.authenticate("*", slapd.password_of("tina")) is None
    # Without a group base there are no groups, so no roles: every login is refused.
    assert LdapSource(ldap_settings(directory.url, group_base=None)).authenticate(
        "tina", slapd.password_of("tina")) is None


def test_start_tls_and_ldaps_with_the_directorys_ca(directory: slapd.Slapd) -> None:
    for settings in (ldap_settings(directory.url, start_tls=True, ca_file=directory.ca_file),
                     ldap_settings(directory.ldaps_url, ca_file=directory.ca_file)):
        identity = LdapSource(settings).authenticate("tom", slapd.password_of("tom"))
        assert identity is not None and identity.roles == {"teacher"}
    # A certificate the CA file does not vouch for: no bind at all, a clear error.
    with pytest.raises(DirectoryUnavailable, match="StartTLS"):
        LdapSource(ldap_settings(directory.url, start_tls=True)).authenticate(
            "tom", slapd.password_of("tom"))
    with pytest.raises(DirectoryUnavailable, match="ldaps://"):
        LdapSource(ldap_settings(directory.ldaps_url)).authenticate(
            "tom", slapd.password_of("tom"))


def test_a_directory_down_is_a_clear_error_and_the_users_file_lets_its_teachers_in(
        users_file: Path) -> None:
    down = f"ldap://127.0.0.1:{closed_port()}"
    with pytest.raises(DirectoryUnavailable, match=f"the directory {down} cannot be reached"):
        LdapSource(ldap_settings(down)).authenticate("tina", LOCAL_PASSWORD)
    # users_file_fallback off: the users file is not asked even when given.
    with pytest.raises(DirectoryUnavailable):
        LdapSource(ldap_settings(down), UsersFile(users_file)).authenticate(
            "tina", LOCAL_PASSWORD)
    source = LdapSource(ldap_settings(down, users_file_fallback=True), UsersFile(users_file))
    tina = source.authenticate("tina", LOCAL_PASSWORD)
    assert tina is not None and tina.roles == {"teacher"} and tina.rooms == {"B12"}
    assert source.authenticate("tina", "wrong") is None
    assert source.identity_of("tina") == tina
    with pytest.raises(DirectoryUnavailable):  # a student is not in the local file
        source.authenticate("sam", slapd.password_of("sam"))


def test_a_directory_that_never_answers_times_out() -> None:
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"ldap://127.0.0.1:{silent.getsockname()[1]}"
        source = LdapSource(ldap_settings(url, timeout_s=1))
        with pytest.raises(DirectoryUnavailable, match="failed to answer"):
            source.authenticate("tina", slapd.password_of("tina"))


def test_the_directory_coming_back_lets_users_in_again(tmp_path: Path) -> None:
    server = slapd.Slapd(tmp_path / "slapd").start()
    try:
        source = LdapSource(ldap_settings(server.url, cache_s=0))
        assert source.authenticate("sam", slapd.password_of("sam")) is not None
        server.stop()
        with pytest.raises(DirectoryUnavailable):
            source.authenticate("sam", slapd.password_of("sam"))
        server.restart()
        assert source.authenticate("sam", slapd.password_of("sam")) is not None
    finally:
        server.remove()


@pytest.fixture(scope="module")
def api(directory: slapd.Slapd, users_file: Path, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[tuple[httpx.Client, Database]]:
    data = tmp_path_factory.mktemp("api")
    url = f"sqlite:///{data / 'db.sqlite'}"
    upgrade_schema(url)
    settings = Settings(process={"data_dir": data}, conductor={"hostname": "c1"},
                        auth={"strategy": "ldap", "users_file": users_file},
                        ldap=ldap_settings(directory.url, cache_s=0,
                                           users_file_fallback=True).model_dump())
    db = Database(url)
    with served_api(settings, db) as served:
        yield served.client, db


def test_the_api_and_the_web_page_log_ldap_users_in(api: tuple[httpx.Client, Database]
                                                    ) -> None:
    client, _ = api
    tina = (("tina", slapd.password_of("tina")))
    assert client.get("/enclume/v1/rooms", auth=tina).status_code == 200
    assert client.get("/enclume/v1/rooms", auth=("tina", "wrong")).status_code == 401
    assert client.get("/v1/nodes", auth=("sam", slapd.password_of("sam"))).status_code == 403
    assert client.get("/v1/nodes", auth=("ada", slapd.password_of("ada"))).status_code == 200
    with httpx.Client(base_url=str(client.base_url), timeout=10) as browser:
        page = browser.get("/ui/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        answer = browser.post("/ui/login", data={"user": "tina", "password": tina[1],
                                                 "csrf": csrf.group(1), "next": "/ui/rooms"})
        assert answer.status_code == 303
        assert browser.get("/ui/rooms").status_code == 200


def test_the_api_says_503_when_the_directory_is_down_and_never_echoes_the_password(
        directory: slapd.Slapd, users_file: Path, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade_schema(url)
    down = f"ldap://127.0.0.1:{closed_port()}"
    secret = "s3cret-never-logged"
    settings = Settings(process={"data_dir": tmp_path}, conductor={"hostname": "c1"},
                        auth={"strategy": "ldap", "users_file": users_file},
                        ldap=ldap_settings(down, users_file_fallback=True).model_dump())
    with served_api(settings, Database(url)) as served:
        refused = served.client.get("/enclume/v1/rooms", auth=("sam", secret))
        assert refused.status_code == 503 and refused.headers["retry-after"] == "30"
        assert "directory (LDAP) cannot be reached" in refused.text
        assert secret not in refused.text
        # The local teacher still gets in while the directory is down.
        assert served.client.get("/enclume/v1/rooms", auth=("tina", LOCAL_PASSWORD)
                                 ).status_code == 200
        with httpx.Client(base_url=str(served.client.base_url), timeout=10) as browser:
            csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/ui/login").text)
            assert csrf is not None
            page = browser.post("/ui/login", data={"user": "sam", "password": secret,
                                                   "csrf": csrf.group(1)})
            assert page.status_code == 503
            assert "The user directory cannot be reached" in page.text
            assert secret not in page.text
    # Wrong passwords against the live directory are logged nowhere either.
    source = LdapSource(ldap_settings(directory.url))
    assert source.authenticate("sam", secret) is None
    assert caplog.records and secret not in caplog.text
    assert LOCAL_PASSWORD not in caplog.text


def test_logins_at_a_pc_against_the_directory_up_and_down(
        api: tuple[httpx.Client, Database], directory: slapd.Slapd) -> None:
    client, db = api
    node = pc_in_a_class(client, db, ("ada", slapd.password_of("ada")))

    def login(user: str, password: str) -> httpx.Response:
        return client.post("/enclume/v1/pc-logins", headers={"X-Agent-Token": "pc0-agent-token"},
                           json={"node": node, "user": user, "password": password})

    sam = ok(login("sam", slapd.password_of("sam")))
    assert sam["roles"] == ["student"] and [c["action"] for c in sam["choices"]] == ["fresh"]
    tina = ok(login("tina", slapd.password_of("tina")))  # B12 is hers by her groups
    assert [c["action"] for c in tina["choices"]] == ["fresh", "maintenance"]
    assert login("sam", "wrong").status_code == 401
    assert login("nora", slapd.password_of("nora")).status_code == 401  # no mapped group
    directory.stop()
    try:
        down = login("sue", slapd.password_of("sue"))
        assert down.status_code == 503 and down.headers["retry-after"] == "30"
        assert "The user directory cannot be reached" in down.text
        assert slapd.password_of("sue") not in down.text
        # tina is also in the local users file: she still logs in, with its password.
        local = ok(login("tina", LOCAL_PASSWORD))
        assert "maintenance" in [c["action"] for c in local["choices"]]
    finally:
        directory.restart()
    assert ok(login("sue", slapd.password_of("sue")))["user"] == "sue"
