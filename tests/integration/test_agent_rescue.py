"""Rescue with the real agent (the ``agent`` rescue interface, API 1.38).

- The agent's ``rescue.finalize_rescue`` as a process: the hash Ironic sends becomes the
  ``rescue`` user's shadow entry under a root the test gives (never this machine's
  /etc/shadow), checked with Debian's ``openssl passwd -6`` and with busybox's crypt (the
  ramdisk's ``login``); then the agent serves no API and
  sends no heartbeat, and a restarted agent stays quiet.
- The whole rescue through the real API and conductor (fake-hardware, SQLite) with the real
  agent as the rescue ramdisk's: ``rescue wait`` → heartbeat → ``rescue`` → unrescue →
  ``active``, the password in no API answer, log line, error or history.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from passlib.hash import sha512_crypt
from sqlalchemy import select

from services.common.models import Node, NodeHistory
from tests.integration.test_agent_harness import (
    RAMDISK_PYTHON,
    REPO,
    FakeApi,
    RunningAgent,
    fake_api_fixture,  # noqa: F401 (the fake_api fixture)
    running_agent,
)
from tests.support.api_stack import ServedApi, served_sqlite_api, wait_state
from tests.support.peers_fixtures import IpmiPeers
from tests.support.polling import eventually
from tests.support.procfs import stop_process
from tests.support.static_http import serving_directory

pytestmark = pytest.mark.integration

PASSWORD = "Rescue-me-7f3a9"
OTHER_SHADOW = "root:*:19000:0:99999:7:::"


def openssl_hash(password: str, salt: str) -> str:
    """Debian's own sha512-crypt of ``password`` (what login checks it against)."""
    return subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"],
                          input=password, capture_output=True, text=True,
                          check=True).stdout.strip()


def busybox_hash(password: str, salt: str) -> str:
    """The same with busybox's crypt: what the ramdisk's busybox ``login`` checks it with."""
    return subprocess.run(["busybox", "mkpasswd", "-m", "sha512", password, salt],
                          capture_output=True, text=True, check=True).stdout.strip()


def shadow_entry(root: Path) -> list[str]:
    lines = (root / "etc" / "shadow").read_text().splitlines()
    return [line for line in lines if line.startswith("rescue:")]


def check_rescue_password(root: Path, password: str) -> str:
    """The rescue user's hash under ``root``, checked to be ``password``'s."""
    (entry,) = shadow_entry(root)
    hashed = entry.split(":")[1]
    salt = hashed.split("$")[2]
    assert hashed.startswith("$6$") and openssl_hash(password, salt) == hashed
    assert busybox_hash(password, salt) == hashed
    assert openssl_hash(password + "x", salt) != hashed
    return hashed


@pytest.fixture
def rescue_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "shadow").write_text(f"{OTHER_SHADOW}\nrescue:!:1:0:99999:7:::\n")
    return root


def rescue_flags(rescue_root: Path, trace: str = "login-offered") -> list[str]:
    """The rescue root, and a login prompt that only leaves a trace (never a getty here)."""
    return ["--rescue-root", str(rescue_root), "--rescue-login-command",
            f"touch {rescue_root.parent / trace}"]


@pytest.fixture
def agent(fake_api: FakeApi, tmp_path: Path, rescue_root: Path) -> Iterator[RunningAgent]:
    with running_agent(fake_api, tmp_path, [], extra=rescue_flags(rescue_root)) as running:
        yield running


# -- the agent's command -------------------------------------------------------------------


