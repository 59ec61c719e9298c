"""A teacher logs a room's PCs out of the class network from the room page, in a real browser
(Debian's chromium) against a real enclume-aio whose fake-hardware PCs have the ``vlan``
network interface on a real vde_switch.

Room B14: b14-pc1 and b14-pc2 run their OS on the class VLAN (deployed), sam logged in at
b14-pc1; b14-pc3 is idle. Alice ticks every PC and presses "Log out of the class network": the
confirmation names the two PCs on the class VLAN only; once confirmed, the conductor's job
advancer moves their switch ports to the idle VLAN and b14-pc1's card says that sam is logged
out with his work not yet saved. Logging the room out again is refused on the page with the
reason: none of its PCs is on the class VLAN any more.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import httpx
import pytest
import yaml
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from sqlalchemy import select

from services.common.db import Database
from services.common.models import Node
from tests.browser.test_room_page import HEADERS, PASSWORDS, log_in, main_text, ok
from tests.lab.harness import VdeSwitch
from tests.support.aio import Server, running_aio
from tests.support.browser import open_page, until
from tests.support.polling import eventually

E = "/enclume/v1"
IDLE, CLASS = 100, 101
PCS = ("b14-pc1", "b14-pc2", "b14-pc3")
TIMEOUT_S = 60.0
LOGGED_OUT = "sam is logged out; their work is saved at the next restore or power-off."


@dataclass
class Room:
    server: Server
    switch: VdeSwitch
    ports: dict[str, int]
    db: Database

    def vlan(self, pc: str) -> int:
        return self.switch.port_status(self.ports[pc])[0]


def settle(admin: httpx.Client, pcs: tuple[str, ...], verb: str, state: str) -> None:
    for pc in pcs:
        ok(admin.put(f"/v1/nodes/{pc}/states/provision", json={"target": verb}), 202)

    def reached() -> bool:
        nodes = [ok(admin.get(f"/v1/nodes/{pc}")) for pc in pcs]
        failed = [node["last_error"] for node in nodes if node["last_error"]]
        assert not failed, failed
        return all(n["provision_state"] == state and n["reservation"] is None for n in nodes)
    eventually(reached, TIMEOUT_S, f"{', '.join(pcs)} {state}")


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Room]:
    directory: Path = tmp_path_factory.mktemp("log-out")
    switch = VdeSwitch(directory / "switch")
    try:
        (directory / "switches.yaml").write_text(
            f"switches:\n  lab:\n    driver: vde\n    socket: {switch.management_socket}\n")
        users = [{"name": name, "roles": [role], "password_hash": bcrypt.hashpw(
            PASSWORDS[name].encode(), bcrypt.gensalt(rounds=4)).decode()}
            for name, role in (("admin", "admin"), ("alice", "teacher"))]
        (directory / "users.yaml").write_text(yaml.safe_dump({"users": users}))
        env = {"ENCLUME_AUTH_STRATEGY": "users_file",
               "ENCLUME_USERS_FILE": str(directory / "users.yaml"),
               "ENCLUME_SWITCHES_FILE": str(directory / "switches.yaml"),
               "ENCLUME_SWITCH_BATCH_WINDOW_S": "0.05", "ENCLUME_CLASSROOM_INTERVAL_S": "0.5"}
        with running_aio(directory / "data", env=env) as server, httpx.Client(
                base_url=server.url, auth=("admin", PASSWORDS["admin"]), timeout=30,
                headers=HEADERS) as admin:
            ports = {pc: switch.create_port() for pc in PCS}
            for index, pc in enumerate(PCS):
                uuid = ok(admin.post("/v1/nodes", json={
                    "driver": "fake-hardware", "name": pc, "network_interface": "vlan"}),
                    201)["uuid"]
                ok(admin.post("/v1/ports", json={
                    "node_uuid": uuid, "address": f"52:54:00:31:00:{index:02x}",
                    "local_link_connection": {"switch_info": "lab",
                                              "port_id": str(ports[pc])}}), 201)
            ok(admin.post(f"{E}/images", json={"name": "debian-12", "versions": [
                {"version": "2026-09", "source": "http://images.example/debian-12.raw",
                 "checksum": "0f" * 32}]}), 201)
            ok(admin.post(f"{E}/rooms", json={
                "name": "B14", "time_zone": "Europe/Paris", "idle_vlan": IDLE,
                "class_vlan": CLASS, "allowed_images": ["debian-12"], "pcs": list(PCS),
                "teachers": ["alice"]}), 201)
            settle(admin, PCS, "manage", "manageable")
            settle(admin, PCS, "provide", "available")
            settle(admin, PCS[:2], "active", "active")
            db = Database(f"sqlite:///{directory / 'data' / 'enclume.sqlite'}")
            yield Room(server, switch, ports, db)
    finally:
        switch.stop()


def sam_logs_in(room: Room, admin: httpx.Client) -> None:
    """What the API records when sam's choice at b14-pc1's prompt is accepted."""
    version = ok(admin.get(f"{E}/images/debian-12"))["versions"][0]["uuid"]
    with room.db.session() as session:
        node = session.scalar(select(Node).where(Node.name == "b14-pc1"))
        assert node is not None
        node.driver_internal_info = {**node.driver_internal_info, "pc_login": {
            "user": "sam", "action": "fresh", "state": None, "image_version": version,
            "at": "2026-12-05T10:05:00+00:00"}}


def unsaved_note(browser: Chrome, pc: str) -> str:
    return str(browser.execute_script(
        "const note = document.querySelector(`.status[data-pc='${arguments[0]}'] .unsaved`);"
        "return note ? note.textContent.trim() : '';", pc))


def test_a_teacher_logs_her_rooms_pcs_out_of_the_class_network(
        room: Room, chromium: Chrome) -> None:
    with httpx.Client(base_url=room.server.url, auth=("admin", PASSWORDS["admin"]),
                      timeout=30, headers=HEADERS) as admin:
        sam_logs_in(room, admin)
    assert {pc: room.vlan(pc) for pc in PCS} == {
        "b14-pc1": CLASS, "b14-pc2": CLASS, "b14-pc3": IDLE}
    browser = chromium
    log_in(browser, room.server.url, "alice")
    open_page(browser, f"{room.server.url}/ui/rooms/B14")
    assert unsaved_note(browser, "b14-pc1") == ""  # logged in: nothing to say yet

    browser.find_element(By.ID, "select-all").click()
    browser.find_element(By.CSS_SELECTOR, "button[value=log-out]").click()
    heading = until(lambda: "/actions" in browser.current_url and browser.find_element(
        By.TAG_NAME, "h1").text, 10, "the confirmation page")
    assert heading == "Log 2 PCs of room B14 out of the class network?"
    text = main_text(browser)
    assert "b14-pc1, b14-pc2" in text and "b14-pc3" not in text
    assert "Their work stays on the PCs and is saved at their next restore or power-off." \
        in text
    browser.find_element(By.XPATH, "//button[text()='Confirm']").click()
    until(lambda: "notice=started" in browser.current_url, 30, "the room page again")
    assert "Started: log-out of 2 PCs." in main_text(browser)

    eventually(lambda: room.vlan("b14-pc1") == room.vlan("b14-pc2") == IDLE, TIMEOUT_S,
               "the PCs' ports on the idle VLAN")
    until(lambda: unsaved_note(browser, "b14-pc1") == LOGGED_OUT, TIMEOUT_S,
          "b14-pc1's card saying sam is logged out")
    assert unsaved_note(browser, "b14-pc2") == ""
    assert room.vlan("b14-pc3") == IDLE

    # None is on the class network now (b14-pc3 never was): refused, with the reason.
    open_page(browser, f"{room.server.url}/ui/rooms/B14")
    browser.find_element(By.ID, "select-all").click()
    browser.find_element(By.CSS_SELECTOR, "button[value=log-out]").click()
    alert = until(lambda: browser.find_element(By.CSS_SELECTOR, "p[role=alert]").text, 10,
                  "the refusal")
    assert alert == ("None of the chosen PCs of room B14 is on its class VLAN: there is "
                     "nothing to log out.")
    with httpx.Client(base_url=room.server.url, auth=("admin", PASSWORDS["admin"]),
                      timeout=30, headers=HEADERS) as admin:
        jobs = ok(admin.get(f"{E}/jobs", params={"room": "B14"}))["jobs"]
    assert [(job["kind"], job["requested_by"], len(job["pcs"])) for job in jobs] == [
        ("log-out", "alice", 2)]
