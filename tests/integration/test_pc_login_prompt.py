"""The login prompt of the deploy ramdisk (agent/login_prompt.py) driven through a pty as a
person at a serial console would, with the real agent code in Debian's python3, against the
real API served over TLS with a test CA, and the users of a real slapd: wrong password, unknown
user, lockout, the directory down, fresh, resume, maintenance (teachers only), the language,
and an API whose certificate the ramdisk does not trust."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from services.common.classroom_models import ImageVersion, Room
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.models import Node
from services.common.state_models import StudentState
from services.conductor import locks
from tests.support import slapd
from tests.support.api_stack import TlsFiles, served_api
from tests.support.classroom_users import refused
from tests.support.login_console import LoginConsole
from tests.support.pc_login_room import AGENT_TOKEN_OF_PC0, pc_in_a_class
from tests.support.throwaway_ca import create_ca, issue_server_certificate

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not slapd.available(), reason="needs Debian's slapd")]

ATTEMPTS = 3


@dataclass
class Stack:
    client: httpx.Client
    db: Database
    url: str
    ca_file: Path
    node: str
    directory: slapd.Slapd
    sam_state: str

    def console(self, language: str = "en", ca_file: Path | None = None,
                url: str | None = None) -> LoginConsole:
        return LoginConsole(url or self.url, ca_file or self.ca_file, self.node,
                            AGENT_TOKEN_OF_PC0, language)

    def login_of_pc(self) -> dict[str, object]:
        with self.db.session() as session:
            node = session.scalar(select(Node).where(Node.uuid == self.node))
            assert node is not None
            return dict(node.driver_internal_info.get("pc_login") or {})


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    top = tmp_path_factory.mktemp("pc-login")
    directory = slapd.Slapd(top / "slapd").start()
    ca = create_ca(top / "api-ca", "Enclume test API CA")
    server = issue_server_certificate(ca, top / "api-tls")
    url = f"sqlite:///{top / 'db.sqlite'}"
    upgrade_schema(url)
    settings = Settings(process={"data_dir": top}, conductor={"hostname": "c1"},
                        auth={"strategy": "ldap"}, pc_login={"attempts": ATTEMPTS},
                        ldap=slapd.ldap_settings(directory.url, cache_s=0).model_dump())
    db = Database(url)
    try:
        with served_api(settings, db, TlsFiles(server.cert_file, server.key_file,
                                               ca.cert_file)) as served:
            node = pc_in_a_class(served.client, db, ("ada", slapd.password_of("ada")))
            now = datetime.now(UTC).replace(tzinfo=None)
            with db.session() as session:
                version = session.scalar(select(ImageVersion))
                room = session.scalar(select(Room))
                assert version is not None and room is not None
                state = StudentState(owner="sam", image_version_id=version.id, room_id=room.id,
                                     label="lab 3", store_id="store-lab3",
                                     size_bytes=3 * 1024 * 1024, created_at=now,
                                     last_used_at=now - timedelta(days=1))
                session.add(state)
                session.flush()
                sam_state = state.uuid
            yield Stack(served.client, db, str(served.client.base_url).rstrip("/"),
                        ca.cert_file, node, directory, sam_state)
    finally:
        directory.remove()


def log_in(console: LoginConsole, user: str, password: str) -> str:
    """Type a user name and password at the prompt; what the console showed meanwhile."""
    shown = console.expect("User name: ")
    console.type(user)
    shown += console.expect("Password (not shown): ")
    console.type(password)
    return shown


def test_wrong_passwords_and_unknown_users_then_a_fresh_start(stack: Stack) -> None:
    console = stack.console()
    try:
        log_in(console, "sam", "not-his-password")
        assert "Wrong user name or password." in console.expect("User name: ")
        console.type("nobody")
        console.expect("Password (not shown): ")
        console.type("whatever")
        shown = console.expect("Wrong user name or password.")
        assert "whatever" not in shown  # the password is not echoed
        log_in(console, "sam", slapd.password_of("sam"))
        screen = console.expect("Your choice [1-2, 0 to log out]: ")
        assert slapd.password_of("sam") not in screen
        assert "Hello sam. Class:" in screen and "1) Start fresh from debian v1" in screen
        assert '2) Resume "lab 3" (saved ' in screen and "3.0 MiB" in screen
        assert "Maintenance" not in screen  # a student is not offered it
        console.type("7")
        console.expect("Type a number from the list.")
        console.expect("Your choice")
        console.type("1")
        chosen = console.result()
    finally:
        console.close()
    assert chosen["action"] == "fresh" and chosen["user"] == "sam" and chosen["state"] is None
    login = stack.login_of_pc()
    assert login["user"] == "sam" and login["action"] == "fresh" and login["state"] is None
    assert login["image_version"] == chosen["image_version"] and login["at"]


def test_a_student_resumes_their_state_in_french(stack: Stack) -> None:
    console = stack.console("fr")
    try:
        console.expect("Nom d'utilisateur : ")
        console.type("sam")
        console.expect("Mot de passe (masqué) : ")
        console.type(slapd.password_of("sam"))
        screen = console.expect("Votre choix [1-2, 0 pour se déconnecter] : ")
        assert "Repartir de zéro avec debian v1" in screen
        assert "Reprendre « lab 3 »" in screen
        console.type("2")
        chosen = console.result()
    finally:
        console.close()
    assert chosen == {"action": "resume", "user": "sam", "state": stack.sam_state,
                      "image_version": chosen["image_version"]}
    login = stack.login_of_pc()
    assert login["action"] == "resume" and login["state"] == stack.sam_state


def test_a_teacher_chooses_maintenance_a_student_may_not(stack: Stack) -> None:
    console = stack.console()
    try:
        log_in(console, "tina", slapd.password_of("tina"))
        screen = console.expect("Your choice [1-2, 0 to log out]: ")
        assert "2) Maintenance: the disk starts as it is" in screen
        console.type("0")  # log out: back to the user name
        log_in(console, "tina", slapd.password_of("tina"))
        console.expect("Your choice")
        console.type("2")
        assert console.result()["action"] == "maintenance"
    finally:
        console.close()
    assert stack.login_of_pc()["user"] == "tina"
    # sam's own ticket does not buy maintenance through the API either.
    headers = {"X-Agent-Token": AGENT_TOKEN_OF_PC0}
    answer = stack.client.post("/enclume/v1/pc-logins", headers=headers, json={
        "node": stack.node, "user": "sam", "password": slapd.password_of("sam")}).json()
    refused(stack.client.post("/enclume/v1/pc-logins/choice", headers=headers, json={
        "node": stack.node, "ticket": answer["ticket"], "action": "maintenance"}), 403,
        "sam may not choose maintenance here")
    assert stack.login_of_pc()["user"] == "tina"


def test_too_many_failures_lock_the_user_out_with_the_time_to_wait(stack: Stack) -> None:
    console = stack.console()
    try:
        for _ in range(ATTEMPTS):
            log_in(console, "sue", "wrong")
            console.expect("Wrong user name or password.")
        log_in(console, "sue", slapd.password_of("sue"))  # the right one, too late
        console.expect("Too many failed attempts: wait 5 min and try again.")
    finally:
        console.close()


def test_the_directory_down_is_said_clearly(stack: Stack) -> None:
    console = stack.console()
    try:
        stack.directory.stop()
        try:
            log_in(console, "tom", slapd.password_of("tom"))
            console.expect("The user directory cannot be reached: try again in a few minutes.")
        finally:
            stack.directory.restart()
        log_in(console, "tom", slapd.password_of("tom"))
        assert "Maintenance" in console.expect("Your choice")
    finally:
        console.close()


def test_no_credential_leaves_without_a_trusted_tls_api(stack: Stack, tmp_path: Path) -> None:
    other = create_ca(tmp_path / "other-ca", "Another CA")
    for console in (stack.console(ca_file=other.cert_file),
                    stack.console(url=stack.url.replace("https://", "http://"))):
        try:
            log_in(console, "sam", slapd.password_of("sam"))
            console.expect("The connection to the server is not secure: ask your teacher.")
        finally:
            console.close()


def test_a_choice_waits_for_the_nodes_lock_to_record_the_login(stack: Stack) -> None:
    """A heartbeat's work holding the node's lock delays the record, never loses it."""
    headers = {"X-Agent-Token": AGENT_TOKEN_OF_PC0}
    answer = stack.client.post("/enclume/v1/pc-logins", headers=headers, json={
        "node": stack.node, "user": "tom", "password": slapd.password_of("tom")}).json()
    with stack.db.session() as session:
        node_id = session.scalar(select(Node.id).where(Node.uuid == stack.node))
    assert node_id is not None
    locks.acquire(stack.db, node_id, stack.node, "another-conductor", 60)
    releasing = threading.Timer(0.6, locks.release, (stack.db, node_id, "another-conductor"))
    releasing.start()
    started = time.monotonic()
    try:
        chosen = stack.client.post("/enclume/v1/pc-logins/choice", headers=headers, json={
            "node": stack.node, "ticket": answer["ticket"], "action": "fresh"})
    finally:
        releasing.join()
    assert chosen.status_code == 200, chosen.text
    assert time.monotonic() - started >= 0.5
    assert stack.login_of_pc()["user"] == "tom"
