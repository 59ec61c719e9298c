"""The API's RPC client tells "never reached the conductor" from "reached it, no answer":
both are 503, but only the first is safe to retry blindly. A conductor's refusal comes back as
the exception class it raised, so a caller over RPC sees what an in-process caller sees."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from services.classroom.jobs import QUEUED
from services.common.classroom_models import Image, ImageVersion, Job, JobPC, Room
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.exceptions import (
    Conflict,
    EnclumeError,
    Invalid,
    NodeLocked,
    StaleUpdate,
    TemporaryFailure,
    remote_error,
)
from services.common.membership import Membership
from services.common.models import (
    Allocation,
    Conductor,
    Node,
    Portgroup,
    VolumeTarget,
    utcnow,
)
from services.common.optimistic import retrying_stale
from services.common.transient import TransientDatabaseError
from services.conductor.discovery import NodeRefused
from services.conductor.manager import ConductorManager
from services.conductor.room_jobs import JobAdvancer
from services.conductor.rpc import RpcClient, server_app
from services.drivers.registry import Drivers
from tests.support.asgi import serving

SECRET = "rpc-secret-for-tests"


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'rpc.sqlite'}"
    upgrade_schema(url)
    return Database(url)


@pytest.fixture
def hangs_up() -> Iterator[str]:
    """A conductor address that reads the whole request, then closes without answering."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                received = b""
                while b"\r\n\r\n" not in received:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    received += chunk

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def client_routing_to(db: Database, tmp_path: Path, rpc_address: str) -> tuple[RpcClient, str]:
    settings = Settings(
        process={"data_dir": tmp_path},
        rpc={"secret": SECRET, "retries": 0},
    )
    with db.session() as session:
        session.add(Conductor(hostname="only-conductor", rpc_address=rpc_address,
                              hardware_types=["fake-hardware"]))
        node = Node(driver="fake-hardware", provision_state="available")
        session.add(node)
        session.flush()
        uuid = node.uuid
    return RpcClient(db, settings, Membership(db, settings)), uuid


def test_an_unreachable_conductor_is_a_plain_retry(db: Database, tmp_path: Path) -> None:
    client, uuid = client_routing_to(db, tmp_path, closed_port_url())
    try:
        with pytest.raises(EnclumeError) as failed:
            client.do_provisioning_action(uuid, "active", {})
    finally:
        client.close()
    assert failed.value.code == 503
    assert "could not be reached" in str(failed.value)
    assert "may have been done" not in str(failed.value)


def test_a_conductor_dying_mid_call_says_it_may_have_been_done(
        db: Database, tmp_path: Path, hangs_up: str) -> None:
    client, uuid = client_routing_to(db, tmp_path, hangs_up)
    try:
        with pytest.raises(EnclumeError) as failed:
            client.do_provisioning_action(uuid, "active", {})
    finally:
        client.close()
    assert failed.value.code == 503
    message = str(failed.value)
    assert "stopped answering while handling do_provisioning_action" in message
    assert "may have been done" in message


def test_a_stale_update_crosses_rpc_as_itself_so_the_api_retries_it(
        db: Database, tmp_path: Path) -> None:
    """The conductor's compare-and-set refusal reaches the API as StaleUpdate (409), the one
    error `retrying_stale` tries again on; a stale write changes nothing."""
    settings = Settings(
        process={"data_dir": tmp_path},
        conductor={"hostname": "rpc-conductor"},
    )
    drivers = Drivers(settings)
    manager = ConductorManager(db, settings, drivers, Membership(db, settings))
    with serving(server_app(manager, SECRET)) as url:
        client, uuid = client_routing_to(db, tmp_path, url)
        with pytest.raises(StaleUpdate) as stale:
            client.update_node(uuid, {"extra": {"b": 2}}, expected={"extra": {"a": 1}})
        assert stale.value.code == 409 and "changed by another request" in stale.value.message
        client.update_node(uuid, {"extra": {"b": 2}}, expected={"extra": {}})
    with db.session() as session:
        node = session.scalar(select(Node).where(Node.uuid == uuid))
        assert node is not None and node.extra == {"b": 2}


def test_retrying_stale_tries_again_then_gives_up_with_409() -> None:
    calls: list[int] = []

    def loses_twice() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise StaleUpdate.of("Node x")
        return "written"

    assert retrying_stale(loses_twice) == "written" and len(calls) == 3

    def always_loses() -> None:
        raise StaleUpdate.of("Node x")

    with pytest.raises(StaleUpdate):
        retrying_stale(always_loses, attempts=3)


