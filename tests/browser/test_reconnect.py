"""The room page's live stream outlives a restart of the API: enclume-aio is stopped and
started again on the same port and data directory, and the page, never reloaded, shows a
change made after the restart (its session cookie still valid: the signing key is in the data
directory)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import bcrypt
import httpx
import pytest
import yaml
from selenium.webdriver import Chrome

from lab.local_service import start_service, stop_service
from tests.browser.test_room_page import HEADERS, PASSWORDS, E, log_in, ok
from tests.support.aio import free_port
from tests.support.browser import cards, open_page, until

ENV = {"ENCLUME_AUTH_STRATEGY": "users_file", "ENCLUME_API_HOST": "127.0.0.1"}


@pytest.fixture
def aio_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    users = [{"name": name, "roles": roles, "password_hash": bcrypt.hashpw(
        PASSWORDS[name].encode(), bcrypt.gensalt(rounds=4)).decode()}
        for name, roles in (("admin", ["admin"]), ("alice", ["teacher"]))]
    (tmp_path / "users.yaml").write_text(yaml.safe_dump({"users": users}))
    yield {**ENV, "ENCLUME_USERS_FILE": str(tmp_path / "users.yaml"),
           "ENCLUME_DATA_DIR": str(tmp_path / "data"), "ENCLUME_API_PORT": str(free_port())}


def test_the_room_page_catches_up_after_the_api_restarts(
        tmp_path: Path, aio_env: dict[str, str], chromium: Chrome) -> None:
    port = int(aio_env["ENCLUME_API_PORT"])
    server = start_service("enclume-aio", "aio", port, tmp_path / "data", aio_env)
    try:
        with httpx.Client(base_url=server.url, auth=("admin", PASSWORDS["admin"]),
                          headers=HEADERS, timeout=30) as admin:
            node = ok(admin.post("/v1/nodes", json={"driver": "fake-hardware",
                                                    "name": "b12-pc01"}), 201)
            ok(admin.post(f"{E}/rooms", json={"name": "B12", "time_zone": "Europe/Paris",
                                              "pcs": [node["uuid"]], "teachers": ["alice"]}),
               201)
            log_in(chromium, server.url, "alice")
            open_page(chromium, f"{server.url}/ui/rooms/B12")
            until(lambda: cards(chromium).get("b12-pc01") == "not available (enroll)", 30,
                  "the PC enrolled")
            chromium.execute_script("window.sameDocument = true;")

            stop_service(server)
            until(lambda: chromium.find_element("id", "stream-state").is_displayed(), 15,
                  "the page saying it is reconnecting")
            server = start_service("enclume-aio", "aio", port, tmp_path / "data", aio_env)
            ok(admin.put(f"/v1/nodes/{node['uuid']}/states/provision",
                         json={"target": "manage"}), 202)
            until(lambda: cards(chromium).get("b12-pc01") == "not available (manageable)", 60,
                  "the change made after the restart on the page")
            assert not chromium.find_element("id", "stream-state").is_displayed()
            assert chromium.execute_script("return window.sameDocument === true;")
    finally:
        stop_service(server)