def test_finalize_rescue_sets_the_rescue_password_then_the_agent_goes_quiet(
        agent: RunningAgent, rescue_root: Path, tmp_path: Path) -> None:
    hashed = sha512_crypt.using(rounds=5000).hash(PASSWORD)  # as the conductor sends it
    status, answer = agent.command("rescue.finalize_rescue",
                                   {"rescue_password": hashed, "hashed": True})
    assert status == 200 and answer["command_status"] == "SUCCEEDED", answer
    assert check_rescue_password(rescue_root, PASSWORD) == hashed
    shadow = (rescue_root / "etc" / "shadow").read_text().splitlines()
    assert shadow[0] == OTHER_SHADOW and len(shadow) == 2  # the old entry replaced, not added
    assert (rescue_root / "etc" / "shadow").stat().st_mode & 0o777 == 0o600
    assert any(line.startswith("rescue:x:") for line in
               (rescue_root / "etc" / "passwd").read_text().splitlines())

    # The answer left; then no API (the tenant network must not reach it), no heartbeats.
    def api_closed() -> bool:
        try:
            agent.request("GET", "/v1/commands/")
        except (urllib.error.URLError, ConnectionError):
            return True
        return False

    eventually(api_closed, timeout=15, what="the agent to close its API")
    beats = len(agent.node.heartbeats)
    time.sleep(1.0)  # five heartbeat intervals
    assert len(agent.node.heartbeats) == beats
    assert agent.process.poll() is None  # it stays (init would restart an agent that ends)
    eventually(lambda: (tmp_path / "login-offered").exists(), timeout=15,
               what="the rescue user's login prompt")
    assert hashed not in agent.logs()

    # A restart of the agent in the rescued ramdisk looks nothing up.
    cmdline = tmp_path / "cmdline"
    again = subprocess.Popen(
        [RAMDISK_PYTHON, "-m", "agent.main", "--cmdline-file", str(cmdline), "--port", "0",
         "--listen-host", "127.0.0.1", "--lldp-interface", "lo", "--lookup-retry", "0.2",
         *rescue_flags(rescue_root, "login-offered-again")],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    try:
        eventually(lambda: (tmp_path / "login-offered-again").exists(), timeout=15,
                   what="the login prompt of the restarted agent")
        assert again.poll() is None
        assert len(agent.node.heartbeats) == beats
    finally:
        again.terminate()
        output = again.communicate(timeout=10)[0].decode()
    assert "this ramdisk is rescued" in output, output


@pytest.mark.parametrize("params", [
    {"rescue_password": PASSWORD},
    {"rescue_password": PASSWORD, "hashed": False},
    {"rescue_password": "$6$salt$" + "a" * 86 + ":0:0:::\nroot::", "hashed": True},
    {"rescue_password": f"$6${PASSWORD}", "hashed": True},
], ids=["default-plain", "plain", "shadow-injection", "not-a-hash"])
def test_finalize_rescue_refuses_what_is_not_a_crypt_hash_without_quoting_it(
        agent: RunningAgent, rescue_root: Path, params: dict[str, object]) -> None:
    before = (rescue_root / "etc" / "shadow").read_text()
    status, answer = agent.command("rescue.finalize_rescue", params)
    assert status == 400, answer
    assert PASSWORD not in answer["error"] and "root::" not in answer["error"]
    assert (rescue_root / "etc" / "shadow").read_text() == before
    assert not (rescue_root / "etc" / ".rescued").exists()
    assert PASSWORD not in agent.logs()


# -- the whole rescue: API, conductor, agent -----------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedApi]:
    with served_sqlite_api(tmp_path, deploy={"agent_heartbeat_timeout_s": 3}) as stack:
        yield stack


def active_node(api: httpx.Client, mac: str) -> str:
    node = str(api.post("/v1/nodes", json={
        "driver": "fake-hardware", "rescue_interface": "agent",
        "network_interface": "flat"}).json()["uuid"])
    assert api.post("/v1/ports", json={"node_uuid": node, "address": mac}).status_code == 201
    for target in ("manage", "provide", "active"):
        assert api.put(f"/v1/nodes/{node}/states/provision",
                       json={"target": target}).status_code == 202
        wait_state(api, node, {"manage": "manageable", "provide": "available"}.get(target,
                                                                                 target))
    return node


@pytest.fixture
def rescue_agent(served: ServedApi, tmp_path: Path, rescue_root: Path
                 ) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """(the API's URL, the agents the test started): stopped at the end."""
    processes: list[subprocess.Popen[bytes]] = []
    yield str(served.client.base_url).rstrip("/"), processes
    for process in processes:
        stop_process(process, 10)


def boot_rescue_ramdisk(api_url: str, node: str, mac: str, workdir: Path, rescue_root: Path,
                        processes: list[subprocess.Popen[bytes]]) -> Path:
    """What the machine does once the conductor powered it on into the ramdisk."""
    cmdline = workdir / "cmdline"
    cmdline.write_text(f"enclume.api_url={api_url} enclume.node={node}\n")
    log = workdir / "rescue-agent.log"
    with log.open("wb") as out:
        processes.append(subprocess.Popen(
            [RAMDISK_PYTHON, "-m", "agent.main", "--cmdline-file", str(cmdline),
             "--mac", mac, "--port", "0", "--listen-host", "127.0.0.1",
             "--advertise-host", "127.0.0.1", "--lldp-interface", "lo",
             "--heartbeat-interval", "0.3", "--lookup-retry", "0.2",
             "--power-action-delay", "0.2", *rescue_flags(rescue_root)],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=out,
            stderr=subprocess.STDOUT))
    return log


def test_rescue_and_unrescue_with_the_real_agent(
        served: ServedApi, rescue_agent: tuple[str, list[subprocess.Popen[bytes]]],
        rescue_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    api = served.client
    api_url, processes = rescue_agent
    mac = "52:54:00:5e:00:01"
    node = active_node(api, mac)
    assert api.put(f"/v1/nodes/{node}/states/provision",
                   json={"target": "rescue", "rescue_password": PASSWORD}).status_code == 202
    waiting = wait_state(api, node, "rescue wait")
    assert waiting["target_provision_state"] == "rescue"
    assert waiting["instance_info"]["rescue_password"] == "******"
    log = boot_rescue_ramdisk(api_url, node, mac, tmp_path, rescue_root, processes)
    try:
        rescued = wait_state(api, node, "rescue")
    except AssertionError:
        raise AssertionError(f"not rescued; the agent's log:\n{log.read_text()}") from None
    assert rescued["last_error"] is None and rescued["power_state"] == "power on"
    hashed = check_rescue_password(rescue_root, PASSWORD)
    with served.manager.db.session() as session:
        stored = session.scalar(select(Node).where(Node.uuid == node))
        assert stored is not None
        info, internal = dict(stored.instance_info), dict(stored.driver_internal_info)
        history = " ".join(session.scalars(select(NodeHistory.event)).all())
    assert "rescue_password" not in info and "hashed_rescue_password" not in info
    assert not {"agent_url", "agent_secret_token"} & set(internal)
    assert processes[0].poll() is None  # the rescued ramdisk's agent stays, quiet

    assert api.put(f"/v1/nodes/{node}/states/provision",
                   json={"target": "unrescue"}).status_code == 202
    back = wait_state(api, node, "active")
    assert back["last_error"] is None and back["power_state"] == "power on"
    every_text = (str(api.get(f"/v1/nodes/{node}").json()) + history + caplog.text
                  + log.read_text())
    assert PASSWORD not in every_text and hashed not in every_text


def test_an_agent_that_cannot_set_the_password_fails_the_rescue_and_forgets_it(
        served: ServedApi, rescue_agent: tuple[str, list[subprocess.Popen[bytes]]],
        tmp_path: Path) -> None:
    api = served.client
    api_url, processes = rescue_agent
    mac = "52:54:00:5e:00:02"
    node = active_node(api, mac)
    broken_root = tmp_path / "broken-root"
    broken_root.mkdir()
    (broken_root / "etc").write_text("not a directory\n")  # the agent cannot write etc/shadow
    assert api.put(f"/v1/nodes/{node}/states/provision",
                   json={"target": "rescue", "rescue_password": PASSWORD}).status_code == 202
    wait_state(api, node, "rescue wait")
    boot_rescue_ramdisk(api_url, node, mac, tmp_path, broken_root, processes)
    failed = wait_state(api, node, "rescue failed")
    assert failed["last_error"].startswith(
        "Node failed to perform rescue operation: Agent returned bad result for command "
        f"finalize_rescue: cannot set the password of the rescue user under {broken_root}")
    assert failed["power_state"] == "power off"
    with served.manager.db.session() as session:
        stored = session.scalar(select(Node).where(Node.uuid == node))
        assert stored is not None
        assert not {"rescue_password", "hashed_rescue_password"} & set(stored.instance_info)
        assert not {"agent_url", "agent_secret_token"} & set(stored.driver_internal_info)
    assert PASSWORD not in str(failed)


@pytest.fixture
def deploy_files(tmp_path: Path) -> Iterator[str]:
    """A web server of a deploy kernel and ramdisk (the ipxe boot checks they answer)."""
    for name in ("kernel", "ramdisk"):
        (tmp_path / name).write_bytes(name.encode())
    with serving_directory(tmp_path) as url:
        yield url


def test_a_disable_power_off_node_is_reset_never_powered_off_by_rescue_abort_and_unrescue(
        served: ServedApi, ipmi_fleet: IpmiPeers, deploy_files: str) -> None:
    """API 1.95, as Ironic's AgentRescue.rescue/unrescue (drivers/utils.py power_off_and_on:
    one reboot, no power-off) and rescuing_error_handler (its power-off refused): a real
    IPMI BMC (emulated) sees resets only."""
    api = served.client
    port, machine = ipmi_fleet.bmcs[0]
    machine.power_on()
    created = api.post("/v1/nodes", json={
        "driver": "ipmi", "rescue_interface": "agent", "disable_power_off": True,
        "driver_info": {**ipmi_fleet.driver_info(port),
                        "deploy_kernel": f"{deploy_files}/kernel",
                        "deploy_ramdisk": f"{deploy_files}/ramdisk"}})
    assert created.status_code == 201, created.text
    node = created.json()["uuid"]
    assert api.post("/v1/ports", json={"node_uuid": node,
                                       "address": "52:54:00:5e:00:95"}).status_code == 201
    with served.manager.db.session() as session:  # deployed earlier
        stored = session.scalar(select(Node).where(Node.uuid == node))
        assert stored is not None
        stored.provision_state, stored.power_state = "active", "power on"

    def settled(state: str) -> dict[str, Any]:
        return eventually(lambda: (shown := api.get(f"/v1/nodes/{node}").json())[
            "provision_state"] == state and shown["target_power_state"] is None and shown,
            60, f"the node {state}")

    rescue = api.put(f"/v1/nodes/{node}/states/provision",
                     json={"target": "rescue", "rescue_password": PASSWORD})
    assert rescue.status_code == 202, rescue.text
    assert settled("rescue wait")["power_state"] == "power on"
    assert api.put(f"/v1/nodes/{node}/states/provision",
                   json={"target": "abort"}).status_code == 202
    assert settled("rescue failed")["power_state"] == "power on"
    assert api.put(f"/v1/nodes/{node}/states/provision",
                   json={"target": "unrescue"}).status_code == 202
    back = settled("active")
    assert back["last_error"] is None and back["power_state"] == "power on"
    power = [a for a in machine.actions if a.startswith("power")]
    assert power == ["power_on", "power_reset", "power_reset"], power
    assert machine.power_state() == "on"
