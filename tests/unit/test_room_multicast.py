"""A room whose transfer is multicast: its restore asks the boot service's multicast routes (a
real MulticastSessions under uvicorn on loopback, its store holding the version) for one
session and puts it in every PC's instance_info; with the boot service refusing, the PCs
restore by unicast. Fake hardware deploys the PCs (the agent side is
tests/integration/test_multicast_restore.py)."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from services.boot.multicast_routes import multicast_routes
from services.boot.multicast_sender import MulticastSessions
from services.common.classroom_models import ImageVersion
from services.common.config import Settings
from services.common.config_hardware_sections import MulticastSettings
from services.common.db import Database, upgrade_schema
from services.common.models import Node
from services.conductor.room_jobs import JobAdvancer
from services.images.store import ImageStore
from tests.support.api_stack import ServedApi, served_api
from tests.support.asgi import bound_socket, serving, url_of
from tests.support.polling import eventually

E = "/enclume/v1"
PCS = 3
SECRET = "multicast test secret"
Stack = tuple[ServedApi, Database, Path, socket.socket]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory: Path = tmp_path_factory.mktemp("roommulticast")
    url = f"sqlite:///{directory / 'db.sqlite'}"
    upgrade_schema(url)
    db = Database(url)
    boot_socket = bound_socket()
    settings = Settings(process={"data_dir": directory},
                        conductor={"hostname": "c1"}, auth={"strategy": "noauth"},
                        fake={"deploy_delay_s": (0.1, 0.2)},
                        boot={"public_url": url_of(boot_socket)},
                        images={"token_secret": SECRET})
    with served_api(settings, db) as served:
        yield served, db, directory, boot_socket  # bound; served by the first test only
    boot_socket.close()


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


@pytest.fixture(scope="module")
def room(stack: Stack) -> str:
    served, db, directory, _ = stack
    api = served.client
    for i in range(PCS):
        node = ok(api.post("/v1/nodes", json={"driver": "fake-hardware", "name": f"m-pc{i}"}),
                  201)
        for target in ("manage", "provide"):
            ok(api.put(f"/v1/nodes/{node['uuid']}/states/provision", json={"target": target}),
               202)
            eventually(lambda n=node: api.get(f"/v1/nodes/{n['uuid']}").json()
                       ["provision_state"] in ("manageable", "available"), 60, "a PC's state")
    image = directory / "image.raw"
    image.write_bytes(os.urandom(1024 * 1024))
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    ok(api.post(f"{E}/images", json={"name": "debian", "versions": [
        {"version": "v1", "source": "http://images.example/debian-v1.img",
         "checksum": digest}]}), 201)
    with db.session() as session:
        version = session.scalar(select(ImageVersion.uuid))
    assert version is not None
    ImageStore(directory / "store", 16 * 1024 * 1024).ingest_file(version, image, digest)
    document = ok(api.post(f"{E}/rooms", json={
        "name": "M1", "time_zone": "Europe/Paris", "allowed_images": ["debian"],
        "default_image": "debian", "pcs": [f"m-pc{i}" for i in range(PCS)]}), 201)
    assert document["transfer"] == "unicast"  # the default
    assert ok(api.patch(f"{E}/rooms/M1", json={"transfer": "multicast"}))["transfer"] == \
        "multicast"
    assert api.patch(f"{E}/rooms/M1", json={"transfer": "broadcast"}).status_code == 400
    return version


def restore(stack: Stack) -> list[dict[str, Any]]:
    """The room restored through its job; each PC's instance_info when it was started."""
    served, db, _, _ = stack
    job = ok(served.client.post(f"{E}/rooms/M1/actions", json={"action": "restore"}), 202)
    advancer = JobAdvancer(db, served.manager.membership, "c1", "", served.manager,
                           served.manager.settings)
    advancer.advance()
    with db.session() as session:
        infos = [dict(info or {}) for info in session.scalars(
            select(Node.instance_info).where(Node.name.like("m-pc%")))]
    eventually(lambda: (advancer.advance() and False) or ok(served.client.get(
        f"{E}/jobs/{job['uuid']}"))["state"] == "done", 60, "the restore job")
    return infos


def test_a_multicast_room_restore_gathers_its_pcs_into_one_session(
        stack: Stack, room: str) -> None:
    _, _, directory, boot_socket = stack
    sessions = MulticastSessions(MulticastSettings(start_wait_s=60), "lo",
                                 ImageStore(directory / "store", 16 * 1024 * 1024))
    app = Starlette(routes=multicast_routes(sessions, SECRET.encode()))
    try:
        with serving(app, boot_socket):
            infos = restore(stack)
            opened = list(sessions._sessions.values())
    finally:
        sessions.stop()
    assert len(opened) == 1 and opened[0].expected == PCS
    assert opened[0].version_id == room
    assert all(info["transfer"] == "multicast" and info["multicast_session"] ==
               {"id": opened[0].id, "port": opened[0].port, "group": opened[0].group}
               for info in infos), infos


def test_without_the_boot_service_a_multicast_room_restores_by_unicast(
        stack: Stack, room: str) -> None:
    infos = restore(stack)  # nothing listens at the boot URL
    assert all("multicast_session" not in info and info.get("image_version") == room
               for info in infos), infos
