"""A room's own "logins at the PCs" flag and language (#20): set through the rooms API, they
override ENCLUME_PC_LOGIN_AT_BOOT and ENCLUME_PC_LOGIN_LANGUAGE for that room's PCs; null
leaves the settings in charge (services/classroom/login_policy.py, read by the deploy's login
step)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from services.classroom.login_policy import LoginPolicy, login_policy
from services.cli.enclume import main as cli_main
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.models import Node
from tests.support.api_stack import ServedApi, served_api

E = "/enclume/v1"
Stack = tuple[ServedApi, Database]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory: Path = tmp_path_factory.mktemp("roomlogins")
    url = f"sqlite:///{directory / 'db.sqlite'}"
    upgrade_schema(url)
    db = Database(url)
    settings = Settings(process={"data_dir": directory}, conductor={"hostname": "c1"},
                        auth={"strategy": "noauth"})
    with served_api(settings, db) as served:
        api = served.client
        for name in ("l-pc1", "l-pc2"):
            ok(api.post("/v1/nodes", json={"driver": "fake-hardware", "name": name}), 201)
        ok(api.post(f"{E}/rooms", json={"name": "L1", "time_zone": "UTC", "pcs": ["l-pc1"]}),
           201)
        yield served, db


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def policy(db: Database, node: str, **pc_login: Any) -> LoginPolicy | None:
    settings = Settings(pc_login=pc_login)
    with db.session() as session:
        node_id = session.scalar(select(Node.id).where(Node.name == node))
        assert node_id is not None
        return login_policy(session, node_id, settings)


def test_a_room_without_its_own_switch_follows_the_settings(stack: Stack) -> None:
    served, db = stack
    room = ok(served.client.get(f"{E}/rooms/L1"))
    assert (room["pc_logins"], room["login_language"]) == (None, None)
    assert policy(db, "l-pc1") == LoginPolicy("L1", False, "en")
    assert policy(db, "l-pc1", at_boot=True, language="fr") == LoginPolicy("L1", True, "fr")
    assert policy(db, "l-pc2", at_boot=True) is None  # in no room: never a prompt


def test_a_rooms_switch_and_language_override_the_settings(stack: Stack) -> None:
    served, db = stack
    api = served.client
    room = ok(api.patch(f"{E}/rooms/L1", json={"pc_logins": True, "login_language": "fr"}))
    assert (room["pc_logins"], room["login_language"]) == (True, "fr")
    assert ok(api.get(f"{E}/rooms/L1"))["pc_logins"] is True
    assert policy(db, "l-pc1", at_boot=False, language="en") == LoginPolicy("L1", True, "fr")
    ok(api.patch(f"{E}/rooms/L1", json={"pc_logins": False}))
    assert policy(db, "l-pc1", at_boot=True, language="en") == LoginPolicy("L1", False, "fr")
    ok(api.patch(f"{E}/rooms/L1", json={"pc_logins": None, "login_language": None}))
    assert policy(db, "l-pc1", at_boot=True, language="en") == LoginPolicy("L1", True, "en")


@pytest.mark.parametrize("body", [{"pc_logins": "yes"}, {"pc_logins": 1},
                                  {"login_language": "de"}, {"login_language": 7}],
                         ids=["flag-text", "flag-number", "unknown-language", "language-number"])
def test_bad_values_are_refused_and_change_nothing(stack: Stack, body: dict[str, Any]) -> None:
    served, _ = stack
    before = ok(served.client.get(f"{E}/rooms/L1"))
    assert served.client.patch(f"{E}/rooms/L1", json=body).status_code == 400
    after = ok(served.client.get(f"{E}/rooms/L1"))
    assert (after["pc_logins"], after["login_language"]) == (
        before["pc_logins"], before["login_language"])


def test_a_room_is_created_with_its_switch(stack: Stack) -> None:
    served, db = stack
    room = ok(served.client.post(f"{E}/rooms", json={
        "name": "L2", "time_zone": "UTC", "pcs": ["l-pc2"], "pc_logins": True}), 201)
    assert (room["pc_logins"], room["login_language"]) == (True, None)
    assert policy(db, "l-pc2", language="fr") == LoginPolicy("L2", True, "fr")


def test_the_cli_sets_and_gives_back_a_rooms_switch(
        stack: Stack, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    served, db = stack
    monkeypatch.setenv("ENCLUME_URL", str(served.client.base_url).rstrip("/"))
    monkeypatch.setenv("ENCLUME_CLI_CONFIG", "")
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent")

    def enclume(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["enclume", *args])
        try:
            cli_main.main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out + err

    code, out = enclume("room", "set", "L1", "--pc-logins", "on", "--login-language", "fr",
                        "-f", "json")
    assert code == 0, out
    assert (json.loads(out)["pc_logins"], json.loads(out)["login_language"]) == (True, "fr")
    assert policy(db, "l-pc1") == LoginPolicy("L1", True, "fr")
    code, out = enclume("room", "set", "L1", "--pc-logins", "default", "--login-language",
                        "default", "-f", "json")
    assert code == 0, out
    assert (json.loads(out)["pc_logins"], json.loads(out)["login_language"]) == (None, None)
    code, out = enclume("room", "set", "L1", "--pc-logins", "maybe")
    assert code == 2 and "on, off or default" in out, out
    code, out = enclume("room", "set", "L1", "--login-language", "de")
    assert code != 0 and "login_language" in out, out
