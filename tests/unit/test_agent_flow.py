"""The agent endpoints and the conductor's heartbeat handling, on a real SQLite database and a
real API served by uvicorn on loopback, in process and over the conductor RPC.

The whole deploy/clean/inspect flow with the real agent is in
tests/integration/test_deploy_agent.py; here: tokens, refusals, what a heartbeat records, locks.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.api.app import create_app
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.exceptions import EnclumeError
from services.common.membership import Membership
from services.common.models import Node, Port, utcnow
from services.conductor import agent, locks
from services.conductor.manager import ConductorManager
from services.conductor.rpc import RpcClient, server_app
from services.drivers.registry import Drivers
from tests.support.asgi import bound_socket, serving, url_of
from tests.support.polling import eventually
from tests.support.settings import Sections, merged_settings

HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}
MAC = "52:54:00:00:aa:01"
IMAGE = {"image_source": "http://images.example/disk.raw",
         "image_checksum": "d41d8cd98f00b204e9800998ecf8427e"}
SECRET = "rpc-secret-for-tests"


@dataclass
class Stack:
    api: httpx.Client
    db: Database
    manager: ConductorManager
    settings: Settings


def settings_for(tmp_path: Path, **sections: dict[str, Any]) -> Settings:
    defaults: Sections = {"process": {"data_dir": tmp_path},
                          "conductor": {"hostname": "conductor-1"},
                          "deploy": {"agent_heartbeat_timeout_s": 6},
                          "boot": {"public_url": "http://192.0.2.1:8080"}}
    return merged_settings(defaults, **sections)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'agent.sqlite'}"
    upgrade_schema(url)
    return Database(url)


@pytest.fixture
def stack(tmp_path: Path, db: Database) -> Iterator[Stack]:
    settings = settings_for(tmp_path)
    drivers = Drivers(settings)
    membership = Membership(db, settings)
    manager = ConductorManager(db, settings, drivers, membership)
    app = create_app(settings, db, manager, membership, services=[manager])
    with serving(app) as url, httpx.Client(base_url=url, headers=HEADERS, timeout=10) as api:
        yield Stack(api, db, manager, settings)


def add_node(db: Database, state: str, mac: str = MAC, **values: Any) -> Node:
    values.setdefault("driver", "fake-hardware")
    values.setdefault("deploy_interface", "direct")
    values.setdefault("instance_info", dict(IMAGE))
    node = Node(provision_state=state, target_provision_state="active", **values)
    with db.session() as session:
        session.add(node)
        session.flush()
        session.add(Port(address=mac, node_id=node.id))
    return node


def internal(db: Database, node_id: int) -> dict[str, Any]:
    with db.session() as session:
        node = session.get(Node, node_id)
        assert node is not None
        return dict(node.driver_internal_info)




def closed_port_url() -> str:
    """An agent URL where nothing listens (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def lookup(stack: Stack, **params: str) -> httpx.Response:
    return stack.api.get("/v1/lookup", params=params)


# -- lookup --------------------------------------------------------------------------------


def test_the_first_lookup_gets_the_token_and_no_later_one_sees_it(
        stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    node = add_node(stack.db, "wait call-back",
                    instance_info={**IMAGE, "image_source": "http://u:pw-in-url@h/disk.raw"})
    first = lookup(stack, addresses=f"{MAC.upper()},not-a-mac,52:54:00:00:00:99")
    assert first.status_code == 200, first.text
    body = first.json()
    token = body["config"]["agent_token"]
    assert len(token) >= 43 and body["config"]["agent_token_required"] is True
    assert body["config"]["heartbeat_timeout"] == 6
    assert body["node"]["uuid"] == node.uuid
    assert body["node"]["provision_state"] == "wait call-back"
    assert body["node"]["instance_info"]["image_source"] == "http://u:******@h/disk.raw"
    assert body["node"]["driver_internal_info"]["agent_secret_token"] == "******"
    assert internal(stack.db, node.id)["agent_secret_token"] == token

    for again in (lookup(stack, addresses=MAC), lookup(stack, node_uuid=node.uuid, addresses=MAC)):
        assert again.status_code == 200
        assert again.json()["config"]["agent_token"] == "******"
        assert token not in again.text
    shown = stack.api.get(f"/v1/nodes/{node.uuid}").json()
    assert shown["driver_internal_info"]["agent_secret_token"] == "******"
    assert token not in stack.api.get("/v1/nodes/detail").text
    assert heartbeat(stack, node.uuid, callback_url=closed_port_url(), agent_token=token
                     ).status_code == 202
    eventually(lambda: "trying again on the next heartbeat" in caplog.text)  # logs captured
    assert token not in caplog.text and "pw-in-url" not in caplog.text


def test_lookup_finds_only_nodes_that_expect_an_agent(stack: Stack) -> None:
    idle = add_node(stack.db, "available", mac="52:54:00:00:aa:02")
    waiting = add_node(stack.db, "clean wait", mac="52:54:00:00:aa:03")
    refused = lookup(stack, addresses="52:54:00:00:aa:02")
    assert refused.status_code == 404
    assert "No node in a state that expects an agent" in refused.text
    assert "agent_secret_token" not in internal(stack.db, idle.id)
    # A node UUID alone finds nothing: a MAC of the node is required (issue #15).
    assert lookup(stack, node_uuid=idle.uuid).status_code == 400
    assert lookup(stack, node_uuid=waiting.uuid).status_code == 400
    assert lookup(stack, node_uuid=idle.uuid, addresses="52:54:00:00:aa:02").status_code == 404
    # node_uuid and MACs must agree
    assert lookup(stack, node_uuid=waiting.uuid, addresses="52:54:00:00:aa:02").status_code == 404
    assert lookup(stack, addresses="52:54:00:00:ff:ff").status_code == 404
    assert lookup(stack).status_code == 400
    assert lookup(stack, addresses="garbage").status_code == 400
    assert lookup(stack, node_uuid="not-a-uuid", addresses="52:54:00:00:aa:02"
                  ).status_code == 400
    assert lookup(stack, addresses="52:54:00:00:aa:02,52:54:00:00:aa:03").status_code == 200


def test_a_locked_node_answers_lookup_409_and_issues_no_token(stack: Stack) -> None:
    node = add_node(stack.db, "deploying")
    locks.acquire(stack.db, node.id, node.uuid, "worker-elsewhere", 60)
    refused = lookup(stack, addresses=MAC)
    assert refused.status_code == 409 and "locked" in refused.text
    locks.release(stack.db, node.id, "worker-elsewhere")
    assert "agent_secret_token" not in internal(stack.db, node.id)
    assert len(lookup(stack, addresses=MAC).json()["config"]["agent_token"]) >= 43


def test_an_agent_restarted_while_its_fast_track_node_rests_gets_a_token_once_the_old_is_gone(
        stack: Stack) -> None:
    node = add_node(stack.db, "available", driver_info={"fast_track": True})
    first = lookup(stack, addresses=MAC)
    assert first.status_code == 200, first.text
    token = first.json()["config"]["agent_token"]
    assert len(token) >= 43
    url = closed_port_url()
    assert heartbeat(stack, node.uuid, callback_url=url, agent_token=token).status_code == 202
    eventually(lambda: internal(stack.db, node.id).get("agent_url") == url)
    # The agent is up: no one else gets a token, not even right after the lookup.
    assert lookup(stack, addresses=MAC).json()["config"]["agent_token"] == "******"

    # The agent restarts and has lost its token; the old one has been silent for longer than
    # the heartbeat timeout (6 s in these tests): the new agent gets a new token.
    silent = (utcnow() - timedelta(seconds=7)).replace(tzinfo=None).isoformat()
    with stack.db.session() as session:
        stored = session.get(Node, node.id)
        assert stored is not None
        stored.driver_internal_info = {**stored.driver_internal_info,
                                       "agent_last_heartbeat": silent,
                                       "agent_token_issued_at": silent}
    restarted = lookup(stack, addresses=MAC).json()["config"]["agent_token"]
    assert len(restarted) >= 43 and restarted != token
    assert "agent_url" not in internal(stack.db, node.id)  # the earlier agent is forgotten
    assert heartbeat(stack, node.uuid, callback_url=url, agent_token=token).status_code == 403
    assert heartbeat(stack, node.uuid, callback_url=closed_port_url(), agent_token=restarted
                     ).status_code == 202
    assert lookup(stack, addresses=MAC).json()["config"]["agent_token"] == "******"

    # Without fast track a resting node has no agent to look up.
    plain = add_node(stack.db, "manageable", mac="52:54:00:00:aa:05")
    assert lookup(stack, addresses="52:54:00:00:aa:05").status_code == 404
    assert "agent_secret_token" not in internal(stack.db, plain.id)


# -- heartbeat -----------------------------------------------------------------------------


def heartbeat(stack: Stack, uuid: str, **body: Any) -> httpx.Response:
    return stack.api.post(f"/v1/heartbeat/{uuid}", json=body)


def test_heartbeat_refusals_record_nothing(stack: Stack) -> None:
    node = add_node(stack.db, "wait call-back")
    token = lookup(stack, addresses=MAC).json()["config"]["agent_token"]
    url = closed_port_url()
    missing = heartbeat(stack, node.uuid, callback_url=url)
    assert missing.status_code == 401 and "token is required" in missing.text
    wrong = heartbeat(stack, node.uuid, callback_url=url, agent_token=token[:-1] + "x")
    assert wrong.status_code == 403 and "Invalid or missing agent token" in wrong.text
    assert token[:-1] not in wrong.text
    assert heartbeat(stack, node.uuid, agent_token=token).status_code == 400
    assert heartbeat(stack, node.uuid, callback_url="ftp://h/", agent_token=token
                     ).status_code == 400
    assert heartbeat(stack, node.uuid, callback_url="http://u:p@h:9999", agent_token=token
                     ).status_code == 400
    assert heartbeat(stack, "5a1f8b2e-0000-4000-8000-000000000000", callback_url=url,
                     agent_token=token).status_code == 404
    assert stack.api.post(f"/v1/heartbeat/{node.uuid}", content=b"[]",
                          headers={"Content-Type": "application/json"}).status_code == 400
    time.sleep(0.3)
    assert "agent_url" not in internal(stack.db, node.id)

    idle = add_node(stack.db, "active", mac="52:54:00:00:aa:04")
    conflict = heartbeat(stack, idle.uuid, callback_url=url, agent_token=token)
    assert conflict.status_code == 409 and "does not expect an agent" in conflict.text


def test_a_heartbeat_cannot_point_the_conductor_at_another_host_or_url(stack: Stack) -> None:
    node = add_node(stack.db, "wait call-back")
    token = lookup(stack, addresses=MAC).json()["config"]["agent_token"]
    # The callback host must be the address the heartbeat comes from (127.0.0.1 here).
    elsewhere = heartbeat(stack, node.uuid, callback_url="http://192.0.2.66:9999",
                          agent_token=token)
    assert elsewhere.status_code == 403 and "not the address this heartbeat came from" in (
        elsewhere.text)
    named = heartbeat(stack, node.uuid, callback_url="http://agent.example:9999",
                      agent_token=token)
    assert named.status_code == 400 and "must be an IP address" in named.text
    url = closed_port_url()
    assert heartbeat(stack, node.uuid, callback_url=url, agent_token=token).status_code == 202
    eventually(lambda: internal(stack.db, node.id).get("agent_url") == url)
    # Once an agent called back with the token, its URL is pinned until the agent is forgotten.
    moved = heartbeat(stack, node.uuid, callback_url=closed_port_url(), agent_token=token)
    assert moved.status_code == 409 and "callback URL can not change" in moved.text
    assert internal(stack.db, node.id)["agent_url"] == url
    # A token that is a lone surrogate is refused, never a server error: the body's validation
    # refuses it (400), and the conductor's comparison would call it a wrong token.
    surrogate = stack.api.post(f"/v1/heartbeat/{node.uuid}",
                               content=b'{"callback_url": "%s", "agent_token": "\\ud800"}'
                               % url.encode(), headers={"Content-Type": "application/json"})
    assert 400 <= surrogate.status_code < 500, surrogate.text
    with pytest.raises(agent.AgentTokenInvalid):
        agent.check_heartbeat(node.uuid, "wait call-back", {"agent_secret_token": token},
                              "\ud800", url)


def test_a_heartbeat_records_the_agent_and_an_unreachable_one_leaves_the_node_waiting(
        stack: Stack) -> None:
    old = utcnow() - timedelta(minutes=10)
    node = add_node(stack.db, "wait call-back", provision_updated_at=old)
    token = lookup(stack, addresses=MAC).json()["config"]["agent_token"]
    url = closed_port_url()
    accepted = heartbeat(stack, node.uuid, callback_url=url, agent_token=token,
                         agent_version="1.0")
    assert accepted.status_code == 202 and accepted.content == b""
    info = eventually(lambda: (i := internal(stack.db, node.id)).get("agent_url") and i)
    assert info["agent_url"] == url and info["agent_version"] == "1.0"
    assert info["agent_last_heartbeat"]
    # The conductor could not reach the agent (nothing listens): the node keeps waiting for
    # the next heartbeat, and the callback timeout now counts from this one.
    time.sleep(0.3)
    with stack.db.session() as session:
        current = session.get(Node, node.id)
        assert current is not None
        assert current.provision_state == "wait call-back" and current.last_error is None
        assert current.reservation is None
        assert current.provision_updated_at is not None
        assert current.provision_updated_at.replace(tzinfo=None) > old.replace(tzinfo=None)


def test_a_locked_node_skips_the_heartbeat_and_the_next_one_continues(stack: Stack) -> None:
    node = add_node(stack.db, "inspect wait", inspect_interface="agent")
    token = lookup(stack, addresses=MAC).json()["config"]["agent_token"]
    locks.acquire(stack.db, node.id, node.uuid, "busy-worker", 60)
    url = closed_port_url()
    started = time.monotonic()
    assert heartbeat(stack, node.uuid, callback_url=url, agent_token=token).status_code == 202
    assert time.monotonic() - started < 2  # the API is not held by the busy node
    time.sleep(0.3)
    assert "agent_url" not in internal(stack.db, node.id)
    locks.release(stack.db, node.id, "busy-worker")
    assert heartbeat(stack, node.uuid, callback_url=url, agent_token=token).status_code == 202
    eventually(lambda: internal(stack.db, node.id).get("agent_url") == url)


# -- inventory -----------------------------------------------------------------------------


def test_inventory_endpoint(stack: Stack) -> None:
    node = add_node(stack.db, "manageable")
    missing = stack.api.get(f"/v1/nodes/{node.uuid}/inventory")
    assert missing.status_code == 404 and f"Node {node.uuid} inventory" in missing.text
    from services.common.models import NodeInventory
    with stack.db.session() as session:
        session.add(NodeInventory(node_id=node.id, inventory_data={"cpu": {"count": 2}},
                                  plugin_data={}))
    found = stack.api.get(f"/v1/nodes/{node.uuid}/inventory")
    assert found.json() == {"inventory": {"cpu": {"count": 2}}, "plugin_data": {}}
    old = stack.api.get(f"/v1/nodes/{node.uuid}/inventory",
                        headers={"X-OpenStack-Ironic-API-Version": "1.72"})
    assert old.status_code == 404
    assert stack.api.get("/v1/nodes/no-such-node/inventory").status_code == 404


# -- over RPC (cluster mode) ---------------------------------------------------------------


def test_token_and_heartbeat_work_over_rpc(tmp_path: Path, db: Database) -> None:
    settings = settings_for(tmp_path, rpc={"secret": SECRET})
    sock = bound_socket()
    membership = Membership(db, settings)
    manager = ConductorManager(db, settings, Drivers(settings), membership,
                               rpc_address=url_of(sock))
    node = add_node(db, "wait call-back")
    with serving(server_app(manager, SECRET, services=[manager]), sock):
        client = RpcClient(db, settings, Membership(db, settings))
        try:
            token = client.issue_agent_token(node.uuid)
            assert token is not None and len(token) >= 43
            assert client.issue_agent_token(node.uuid) is None
            url = closed_port_url()
            with pytest.raises(EnclumeError) as refused:
                client.heartbeat(node.uuid, url, "wrong-token-wrong-token-wrong-token")
            assert refused.value.code == 403
            with pytest.raises(EnclumeError) as unauthenticated:
                client.heartbeat(node.uuid, url, None)
            assert unauthenticated.value.code == 401
            client.heartbeat(node.uuid, url, token, "1.0")
            eventually(lambda: internal(db, node.id).get("agent_url") == url)
        finally:
            client.close()


# -- the end of a wait: abort, callback timeout ------------------------------------------------


def test_abort_forgets_the_agent_and_refuses_its_heartbeats(stack: Stack) -> None:
    node = add_node(stack.db, "wait call-back")
    token = lookup(stack, addresses=MAC).json()["config"]["agent_token"]
    aborted = stack.api.put(f"/v1/nodes/{node.uuid}/states/provision", json={"target": "abort"})
    assert aborted.status_code == 202, aborted.text
    assert "agent_secret_token" not in internal(stack.db, node.id)
    late = heartbeat(stack, node.uuid, callback_url=closed_port_url(), agent_token=token)
    assert late.status_code == 409
    shown = stack.api.get(f"/v1/nodes/{node.uuid}").json()
    assert shown["provision_state"] == "deploy failed"
    assert shown["last_error"] == "Deployment was aborted by the user."


@pytest.mark.parametrize("disable_power_off", [False, True])
def test_a_callback_timeout_powers_off_and_removes_the_ramdisk_boot(
        stack: Stack, disable_power_off: bool) -> None:
    """A node with disable_power_off (API 1.95) stays on: Ironic refuses its power-off."""
    from services.conductor.periodic import PeriodicTasks

    old = utcnow() - timedelta(seconds=stack.settings.conductor.callback_timeout_s + 60)
    node = add_node(stack.db, "clean wait", provision_updated_at=old,
                    driver_internal_info={"boot": {"mode": "ramdisk"},
                                          "fake_power_state": "power on",
                                          "agent_secret_token": "t" * 43,
                                          "agent_url": "http://192.0.2.7:9999"},
                    power_state="power on", boot_interface="ipxe",
                    disable_power_off=disable_power_off)
    assert PeriodicTasks(stack.manager).fail_callback_timeouts() == 1
    with stack.db.session() as session:
        eventually(lambda: session.get(Node, node.id, populate_existing=True)
                   .provision_state == "clean failed")  # type: ignore[union-attr]
    power = "power on" if disable_power_off else "power off"
    info = internal(stack.db, node.id)
    assert info == {"fake_power_state": power}
    shown = stack.api.get(f"/v1/nodes/{node.uuid}").json()
    assert shown["power_state"] == power
    assert "Timeout reached while waiting for callback" in shown["last_error"]
