"""enclume-aio with ENCLUME_AUTH_STRATEGY=users_file: roles reach the real process, and a
broken users file stops it with a message naming the problem."""

from __future__ import annotations

from pathlib import Path

import bcrypt
import httpx
import pytest
import yaml

from tests.support.aio import running_aio

pytestmark = pytest.mark.integration

PASSWORD = "a long password"


def write_users(path: Path, users: list[dict[str, object]]) -> Path:
    path.write_text(yaml.safe_dump({"users": users}))
    return path


def test_users_file_roles_in_enclume_aio(tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    users = write_users(tmp_path / "users.yaml", [
        {"name": "admin", "password_hash": hashed, "roles": ["admin"]},
        {"name": "alice", "password_hash": hashed, "roles": ["teacher"], "rooms": ["B12"]}])
    env = {"ENCLUME_AUTH_STRATEGY": "users_file", "ENCLUME_USERS_FILE": str(users)}
    with running_aio(tmp_path / "data", env=env) as server:
        admin = httpx.Client(base_url=server.url, auth=("admin", PASSWORD), timeout=10)
        alice = httpx.Client(base_url=server.url, auth=("alice", PASSWORD), timeout=10)
        with admin, alice:
            assert admin.get("/v1/nodes").status_code == 200
            assert admin.post("/enclume/v1/rooms", json={"name": "B12",
                                                         "time_zone": "Europe/Paris"}
                              ).status_code == 201
            assert alice.get("/v1/nodes").status_code == 403
            rooms = alice.get("/enclume/v1/rooms").json()["rooms"]
            assert [r["name"] for r in rooms] == ["B12"]
            assert httpx.get(f"{server.url}/enclume/v1/rooms").status_code == 401


def test_a_broken_users_file_stops_enclume_aio(tmp_path: Path) -> None:
    users = write_users(tmp_path / "users.yaml", [
        {"name": "alice", "password_hash": "plain text", "roles": ["teacher"]}])
    env = {"ENCLUME_AUTH_STRATEGY": "users_file", "ENCLUME_USERS_FILE": str(users)}
    with (pytest.raises(RuntimeError, match="password_hash") as refused,
          running_aio(tmp_path / "data", env=env, timeout=20)):
        pass
    assert "exited with" in str(refused.value)