def allocation_state(db: Database, allocation_uuid: str) -> str | None:
    with db.session() as session:
        return session.scalar(select(Allocation.state).where(Allocation.uuid == allocation_uuid))


def test_volumes_portgroups_and_allocations_cross_rpc(db: Database, tmp_path: Path) -> None:
    """The methods the API hands to a conductor for these resources are served over RPC
    (update_portgroup and destroy_portgroup were once missing from METHODS)."""
    settings = Settings(process={"data_dir": tmp_path}, conductor={"hostname": "rpc-conductor"})
    manager = ConductorManager(db, settings, Drivers(settings), Membership(db, settings))
    with serving(server_app(manager, SECRET)) as url:
        client, uuid = client_routing_to(db, tmp_path, url)
        with db.session() as session:
            node = session.scalar(select(Node).where(Node.uuid == uuid))
            assert node is not None
            node.power_state, node.resource_class = "power off", "rpc"
            target = VolumeTarget(node_id=node.id, volume_type="iscsi", volume_id="v",
                                  boot_index=0)
            group = Portgroup(node_id=node.id, name="rpc-bond")
            allocation = Allocation(resource_class="rpc", traits=[], candidate_nodes=[],
                                    extra={})
            session.add_all([target, group, allocation])
            session.flush()
            target_uuid, group_uuid, allocation_uuid = (target.uuid, group.uuid,
                                                        allocation.uuid)
        try:
            client.update_volume("targets", target_uuid, {"boot_index": 2})
            client.update_portgroup(group_uuid, {"mode": "802.3ad"})
            client.process_allocation(allocation_uuid)
            deadline = time.monotonic() + 10
            while allocation_state(db, allocation_uuid) == "allocating":
                assert time.monotonic() < deadline
                time.sleep(0.02)
            client.destroy_volume("targets", target_uuid)
            client.destroy_portgroup(group_uuid)
        finally:
            client.close()
    with db.session() as session:
        assert session.scalar(select(VolumeTarget.id)) is None
        assert session.scalar(select(Portgroup.id)) is None
        assert session.scalar(select(Allocation.node_id).where(
            Allocation.uuid == allocation_uuid)) is not None


def test_a_class_end_reaches_the_nodes_conductor_over_rpc(db: Database, tmp_path: Path) -> None:
    """A log-out job's call (leave_class_vlan) is served over RPC with its answer: a PC that
    is not active is not on the class VLAN, nothing moves."""
    settings = Settings(process={"data_dir": tmp_path}, conductor={"hostname": "rpc-conductor"})
    manager = ConductorManager(db, settings, Drivers(settings), Membership(db, settings))
    with serving(server_app(manager, SECRET)) as url:
        client, uuid = client_routing_to(db, tmp_path, url)
        try:
            assert client.leave_class_vlan(uuid, "2027-05-25T12:00:00+00:00") == {
                "moved": False, "state": "available", "error": None}
        finally:
            client.close()


def add_node(db: Database, provision_state: str, held_by: str | None = None,
             maintenance: bool = False) -> str:
    """A fake node; ``held_by``: the conductor whose lock it is under for the next hour."""
    with db.session() as session:
        node = Node(driver="fake-hardware", provision_state=provision_state,
                    maintenance=maintenance, reservation=held_by,
                    reservation_expires_at=utcnow() + timedelta(hours=1) if held_by else None)
        session.add(node)
        session.flush()
        return node.uuid


def busy_conductor(db: Database, tmp_path: Path) -> ConductorManager:
    """A conductor at its deploy limit (one node deploying, the limit is one)."""
    settings = Settings(process={"data_dir": tmp_path},
                        conductor={"hostname": "rpc-conductor", "max_concurrent_deploys": 1})
    add_node(db, "deploying")
    return ConductorManager(db, settings, Drivers(settings), Membership(db, settings))


def test_a_busy_node_and_the_deploy_limit_cross_rpc_as_themselves(
        db: Database, tmp_path: Path) -> None:
    """409 "locked" comes back as NodeLocked, 503 "too many deploys" as TemporaryFailure, with
    the conductor's status and message, as a call in process raises them."""
    manager = busy_conductor(db, tmp_path)
    with serving(server_app(manager, SECRET)) as url:
        client, available = client_routing_to(db, tmp_path, url)
        locked = add_node(db, "active", held_by="other-conductor")
        try:
            with pytest.raises(NodeLocked) as busy:
                client.change_power_state(locked, "power on")
            with pytest.raises(TemporaryFailure) as limited:
                client.do_provisioning_action(available, "active", {})
        finally:
            client.close()
    assert busy.value.code == 409
    assert busy.value.message == (f"Node {locked} is locked by host other-conductor, please "
                                  "retry after the current operation is completed.")
    assert limited.value.code == 503
    assert limited.value.message == ("Too many nodes are deploying (1, the limit is 1); "
                                     "please retry later.")


