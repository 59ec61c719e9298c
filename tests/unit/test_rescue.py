"""Rescue and unrescue (API 1.38) on fake hardware: Ironic's states, password handling (kept
hashed as Ironic hashes it, masked by the API, forgotten on unrescue) and error texts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from passlib.hash import sha512_crypt
from sqlalchemy import select

from services.common.models import Node, utcnow
from services.conductor.periodic import PeriodicTasks
from tests.support.api_stack import ServedApi, fault, served_sqlite_api, wait_state


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApi]:
    with served_sqlite_api(tmp_path_factory.mktemp("rescue")) as stack:
        yield stack


def active_node(api: httpx.Client, rescue_interface: str) -> str:
    created = api.post("/v1/nodes", headers={"X-OpenStack-Ironic-API-Version": "1.10"},
                       json={"driver": "fake-hardware"})
    node = str(created.json()["uuid"])
    assert api.patch(f"/v1/nodes/{node}", json=[
        {"op": "add", "path": "/rescue_interface", "value": rescue_interface}]).status_code == 200
    assert api.put(f"/v1/nodes/{node}/states/provision",
                   json={"target": "active"}).status_code == 202
    wait_state(api, node, "active")
    return node


def provision(api: httpx.Client, node: str, **body: Any) -> httpx.Response:
    return api.put(f"/v1/nodes/{node}/states/provision", json=body)


def test_rescue_and_unrescue_on_fake_hardware(served: ServedApi) -> None:
    api = served.client
    node = active_node(api, "fake")
    assert fault(provision(api, node, target="rescue")) == (
        'A non-empty "rescue_password" is required when setting target provision state to '
        "rescue")
    assert fault(provision(api, node, target="rescue", rescue_password="  ")).startswith(
        'A non-empty "rescue_password"')
    assert fault(provision(api, node, target="rebuild", rescue_password="pw")) == (
        '"rescue_password" is only valid when setting target provision state to rescue')
    assert provision(api, node, target="rescue", rescue_password="pw").status_code == 202
    rescued = wait_state(api, node, "rescue")
    assert rescued["instance_info"]["rescue_password"] == "******"
    assert rescued["instance_info"]["hashed_rescue_password"] == "******"
    with served.manager.db.session() as session:
        info = session.scalar(select(Node.instance_info).where(Node.uuid == node))
    assert info["rescue_password"] == "pw"
    assert info["hashed_rescue_password"].startswith("$6$")
    assert sha512_crypt.verify("pw", info["hashed_rescue_password"])
    # Rescue again from rescue (a new password), then unrescue: active, password forgotten.
    assert provision(api, node, target="rescue", rescue_password="other").status_code == 202
    wait_state(api, node, "rescue")
    assert provision(api, node, target="unrescue").status_code == 202
    back = wait_state(api, node, "active")
    assert "rescue_password" not in back["instance_info"]
    assert "hashed_rescue_password" not in back["instance_info"]
    assert fault(provision(api, node, target="unrescue")).startswith(
        'The requested action "unrescue" can not be performed on node')
    assert "not valid at API version 1.37" in fault(api.put(
        f"/v1/nodes/{node}/states/provision", json={"target": "rescue", "rescue_password": "x"},
        headers={"X-OpenStack-Ironic-API-Version": "1.37"}))


def test_no_rescue_interface_and_maintenance_refuse(served: ServedApi) -> None:
    api = served.client
    node = active_node(api, "no-rescue")
    assert fault(provision(api, node, target="rescue", rescue_password="pw")) == (
        f"Failed to rescue instance None for node {node}: Validation failed: Driver "
        "fake-hardware does not support rescue (disabled or not implemented).")
    shown = api.get(f"/v1/nodes/{node}").json()
    assert shown["provision_state"] == "active"
    assert "rescue_password" not in shown["instance_info"]
    assert api.put(f"/v1/nodes/{node}/maintenance", json={}).status_code == 202
    assert "maintenance mode" in fault(provision(api, node, target="rescue",
                                                 rescue_password="pw"))


# -- the agent rescue interface's states, without its agent ----------------------------------


@pytest.fixture
def waiting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApi]:
    """A stack whose general callback timeout is short: rescue wait keeps its own."""
    with served_sqlite_api(tmp_path_factory.mktemp("rescue-wait"),
                           conductor={"callback_timeout_s": 60}) as stack:
        yield stack


def backdate(stack: ServedApi, node: str, seconds: float) -> None:
    with stack.manager.db.session() as session:
        row = session.scalar(select(Node).where(Node.uuid == node))
        assert row is not None
        row.provision_updated_at = utcnow() - timedelta(seconds=seconds)
        session.commit()


def stored_instance_info(stack: ServedApi, node: str) -> dict[str, Any]:
    with stack.manager.db.session() as session:
        return dict(session.scalar(select(Node.instance_info).where(Node.uuid == node)) or {})


def test_agent_rescue_waits_for_its_agent_and_times_out_after_its_own_setting(
        waiting: ServedApi) -> None:
    api = waiting.client
    periodic = PeriodicTasks(waiting.manager)
    node = active_node(api, "agent")
    assert fault(provision(api, node, target="rescue", rescue_password=" ")).startswith(
        'A non-empty "rescue_password"')
    assert provision(api, node, target="rescue", rescue_password="pw").status_code == 202
    shown = wait_state(api, node, "rescue wait")
    assert shown["target_provision_state"] == "rescue" and shown["power_state"] == "power on"
    assert stored_instance_info(waiting, node)["rescue_password"] == "pw"
    backdate(waiting, node, 600)  # past the general callback timeout, not rescue wait's
    assert periodic.fail_callback_timeouts() == 0
    backdate(waiting, node, 1800 + 60)
    assert periodic.fail_callback_timeouts() == 1
    failed = wait_state(api, node, "rescue failed")
    assert failed["last_error"] == (
        "Timeout reached while waiting for rescue ramdisk callback for node")
    assert failed["power_state"] == "power off" and failed["target_provision_state"] == "rescue"
    assert not {"rescue_password", "hashed_rescue_password"} & set(
        stored_instance_info(waiting, node))

    # From rescue failed: rescue again, abort it (the password goes), then unrescue.
    assert provision(api, node, target="rescue", rescue_password="again").status_code == 202
    wait_state(api, node, "rescue wait")
    assert provision(api, node, target="abort").status_code == 202
    aborted = wait_state(api, node, "rescue failed")
    assert aborted["last_error"] == "Rescue was aborted by the user."
    assert "rescue_password" not in stored_instance_info(waiting, node)
    assert provision(api, node, target="unrescue").status_code == 202
    back = wait_state(api, node, "active")
    assert back["last_error"] is None and back["power_state"] == "power on"


def test_a_rescue_callback_timeout_of_zero_never_fails_rescue_wait(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    with served_sqlite_api(tmp_path_factory.mktemp("rescue-no-timeout"),
                           conductor={"rescue_callback_timeout_s": 0}) as stack:
        node = active_node(stack.client, "agent")
        assert provision(stack.client, node, target="rescue",
                         rescue_password="pw").status_code == 202
        wait_state(stack.client, node, "rescue wait")
        backdate(stack, node, 10 * 86400)
        assert PeriodicTasks(stack.manager).fail_callback_timeouts() == 0
        assert stack.client.get(f"/v1/nodes/{node}").json()["provision_state"] == "rescue wait"
