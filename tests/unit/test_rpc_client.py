"""The API's RPC client tells "never reached the conductor" from "reached it, no answer":
both are 503, but only the first is safe to retry blindly."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.exceptions import EnclumeError, StaleUpdate
from services.common.membership import Membership
from services.common.models import Allocation, Conductor, Node, Portgroup, VolumeTarget
from services.common.optimistic import retrying_stale
from services.conductor.manager import ConductorManager
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
            assert client.leave_class_vlan(uuid) == {"moved": False, "state": "available",
                                                     "error": None}
        finally:
            client.close()
