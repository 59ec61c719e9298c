"""http_basic users and the users file's roles answer with Ironic's policy (services/api/policy.py):
admin and operator are system admins (operators enroll, run and delete machines), service is
Ironic's service role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from tests.support.aio import write_htpasswd
from tests.support.api_stack import served_api
from tests.support.classroom_users import write_users_file

PASSWORD = "pw"
USERS = {"root": (["admin"], []), "ops": (["operator"], []), "svc": (["service"], []),
         "tina": (["teacher"], [])}


def _served(directory: Path, auth: dict[str, object]) -> Iterator[httpx.Client]:
    url = f"sqlite:///{directory / 'db.sqlite'}"
    upgrade_schema(url)
    settings = Settings(process={"data_dir": directory}, conductor={"hostname": "c1"},
                        auth=auth)
    with served_api(settings, Database(url)) as served:
        yield served.client


@pytest.fixture(scope="module")
def users_file_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    directory = tmp_path_factory.mktemp("users-file")
    users = write_users_file(directory, USERS, PASSWORD)
    yield from _served(directory, {"strategy": "users_file", "users_file": users})


def _node(api: httpx.Client, user: str) -> httpx.Response:
    return api.post("/v1/nodes", auth=(user, PASSWORD), json={"driver": "fake-hardware"})


def test_each_classroom_role_gets_its_ironic_persona(users_file_api: httpx.Client) -> None:
    api = users_file_api
    enrolled = _node(api, "ops")  # an operator enrolls machines: node:create, system admin
    assert enrolled.status_code == 201
    created = _node(api, "svc")  # node:create: or the service role
    assert created.status_code == 201
    node = f"/v1/nodes/{created.json()['uuid']}"
    owner = [{"op": "add", "path": "/owner", "value": "p1"}]
    for user in ("ops", "svc"):  # update:owner is for system members (and the service role)
        assert api.get(node, auth=(user, PASSWORD)).status_code == 200
        assert api.patch(node, auth=(user, PASSWORD), json=owner).status_code == 200
    assert api.delete(node, auth=("svc", PASSWORD)).status_code == 403  # system admins'
    assert api.get("/v1/nodes", auth=("tina", PASSWORD)).status_code == 403
    assert api.delete(node, auth=("root", PASSWORD)).status_code == 204
    assert api.delete(f"/v1/nodes/{enrolled.json()['uuid']}",
                      auth=("ops", PASSWORD)).status_code == 204


def test_an_http_basic_user_is_a_system_admin(tmp_path: Path) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"ironic": PASSWORD})
    for api in _served(tmp_path, {"strategy": "http_basic", "htpasswd_file": htpasswd}):
        created = api.post("/v1/nodes", auth=("ironic", PASSWORD),
                           json={"driver": "fake-hardware", "owner": "p1"})
        assert created.status_code == 201
        assert api.delete(f"/v1/nodes/{created.json()['uuid']}",
                          auth=("ironic", PASSWORD)).status_code == 204
