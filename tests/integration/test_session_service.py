"""The session service of deployed OSes and Wake-on-LAN across subnets, for PCs without a BMC.

The API and an in-process conductor serve on loopback (users-file authentication: the session
service's path takes the deploy's token alone). The session service is the shipped
script (and, where busybox is installed, its busybox port, which the lab's test OS runs) run as
a real process with the settings a deploy's config drive carries (built by the conductor's code,
read back from the ISO with isoinfo); its ``systemctl poweroff`` / ``reboot`` and ``efibootmgr``
are replaced by recorder scripts (tests/support/session_service.py), so that nothing here powers
the machine off. The magic packets are received by a listener in a network namespace, on a
subnet the root namespace reaches only through a route (a room behind a router), or sent by the
boot service out of its interface (the veth whose other end is the listener's).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.boot.http import create_boot_app
from services.common import session_service
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.models import Node
from services.common.wake_on_lan import SECRET_HEADER
from services.conductor.room_jobs import JobAdvancer
from services.conductor.task import Task
from services.drivers.deploy import config_drive
from tests.support.api_stack import ServedApi, served_api
from tests.support.asgi import bound_socket, serving, url_of
from tests.support.classroom_users import write_users_file
from tests.support.netns import routed_network
from tests.support.polling import eventually
from tests.support.session_service import (
    BUSYBOX,
    PYTHON,
    recorded,
    running_session_service,
    session_file_of,
)
from tests.support.static_http import serving_directory
from tests.support.wol_listener import WolListener, running_wol_listener

pytestmark = [pytest.mark.integration]

E = "/enclume/v1"
PASSWORD = "correct horse"
HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}
UNREACHED = "no BMC and the session service did not answer"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[ServedApi, Database, Settings]]:
    directory: Path = tmp_path_factory.mktemp("sessionsvc")
    users_file = write_users_file(directory, {"root": (["admin"], [])}, PASSWORD)
    url = f"sqlite:///{directory / 'db.sqlite'}"
    upgrade_schema(url)
    db = Database(url)
    settings = Settings(
        process={"data_dir": directory},
        conductor={"hostname": "c1"},
        auth={"strategy": "users_file", "users_file": users_file},
        drivers={"enabled_hardware_types": ["wol", "fake-hardware"]},
        wol={"default_host": "127.0.0.1"},
        session_service={"enabled": True, "wait_s": 1.0, "timeout_s": 4.0,
                         "command_timeout_s": 6.0},
    )
    with served_api(settings, db) as served:
        settings.session_service.api_url = str(served.client.base_url)
        yield served, db, settings


@pytest.fixture(params=[PYTHON, BUSYBOX])
def program(request: pytest.FixtureRequest) -> str:
    """The session service as shipped (Python) or its busybox port (the lab's test OS)."""
    if request.param == BUSYBOX and shutil.which("busybox") is None:
        pytest.skip("busybox is not installed (Debian: busybox-static)")
    return str(request.param)


def tag(program: str) -> str:
    """Names of one program's PCs and rooms (both programs' tests share the API)."""
    return "" if program == PYTHON else "-bb"


def mac_byte(program: str) -> str:
    return "51" if program == PYTHON else "52"


@pytest.fixture
def admin(stack: tuple[ServedApi, Database, Settings]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=str(stack[0].client.base_url), auth=("root", PASSWORD),
                      headers=HEADERS, timeout=30) as client:
        yield client


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def enroll(admin: httpx.Client, name: str, mac: str, **driver_info: Any) -> dict[str, Any]:
    node = ok(admin.post("/v1/nodes", json={"driver": "wol", "name": name,
                                            "driver_info": driver_info}), 201)
    ok(admin.post("/v1/ports", json={"node_uuid": node["uuid"], "address": mac}), 201)
    return node  # type: ignore[no-any-return]


def deploy_settings(stack: tuple[ServedApi, Database, Settings], uuid: str) -> dict[str, Any]:
    """What the deploy's config drive gives the session service: built by the direct deploy's
    code for a deploy without a config drive of its own, read back from the ISO."""
    _served, db, settings = stack
    with db.session() as session:
        node = session.scalar(select(Node).where(Node.uuid == uuid))
        assert node is not None
        params = config_drive.with_session_token(
            Task(session, node, None, "c1"), settings,  # type: ignore[arg-type]
            {"configdrive": None})
    return session_file_of(params["configdrive"])


def row_of(db: Database, uuid: str) -> Any:
    with db.session() as session:
        node_id = session.scalar(select(Node.id).where(Node.uuid == uuid))
        return session_service.find(session, node_id)  # type: ignore[arg-type]


def power(api: httpx.Client, uuid: str, target: str) -> dict[str, Any]:
    ok(api.put(f"/v1/nodes/{uuid}/states/power", json={"target": target}), 202)
    return eventually(lambda: (n := ok(api.get(f"/v1/nodes/{uuid}")))[
        "target_power_state"] is None and n, 30, f"power {target} finished")


def heartbeat(base_url: str, node: str, token: str | None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.post(f"{base_url}{E}/session-service/{node}", headers=headers,
                      json={"booted_at": datetime.now(UTC).isoformat()}, timeout=10)


def boot_time() -> datetime:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return datetime.fromtimestamp(int(line.split()[1]), UTC)
    raise AssertionError("no btime in /proc/stat")


def test_the_service_reports_up_and_obeys_a_power_off(
        stack: tuple[ServedApi, Database, Settings], admin: httpx.Client,
        tmp_path: Path, program: str) -> None:
    _served, db, _settings = stack
    node = enroll(admin, f"s-pc1{tag(program)}", f"52:54:00:00:{mac_byte(program)}:01")
    config = deploy_settings(stack, node["uuid"])
    assert config["node"] == node["uuid"] and config["api_url"] == str(admin.base_url)
    assert row_of(db, node["uuid"]).token_hash == session_service.token_hash(config["token"])
    log = tmp_path / "calls.log"
    with running_session_service(config, tmp_path / "svc", log, program=program) as process:
        up = eventually(lambda: (r := row_of(db, node["uuid"])).last_seen_at and r, 15,
                        "a heartbeat")
        assert up.booted_at.replace(tzinfo=UTC) == boot_time()
        assert power(admin, node["uuid"], "power off")["power_state"] == "power off"
        assert process.wait(timeout=15) == 0  # the OS went down: no more heartbeats
    assert recorded(log) == [["poweroff"]]
    # Woken again: nothing is known until its OS reports (a magic packet is not acknowledged).
    assert power(admin, node["uuid"], "power on")["power_state"] is None
    history = admin.get(f"/v1/nodes/{node['uuid']}/history").text
    assert "fetched the power-off command" in history
    for text in (history, admin.get(f"/v1/nodes/{node['uuid']}").text):
        assert config["token"] not in text


def test_a_reboot_goes_to_the_network_next(
        stack: tuple[ServedApi, Database, Settings], admin: httpx.Client,
        tmp_path: Path, program: str) -> None:
    _served, db, _settings = stack
    node = enroll(admin, f"s-pc2{tag(program)}", f"52:54:00:00:{mac_byte(program)}:02")
    log = tmp_path / "calls.log"
    with running_session_service(deploy_settings(stack, node["uuid"]), tmp_path / "svc",
                                 log, program=program) as process:
        eventually(lambda: row_of(db, node["uuid"]).last_seen_at, 15, "a heartbeat")
        power(admin, node["uuid"], "rebooting")
        assert process.wait(timeout=15) == 0
    assert recorded(log) == [["efibootmgr", "--bootnext", "0003"], ["reboot"]]


def test_a_wrong_or_expired_token_is_refused(
        stack: tuple[ServedApi, Database, Settings], admin: httpx.Client,
        tmp_path: Path, program: str) -> None:
    _served, db, _settings = stack
    base = str(admin.base_url)
    node = enroll(admin, f"s-pc3{tag(program)}", f"52:54:00:00:{mac_byte(program)}:03")
    first = deploy_settings(stack, node["uuid"])
    answer = ok(heartbeat(base, node["uuid"], first["token"]))
    assert answer["command"] is None
    name = f"s-pc3{tag(program)}"
    assert ok(heartbeat(base, name, first["token"]))["command"] is None  # by name too

    second = deploy_settings(stack, node["uuid"])  # the next deploy: the first token expires
    for token in (first["token"], "not-the-token", None):
        refused = heartbeat(base, node["uuid"], token)
        assert refused.status_code == 401, refused.text
        assert "wrong or expired" in refused.json()["error_message"]
    assert heartbeat(base, "no-such-pc", second["token"]).status_code == 401
    assert ok(heartbeat(base, node["uuid"], second["token"]))["command"] is None

    # The script with an expired token keeps trying, and is never taken as up.
    seen = row_of(db, node["uuid"]).last_seen_at
    log = tmp_path / "calls.log"
    with running_session_service(first, tmp_path / "svc", log, program=program) as process:
        stderr = tmp_path / "svc" / "stderr.log"
        eventually(lambda: "refused this deploy's token" in stderr.read_text(), 15,
                   "the refusal logged")
        assert process.poll() is None
    assert row_of(db, node["uuid"]).last_seen_at == seen and recorded(log) == []


def drive(stack: tuple[ServedApi, Database, Settings], admin: httpx.Client,
          job_uuid: str, timeout: float = 60) -> dict[str, Any]:
    """Advance the job as the room's owning conductor does until it ends."""
    served, db, _settings = stack
    advancer = JobAdvancer(db, served.manager.membership, "c1", "", served.manager)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        advancer.advance()
        job = ok(admin.get(f"{E}/jobs/{job_uuid}"))
        if job["state"] in ("done", "failed-partly"):
            return job  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"job {job_uuid} did not end: {job}")


def test_room_power_off_uses_the_session_service_and_names_the_pcs_it_missed(
        stack: tuple[ServedApi, Database, Settings], admin: httpx.Client,
        tmp_path: Path, program: str) -> None:
    _served, db, _settings = stack
    pc4, pc5, room = f"s-pc4{tag(program)}", f"s-pc5{tag(program)}", f"S1{tag(program)}"
    reporting = enroll(admin, pc4, f"52:54:00:00:{mac_byte(program)}:04")
    silent = enroll(admin, pc5, f"52:54:00:00:{mac_byte(program)}:05")
    deploy_settings(stack, silent["uuid"])  # deployed, but its OS runs no session service
    ok(admin.post(f"{E}/rooms", json={"name": room, "time_zone": "Europe/Paris",
                                      "pcs": [pc4, pc5]}), 201)
    log = tmp_path / "calls.log"
    with running_session_service(deploy_settings(stack, reporting["uuid"]), tmp_path / "svc",
                                 log, program=program) as process:
        eventually(lambda: row_of(db, reporting["uuid"]).last_seen_at, 15, "a heartbeat")
        job = ok(admin.post(f"{E}/rooms/{room}/actions", json={"action": "power-off"}), 202)
        final = drive(stack, admin, job["uuid"])
        assert process.wait(timeout=15) == 0
    pcs = {pc["node"]: pc for pc in final["pcs"]}
    assert final["state"] == "failed-partly"
    assert pcs[pc4]["outcome"] == "succeeded" and pcs[pc4]["step"] == "power off"
    assert pcs[pc5]["outcome"] == "failed" and UNREACHED in pcs[pc5]["error"]
    assert recorded(log) == [["poweroff"]]


@pytest.fixture
def wol_listener() -> Iterator[WolListener]:
    with running_wol_listener() as listener:
        yield listener


def test_magic_packets_reach_a_room_on_another_subnet(
        stack: tuple[ServedApi, Database, Settings], admin: httpx.Client,
        wol_listener: WolListener) -> None:
    with routed_network(wol_listener.link) as subnet:
        inside = subnet.subnets(new_prefix=25)
        for body, fragment in [
            ({"wol_broadcast": str(subnet.broadcast_address)}, "needs its subnet"),
            ({"subnet": "10.1.2.3/24"}, "Invalid subnet"),
            ({"subnet": str(subnet), "wol_broadcast": "192.0.2.255"}, "Invalid wol_broadcast"),
            ({"subnet": str(subnet), "wol_broadcast": str(subnet.network_address + 6)},
             "Invalid wol_broadcast"),
        ]:
            refused = admin.post(f"{E}/rooms", json={"name": "S2", "time_zone": "UTC", **body})
            assert refused.status_code == 400 and fragment in refused.text, refused.text
        node = enroll(admin, "s-pc6", "52:54:00:00:51:06", wol_port=wol_listener.port)
        room = ok(admin.post(f"{E}/rooms", json={"name": "S2", "time_zone": "UTC",
                                                 "subnet": str(subnet), "pcs": ["s-pc6"]}),
                  201)
        assert room["subnet"] == str(subnet) and room["wol_broadcast"] is None
        job = ok(admin.post(f"{E}/rooms/S2/actions", json={"action": "wake"}), 202)
        woken = drive(stack, admin, job["uuid"])["pcs"][0]
        assert woken["outcome"] == "succeeded" and woken["step"] == "power on requested"
        packet = wol_listener.wait_for_magic("52:54:00:00:51:06", timeout=30)
        assert packet is not None and packet["destination"] == str(subnet.broadcast_address)

        # A directed broadcast to a part of the subnet may be set on the room instead.
        part = next(inside)
        patched = ok(admin.patch(f"{E}/rooms/S2", json={
            "wol_broadcast": str(part.broadcast_address)}))
        assert patched["wol_broadcast"] == str(part.broadcast_address)
        # A node's own wol_host still wins: here the listener's unicast address.
        ok(admin.patch(f"/v1/nodes/{node['uuid']}", json=[
            {"op": "add", "path": "/driver_info/wol_host", "value": wol_listener.address}]))
        power(admin, node["uuid"], "power on")
        eventually(lambda: any(d["destination"] == wol_listener.address
                               for d in wol_listener.datagrams), 30, "the packet to wol_host")


@pytest.fixture
def deploy_files(tmp_path: Path) -> Iterator[str]:
    """An HTTP server of a deploy kernel and ramdisk (the ipxe boot interface checks that they
    answer); its URL."""
    (tmp_path / "files").mkdir()
    for name in ("kernel", "ramdisk"):
        (tmp_path / "files" / name).write_bytes(b"x")
    with serving_directory(tmp_path / "files") as url:
        yield url


def test_a_room_restore_powers_a_reporting_pc_off_then_wakes_it_into_the_ramdisk(
        stack: tuple[ServedApi, Database, Settings], admin: httpx.Client, tmp_path: Path,
        program: str, deploy_files: str) -> None:
    _served, db, _settings = stack
    pc7, room, image = f"s-pc7{tag(program)}", f"S3{tag(program)}", f"debian{tag(program)}"
    node = enroll(admin, pc7, f"52:54:00:00:{mac_byte(program)}:07",
                  deploy_kernel=f"{deploy_files}/kernel",
                  deploy_ramdisk=f"{deploy_files}/ramdisk")
    with db.session() as session:  # as if deployed before (a deploy needs a machine)
        deployed = session.scalar(select(Node).where(Node.uuid == node["uuid"]))
        assert deployed is not None
        deployed.provision_state = "active"
    ok(admin.post(f"{E}/images", json={"name": image, "versions": [
        {"version": "v1", "source": f"{deploy_files}/kernel", "checksum": "b" * 64}]}), 201)
    ok(admin.post(f"{E}/rooms", json={"name": room, "time_zone": "UTC", "pcs": [pc7],
                                      "allowed_images": [image]}), 201)
    log = tmp_path / "calls.log"
    served, _db, _settings = stack
    advancer = JobAdvancer(db, served.manager.membership, "c1", "", served.manager)
    with running_session_service(deploy_settings(stack, node["uuid"]), tmp_path / "svc",
                                 log, program=program) as process:
        eventually(lambda: row_of(db, node["uuid"]).last_seen_at, 15, "a heartbeat")
        job = ok(admin.post(f"{E}/rooms/{room}/actions", json={"action": "restore",
                                                               "image": f"{image}:v1"}), 202)

        def waiting_for_the_ramdisk() -> dict[str, Any] | None:
            advancer.advance()
            pc = ok(admin.get(f"{E}/jobs/{job['uuid']}"))["pcs"][0]
            return pc if pc["step"] == "wait call-back" else None

        pc = eventually(waiting_for_the_ramdisk, 30, "the rebuild waiting for the agent")
        assert process.wait(timeout=15) == 0
    assert pc["outcome"] is None and pc["error"] is None
    # Off first, through its own network (its switch port moves next), then a magic packet.
    assert recorded(log) == [["poweroff"]]
    history = admin.get(f"/v1/nodes/{node['uuid']}/history").text
    assert history.index("fetched the power-off command") < history.index("Wake-on-LAN magic")


def test_the_boot_service_sends_magic_packets_out_of_its_interface(
        tmp_path: Path, wol_listener: WolListener) -> None:
    """ENCLUME_WOL_VIA_BOOT_SERVICE: the conductor asks the boot service (POST /wake, with the
    cluster's secret), which broadcasts out of its provisioning interface: here the veth whose
    other end holds the listener."""
    link = wol_listener.link
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade_schema(url)
    db = Database(url)
    boot_socket = bound_socket()
    boot_url_of, secret = url_of(boot_socket), "cluster secret"
    boot_settings = Settings(
        process={"data_dir": tmp_path / "boot"},
        boot={"interface": link.root_interface, "public_url": boot_url_of},
        rpc={"secret": secret},
    )
    settings = Settings(
        boot={"public_url": boot_url_of},
        rpc={"secret": secret},
        process={"data_dir": tmp_path / "api"},
        conductor={"hostname": "c1"},
        drivers={"enabled_hardware_types": ["wol"]},
        wol={"via_boot_service": True, "default_host": "127.0.0.1"},
    )
    mac = "52:54:00:00:51:08"
    with serving(create_boot_app(boot_settings, db), boot_socket) as boot_url, \
            served_api(settings, db) as served:
        api = served.client
        node = ok(api.post("/v1/nodes", json={"driver": "wol", "driver_info": {
            "wol_port": wol_listener.port}}), 201)
        ok(api.post("/v1/ports", json={"node_uuid": node["uuid"], "address": mac}), 201)
        power(api, node["uuid"], "power on")
        packet = wol_listener.wait_for_magic(mac, timeout=30)
        assert packet is not None and packet["destination"] == link.broadcast
        history = api.get(f"/v1/nodes/{node['uuid']}/history").text
        assert f"to {link.broadcast}:{wol_listener.port} out of {link.root_interface}" in history

        for headers, body, status in [
            ({}, {"macs": [mac]}, 401),
            ({SECRET_HEADER: "wrong"}, {"macs": [mac]}, 401),
            ({SECRET_HEADER: "cluster secret"}, {"macs": ["nope"]}, 400),
            ({SECRET_HEADER: "cluster secret"}, {"macs": []}, 400),
            ({SECRET_HEADER: "cluster secret"}, {"macs": [mac], "port": 0}, 400),
        ]:
            answer = httpx.post(f"{boot_url}/wake", json=body, headers=headers, timeout=10)
            assert answer.status_code == status, (body, answer.text)


def test_a_held_heartbeat_gets_a_command_asked_meanwhile(
        stack: tuple[ServedApi, Database, Settings], admin: httpx.Client) -> None:
    served, db, settings = stack
    assert served.app.state.settings is settings
    base = str(admin.base_url)
    nodes = [enroll(admin, f"s-pc{n}", f"52:54:00:00:51:{n:02x}") for n in (9, 10)]
    tokens = [deploy_settings(stack, node["uuid"])["token"] for node in nodes]
    answers: dict[int, tuple[float, httpx.Response]] = {}

    def hold(i: int) -> None:
        started = time.monotonic()
        response = httpx.post(f"{base}{E}/session-service/{nodes[i]['uuid']}",
                              headers={"Authorization": f"Bearer {tokens[i]}"},
                              json={"wait_s": 60}, timeout=30)  # capped at the setting
        answers[i] = (time.monotonic() - started, response)

    settings.session_service.wait_s = 6.0
    try:
        threads = [threading.Thread(target=hold, args=(i,)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        eventually(lambda: all(row_of(db, n["uuid"]).last_seen_at for n in nodes), 30,
                   "both heartbeats held")
        with db.session() as session:
            node_id = session.scalar(select(Node.id).where(Node.uuid == nodes[0]["uuid"]))
            row = session_service.find(session, node_id)  # type: ignore[arg-type]
            assert row is not None
            session_service.request_command(row, session_service.REBOOT, datetime.now(UTC))
        for thread in threads:
            thread.join(timeout=30)
    finally:
        settings.session_service.wait_s = 1.0
    (took, first), (held, second) = answers[0], answers[1]
    assert ok(first)["command"] == "reboot" and took < 4.0
    assert ok(second)["command"] is None and held >= 6.0  # held for the whole wait, capped
    assert row_of(db, nodes[0]["uuid"]).delivered_command == "reboot"


def test_the_cli_sets_a_rooms_subnet_and_wol_broadcast(admin: httpx.Client) -> None:
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("ENCLUME_")},
                   "ENCLUME_URL": str(admin.base_url), "ENCLUME_USERNAME": "root",
                   "ENCLUME_PASSWORD": PASSWORD}

    def enclume(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(Path(sys.executable).with_name("enclume")), *argv],
                              env=environment, capture_output=True, text=True, timeout=60,
                              check=False)

    made = enclume("room", "create", "S4", "--time-zone", "UTC", "--subnet", "10.12.0.0/16",
                   "-f", "json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["subnet"] == "10.12.0.0/16"
    changed = enclume("room", "set", "S4", "--wol-broadcast", "10.12.3.255", "-f", "json")
    assert changed.returncode == 0, changed.stderr
    assert json.loads(changed.stdout)["wol_broadcast"] == "10.12.3.255"
    refused = enclume("room", "set", "S4", "--wol-broadcast", "10.13.0.255")
    assert refused.returncode != 0 and "Invalid wol_broadcast" in refused.stderr + refused.stdout