def test_a_room_job_over_rpc_leaves_a_busy_pc_queued(db: Database, tmp_path: Path) -> None:
    """A cluster conductor starts a room's PCs through the RPC client: a PC whose node another
    operation holds (409) or that would pass the deploy limit (503) waits for a later pass, as
    in process; a PC the conductor refuses for good (400, in maintenance) fails with its
    reason."""
    manager = busy_conductor(db, tmp_path)
    with serving(server_app(manager, SECRET)) as url:
        client, available = client_routing_to(db, tmp_path, url)
        locked = add_node(db, "active", held_by="other-conductor")
        maintained = add_node(db, "available", maintenance=True)
        with db.session() as session:
            image = Image(name="debian")
            version = ImageVersion(image=image, version="v1", source="http://images.example/d",
                                   checksum="d" * 64, disk_format="raw",
                                   image_type="whole-disk", boot_mode="uefi")
            room = Room(name="B12", time_zone="UTC")
            job = Job(room=room, kind="restore", image_version=version, pcs=[
                JobPC(node_uuid=uuid, step=QUEUED) for uuid in (available, locked, maintained)])
            session.add(job)
            session.flush()
            job_id = job.id
        advancer = JobAdvancer(db, client.membership, "rpc-conductor", "", client)
        try:
            advancer.advance_job(job_id)
        finally:
            client.close()
    with db.session() as session:
        pcs = {pc.node_uuid: (pc.step, pc.outcome, pc.error)
               for pc in session.scalars(select(JobPC))}
    assert pcs[available] == (QUEUED, None, None)
    assert pcs[locked] == (QUEUED, None, None)
    assert pcs[maintained] == ("starting", "failed", (
        f'The requested action "active" can not be performed on node "{maintained}" while it '
        "is in maintenance mode."))


@pytest.mark.parametrize(("kind", "code", "expected"), [
    ("NodeLocked", 409, NodeLocked),
    ("NodeRefused", 409, NodeRefused),  # its __init__ takes a Node and logs: not run here
    ("TransientDatabaseError", 503, TransientDatabaseError),
    ("EnclumeError", 409, EnclumeError),  # raised as such with a status: stays as such
    ("SomeConductorOnlyError", 409, Conflict),  # a class this process never imported
    ("SomeConductorOnlyError", 503, TemporaryFailure),
    ("SomeConductorOnlyError", 400, Invalid),
    ("SomeConductorOnlyError", 418, EnclumeError),
    ("ValueError", 400, Invalid),  # not an EnclumeError: the status decides
    (None, 400, EnclumeError),  # the RPC layer's own refusal (a malformed call)
])
def test_a_remote_error_is_rebuilt_as_its_class_with_its_status_and_message(
        kind: str | None, code: int, expected: type[EnclumeError]) -> None:
    error = remote_error(kind, "what the conductor said", code)
    assert type(error) is expected
    assert (error.code, error.message, str(error)) == (
        code, "what the conductor said", "what the conductor said")
    assert error.retry_after_s == expected.retry_after_s  # a Retry-After for the API


@pytest.mark.parametrize("body", ['{"error": "bad gateway"}', '{"error": {"message": 5}}',
                                  "<html>502 Bad Gateway</html>", "[1, 2]"])
def test_an_error_page_not_from_a_conductor_is_a_clean_error(db: Database, tmp_path: Path,
                                                              body: str) -> None:
    """Something else answering on the conductor's address (a proxy's error page): its status
    and a message of Enclume's own, never an AttributeError from the body's shape."""
    async def answer(_request: object) -> Response:
        return Response(body, status_code=502, media_type="application/json")

    app = Starlette(routes=[Route("/rpc/{method}", answer, methods=["POST"])])
    with serving(app) as url:
        client, uuid = client_routing_to(db, tmp_path, url)
        try:
            with pytest.raises(EnclumeError) as failed:
                client.change_power_state(uuid, "power on")
        finally:
            client.close()
    assert (failed.value.code, failed.value.message) == (502, "Conductor error 502")
