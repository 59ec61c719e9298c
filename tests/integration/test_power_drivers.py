"""The ipmi, redfish and wol hardware types driven through enclume-aio's API, against real peers.

IPMI: the pyghmi-based BMC emulator, cross-checked with ``ipmitool -I lanplus``. Redfish:
sushy-emulator (``--fake``), over HTTP and HTTPS with a per-node CA. Wake-on-LAN: a listener in a
network namespace that must receive the node's magic packet. Faults: BMC down, slow, wrong
password, back again.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from services.common.models import utcnow
from tests.support.aio import Server, running_aio
from tests.support.peers_fixtures import IpmiPeers, RedfishPeers
from tests.support.polling import eventually
from tests.support.wol_listener import WolListener

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEADERS = {"X-OpenStack-Ironic-API-Version": "1.73"}
IPMI_TIMEOUT_S = 3
SETTINGS = {
    "ENCLUME_ENABLED_HARDWARE_TYPES": '["ipmi", "redfish", "wol", "fake-hardware"]',
    "ENCLUME_PERIODIC_INTERVAL_S": "0.3",
    "ENCLUME_POWER_SYNC_INTERVAL_S": "0.5",
    "ENCLUME_POWER_SYNC_MAX_RETRIES": "2",
    "ENCLUME_POWER_POLL_INTERVAL_S": "0.2",
    # sushy-emulator's fake systems change power state 1-11 s after the request.
    "ENCLUME_POWER_STATE_CHANGE_TIMEOUT_S": "20",
    "ENCLUME_IPMI_TIMEOUT_S": str(IPMI_TIMEOUT_S),
    "ENCLUME_REDFISH_TIMEOUT_S": "5",
    "ENCLUME_DEFAULT_BOOT_MODE": "bios",
}


@pytest.fixture(scope="module")
def aio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_aio(tmp_path_factory.mktemp("power"), env=SETTINGS) as server:
        yield server


@pytest.fixture
def api(aio: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=aio.url, headers=HEADERS, timeout=30) as client:
        yield client




def enroll(api: httpx.Client, driver: str, driver_info: dict[str, Any],
           macs: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
    response = api.post("/v1/nodes", json={"driver": driver, "driver_info": driver_info,
                                           **fields})
    assert response.status_code == 201, response.text
    node: dict[str, Any] = response.json()
    for mac in macs:
        created = api.post("/v1/ports", json={"node_uuid": node["uuid"], "address": mac})
        assert created.status_code == 201, created.text
    return node


def node_of(api: httpx.Client, uuid: str) -> dict[str, Any]:
    response = api.get(f"/v1/nodes/{uuid}")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def manage(api: httpx.Client, uuid: str, reach: str = "manageable",
           timeout: float = 30) -> dict[str, Any]:
    response = api.put(f"/v1/nodes/{uuid}/states/provision", json={"target": "manage"})
    assert response.status_code == 202, response.text
    node: dict[str, Any] = eventually(lambda: (n := node_of(api, uuid))["provision_state"] in (
        "manageable", "enroll") and n["target_provision_state"] is None and n,
        timeout, "verify finished")
    if node["provision_state"] != reach:  # shown with the failing assertion (CI saw one once)
        print(f"verify of {uuid} ended in {node['provision_state']}: {node['last_error']}")
    return node


def set_power(api: httpx.Client, uuid: str, target: str, timeout: float = 30) -> dict[str, Any]:
    response = api.put(f"/v1/nodes/{uuid}/states/power", json={"target": target})
    assert response.status_code == 202, response.text
    return eventually(lambda: (n := node_of(api, uuid))["target_power_state"] is None and n,
                      timeout, f"power {target} finished")


def ipmitool(peers: IpmiPeers, port: int, *command: str) -> str:
    result = subprocess.run(
        ["ipmitool", "-I", "lanplus", "-C", "3", "-H", peers.fleet.host, "-p", str(port),
         "-U", peers.username, "-P", peers.password, "-N", "1", "-R", "1", *command],
        capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


# -- IPMI ----------------------------------------------------------------------------------


def test_ipmi_power_and_boot_device_agree_with_ipmitool(api: httpx.Client, aio: Server,
                                                        ipmi_fleet: IpmiPeers) -> None:
    port, machine = ipmi_fleet.bmcs[0]
    node = enroll(api, "ipmi", ipmi_fleet.driver_info(port))
    validation = api.get(f"/v1/nodes/{node['uuid']}/validate").json()
    assert validation["power"] == {"result": True} and validation["management"] == {
        "result": True}

    managed = manage(api, node["uuid"])
    assert managed["provision_state"] == "manageable", managed["last_error"]
    assert managed["power_state"] == "power off"

    assert set_power(api, node["uuid"], "power on")["power_state"] == "power on"
    assert machine.power_state() == "on"
    assert "Chassis Power is on" in ipmitool(ipmi_fleet, port, "power", "status")

    ipmitool(ipmi_fleet, port, "power", "off")  # someone switches it off behind our back
    eventually(lambda: node_of(api, node["uuid"])["power_state"] == "power off", 60,
               "power sync noticed the out-of-band power off")

    assert set_power(api, node["uuid"], "rebooting")["power_state"] == "power on"
    assert machine.power_state() == "on"
    assert set_power(api, node["uuid"], "power off")["power_state"] == "power off"
    assert "Chassis Power is off" in ipmitool(ipmi_fleet, port, "power", "status")

    response = api.put(f"/v1/nodes/{node['uuid']}/management/boot_device",
                       json={"boot_device": "pxe", "persistent": True})
    assert response.status_code == 204, response.text
    assert api.get(f"/v1/nodes/{node['uuid']}/management/boot_device").json() == {
        "boot_device": "pxe", "persistent": True}
    assert "Force PXE" in ipmitool(ipmi_fleet, port, "chassis", "bootparam", "get", "5")
    setting = machine.boot_setting()
    assert (setting.device, setting.persistent, setting.uefi) == ("pxe", True, False)

    patched = api.patch(f"/v1/nodes/{node['uuid']}", json=[
        {"op": "add", "path": "/properties/capabilities", "value": "boot_mode:uefi"}])
    assert patched.status_code == 200, patched.text
    response = api.put(f"/v1/nodes/{node['uuid']}/management/boot_device",
                       json={"boot_device": "disk", "persistent": False})
    assert response.status_code == 204, response.text
    setting = machine.boot_setting()
    assert (setting.device, setting.persistent, setting.uefi) == ("disk", False, True)
    ipmitool(ipmi_fleet, port, "chassis", "bootdev", "disk")
    assert api.get(f"/v1/nodes/{node['uuid']}/management/boot_device").json() == {
        "boot_device": "disk", "persistent": False}

    shown = json.dumps(node_of(api, node["uuid"]))
    assert ipmi_fleet.password not in shown and "******" in shown
    assert ipmi_fleet.password not in aio.log_text()


def test_ipmi_validate_names_missing_and_malformed_driver_info(api: httpx.Client) -> None:
    node = enroll(api, "ipmi", {"ipmi_username": "admin"})
    validation = api.get(f"/v1/nodes/{node['uuid']}/validate").json()
    assert validation["power"]["result"] is False
    assert validation["power"]["reason"] == (
        "Missing the following IPMI credentials in node's driver_info: ipmi_address.")
    patched = api.patch(f"/v1/nodes/{node['uuid']}", json=[
        {"op": "add", "path": "/driver_info/ipmi_address", "value": "127.0.0.1"},
        {"op": "add", "path": "/driver_info/ipmi_priv_level", "value": "ROOT"}])
    assert patched.status_code == 200, patched.text
    reason = api.get(f"/v1/nodes/{node['uuid']}/validate").json()["management"]["reason"]
    assert "ipmi_priv_level must be one of CALLBACK, USER, OPERATOR, ADMINISTRATOR" in reason

    response = api.put(f"/v1/nodes/{node['uuid']}/states/power", json={"target": "power on"})
    assert response.status_code == 400
    assert "ipmi_priv_level" in response.json()["error_message"]


def test_ipmi_wrong_password_is_a_clear_error_on_the_node(api: httpx.Client, aio: Server,
                                                          ipmi_fleet: IpmiPeers) -> None:
    port, _machine = ipmi_fleet.bmcs[0]
    wrong = {**ipmi_fleet.driver_info(port), "ipmi_password": "not-the-password-7f3a"}
    node = enroll(api, "ipmi", wrong)
    verified = manage(api, node["uuid"])
    assert verified["provision_state"] == "enroll"
    assert "IPMI authentication failed" in verified["last_error"]
    assert "ipmi_password" in verified["last_error"]
    assert "not-the-password-7f3a" not in verified["last_error"]
    assert "not-the-password-7f3a" not in aio.log_text()


def history_events(aio: Server, uuid: str) -> list[str]:
    """The node's history (the API has no history endpoint below microversion 1.78)."""
    with sqlite3.connect(Path(aio.data_dir) / "enclume.sqlite") as db:
        rows = db.execute("SELECT h.event FROM node_history h JOIN nodes n ON n.id = h.node_id "
                          "WHERE n.uuid = ? ORDER BY h.id", (uuid,)).fetchall()
    return [row[0] for row in rows]


def test_ipmi_bmc_down_puts_node_in_maintenance_and_back(api: httpx.Client, aio: Server,
                                                         ipmi_fleet: IpmiPeers) -> None:
    port, _machine = ipmi_fleet.bmcs[1]
    node = enroll(api, "ipmi", ipmi_fleet.driver_info(port))
    assert manage(api, node["uuid"])["provision_state"] == "manageable"

    ipmi_fleet.fleet.set_down(port)
    failed = eventually(lambda: (n := node_of(api, node["uuid"]))["maintenance"] and n,
                        40, "maintenance after repeated power sync failures")
    assert failed["fault"] == "power failure"
    assert "Power state sync failed 2 times in a row" in failed["maintenance_reason"]
    assert "127.0.0.1" in failed["maintenance_reason"]

    ipmi_fleet.fleet.restore(port)
    recovered = eventually(lambda: not (n := node_of(api, node["uuid"]))["maintenance"] and n,
                           30, "maintenance ended once the BMC answers")
    assert recovered["fault"] is None and recovered["maintenance_reason"] is None
    assert recovered["power_state"] == "power off"
    events = history_events(aio, node["uuid"])
    assert any("maintenance for power failure ended" in e for e in events), events


def test_ipmi_slow_bmc_works_and_a_hung_one_frees_the_worker(api: httpx.Client,
                                                             ipmi_fleet: IpmiPeers) -> None:
    (slow_port, slow_machine), (hung_port, _) = ipmi_fleet.bmcs
    slow = enroll(api, "ipmi", ipmi_fleet.driver_info(slow_port))
    hung = enroll(api, "ipmi", ipmi_fleet.driver_info(hung_port))
    assert manage(api, slow["uuid"])["provision_state"] == "manageable"
    assert manage(api, hung["uuid"])["provision_state"] == "manageable"

    ipmi_fleet.fleet.set_slow(slow_port, 0.3)
    ipmi_fleet.fleet.set_slow(hung_port, IPMI_TIMEOUT_S * 4)
    started = time.monotonic()
    response = api.put(f"/v1/nodes/{hung['uuid']}/states/power", json={"target": "power on"})
    assert response.status_code == 202
    assert set_power(api, slow["uuid"], "power on")["power_state"] == "power on"
    assert slow_machine.power_state() == "on"

    stuck = eventually(lambda: (n := node_of(api, hung["uuid"]))["target_power_state"] is None
                       and n, IPMI_TIMEOUT_S * 4, "the hung power change gave up")
    assert time.monotonic() - started < IPMI_TIMEOUT_S * 4
    assert f"did not answer within {IPMI_TIMEOUT_S} s" in stuck["last_error"]
    assert stuck["power_state"] == "power off"


# -- Redfish -------------------------------------------------------------------------------


def test_redfish_power_and_boot_device(api: httpx.Client, aio: Server,
                                       redfish_emulator: RedfishPeers) -> None:
    system = redfish_emulator.emulator.system_ids[0]
    node = enroll(api, "redfish", redfish_emulator.driver_info(system),
                  properties={"capabilities": "boot_mode:uefi"})
    assert manage(api, node["uuid"])["power_state"] == "power off"

    assert set_power(api, node["uuid"], "power on", timeout=40)["power_state"] == "power on"
    response = api.put(f"/v1/nodes/{node['uuid']}/management/boot_device",
                       json={"boot_device": "pxe", "persistent": True})
    assert response.status_code == 204, response.text
    with httpx.Client(auth=(redfish_emulator.username, redfish_emulator.password)) as bmc:
        seen = bmc.get(redfish_emulator.emulator.address
                       + redfish_emulator.emulator.system_path(system)).json()
    assert seen["PowerState"] == "On"
    assert seen["Boot"]["BootSourceOverrideTarget"] == "Pxe"
    assert seen["Boot"]["BootSourceOverrideEnabled"] == "Continuous"
    assert seen["Boot"]["BootSourceOverrideMode"] == "UEFI"
    assert api.get(f"/v1/nodes/{node['uuid']}/management/boot_device").json()[
        "boot_device"] == "pxe"
    assert redfish_emulator.password not in aio.log_text()


def test_redfish_soft_reboot_of_a_node_never_powered_off_is_one_reset(
        api: httpx.Client, make_redfish_emulator: Callable[..., RedfishPeers]) -> None:
    """API 1.95: a soft reboot of a disable_power_off node is the BMC's own soft reboot (as
    Ironic's RedfishPower: GracefulRestart), never a GracefulShutdown then On: one Reset
    request (the emulator's log has no bodies, so its ResetType is not read here)."""
    from tests.support.redfish_emulator import fake_systems

    peers = make_redfish_emulator(fake_systems(1, power_state="On"))
    node = enroll(api, "redfish", peers.driver_info(peers.emulator.system_ids[0]))["uuid"]
    assert manage(api, node)["power_state"] == "power on"
    kept_on = [{"op": "replace", "path": "/disable_power_off", "value": True}]
    patched = api.patch(f"/v1/nodes/{node}", json=kept_on,
                        headers={"X-OpenStack-Ironic-API-Version": "1.95"})
    assert patched.status_code == 200, patched.text
    logged = len(peers.emulator.log_file.read_text())
    rebooted = set_power(api, node, "soft rebooting", timeout=40)
    assert rebooted["power_state"] == "power on" and rebooted["last_error"] is None
    resets = [line for line in peers.emulator.log_file.read_text()[logged:].splitlines()
              if "ComputerSystem.Reset" in line]
    assert len(resets) == 1, resets


def test_redfish_without_system_id_uses_the_only_system_or_says_which(
        api: httpx.Client, make_redfish_emulator: Callable[..., RedfishPeers]) -> None:
    from tests.support.redfish_emulator import fake_systems

    several = make_redfish_emulator(fake_systems(2))
    info = {**several.driver_info(several.emulator.system_ids[0])}
    info.pop("redfish_system_id")
    verified = manage(api, enroll(api, "redfish", info)["uuid"])
    assert verified["provision_state"] == "enroll"
    assert "manages 2 systems" in verified["last_error"]
    assert "set redfish_system_id" in verified["last_error"]

    single = make_redfish_emulator(fake_systems(1))
    info = {**single.driver_info(single.emulator.system_ids[0])}
    info.pop("redfish_system_id")
    assert manage(api, enroll(api, "redfish", info)["uuid"])["provision_state"] == "manageable"


def test_redfish_tls_is_verified_with_the_node_ca(api: httpx.Client,
                                                  redfish_emulator_tls: RedfishPeers) -> None:
    system = redfish_emulator_tls.emulator.system_ids[0]
    trusted = enroll(api, "redfish", redfish_emulator_tls.driver_info(system))
    assert manage(api, trusted["uuid"])["provision_state"] == "manageable"

    untrusted_info = redfish_emulator_tls.driver_info(system)
    untrusted_info.pop("redfish_verify_ca")  # verification stays on, with the system CAs
    untrusted = manage(api, enroll(api, "redfish", untrusted_info)["uuid"])
    assert untrusted["provision_state"] == "enroll"
    assert "TLS certificate could not be verified" in untrusted["last_error"]


def test_redfish_wrong_password_and_bmc_down(api: httpx.Client, aio: Server,
                                            redfish_emulator: RedfishPeers) -> None:
    system = redfish_emulator.emulator.system_ids[1]
    wrong = {**redfish_emulator.driver_info(system), "redfish_password": "wrong-9c2e1"}
    refused = manage(api, enroll(api, "redfish", wrong)["uuid"])
    assert refused["provision_state"] == "enroll"
    assert "Redfish authentication failed" in refused["last_error"]
    assert "wrong-9c2e1" not in aio.log_text()

    node = enroll(api, "redfish", redfish_emulator.driver_info(system))
    assert manage(api, node["uuid"])["provision_state"] == "manageable"
    redfish_emulator.emulator.stop()
    failed = eventually(lambda: (n := node_of(api, node["uuid"]))["maintenance"] and n,
                        60, "maintenance after the Redfish BMC went away")
    assert failed["fault"] == "power failure"
    redfish_emulator.emulator.start()
    eventually(lambda: not node_of(api, node["uuid"])["maintenance"], 60,
               "maintenance ended when the Redfish BMC came back")


# -- Wake-on-LAN ---------------------------------------------------------------------------


class AgentStandIn(BaseHTTPRequestHandler):
    """Records commands as the deploy ramdisk's agent (issue #6) will receive them; after
    `standby.power_off` it stops answering, as the agent does when its machine goes off."""

    received: ClassVar[list[tuple[str, dict[str, Any], str | None]]] = []

    def _answer(self, document: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(document)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append((self.path, body, self.headers.get("X-Agent-Token")))
        self._answer(b'{"command_status": "SUCCEEDED"}')
        if body.get("name") == "standby.power_off":
            threading.Thread(target=self.server.shutdown).start()

    def do_GET(self) -> None:
        self._answer(b'{"commands": []}')

    def log_message(self, *args: Any) -> None:
        pass


def write_agent_info(aio: Server, uuid: str, info: dict[str, Any]) -> None:
    """What the agent's lookup and heartbeat will record (issue #6), written directly."""
    with sqlite3.connect(Path(aio.data_dir) / "enclume.sqlite") as db:
        (current,) = db.execute("SELECT driver_internal_info FROM nodes WHERE uuid = ?",
                                (uuid,)).fetchone()
        merged = {**json.loads(current or "{}"), **info}
        db.execute("UPDATE nodes SET driver_internal_info = ? WHERE uuid = ?",
                   (json.dumps(merged), uuid))


def test_wol_wakes_with_a_magic_packet_and_never_invents_the_power_state(
        api: httpx.Client, aio: Server, wol_listener: WolListener) -> None:
    mac = "52:54:00:12:34:56"
    node = enroll(api, "wol", {"wol_host": wol_listener.broadcast, "wol_port": wol_listener.port,
                               "wol_password": "0a:0b:0c:0d:0e:0f"}, macs=(mac,))
    validation = api.get(f"/v1/nodes/{node['uuid']}/validate").json()
    assert validation["power"] == {"result": True}, validation
    managed = manage(api, node["uuid"])
    assert managed["provision_state"] == "manageable" and managed["power_state"] is None

    woken = set_power(api, node["uuid"], "power on")
    assert woken["last_error"] is None
    assert woken["power_state"] is None  # a magic packet is not acknowledged
    assert wol_listener.wait_for_magic(mac, "0a:0b:0c:0d:0e:0f", timeout=30)

    refused = set_power(api, node["uuid"], "power off")
    assert "cannot power off" in refused["last_error"]
    assert "switch it off by hand" in refused["last_error"]


def test_wol_powers_off_through_the_running_agent(api: httpx.Client, aio: Server,
                                                  wol_listener: WolListener) -> None:
    mac = "52:54:00:12:34:57"
    node = enroll(api, "wol", {"wol_host": wol_listener.broadcast,
                               "wol_port": wol_listener.port}, macs=(mac,))
    AgentStandIn.received = []
    agent = ThreadingHTTPServer(("127.0.0.1", 0), AgentStandIn)
    threading.Thread(target=agent.serve_forever, daemon=True).start()
    try:
        token = "t" * 40
        write_agent_info(aio, node["uuid"], {
            "agent_url": f"http://127.0.0.1:{agent.server_address[1]}",
            "agent_secret_token": token, "agent_last_heartbeat": utcnow().isoformat()})
        assert manage(api, node["uuid"])["power_state"] == "power on"  # the agent heartbeats
        shown = json.dumps(node_of(api, node["uuid"]))
        assert token not in shown

        set_power(api, node["uuid"], "power off")
        assert AgentStandIn.received == [
            ("/v1/commands/", {"name": "standby.power_off", "params": {}}, token)]
        assert token not in aio.log_text()
    finally:
        agent.shutdown()
        agent.server_close()


def test_soft_power_off_asks_the_os_and_a_hard_one_does_not(api: httpx.Client,
                                                            ipmi_fleet: IpmiPeers) -> None:
    from tests.support.ipmi_bmc import MemoryMachine

    # The OS of this machine takes 1.5 s to shut down after the ACPI power button.
    machine = MemoryMachine(power="on", soft_off_delay_s=1.5)
    port = ipmi_fleet.fleet.add(machine)
    node = enroll(api, "ipmi", ipmi_fleet.driver_info(port))
    assert manage(api, node["uuid"])["power_state"] == "power on"

    started = time.monotonic()
    assert set_power(api, node["uuid"], "soft power off")["power_state"] == "power off"
    assert time.monotonic() - started >= 1.5
    assert machine.power_state() == "off"

    assert set_power(api, node["uuid"], "soft rebooting")["power_state"] == "power on"
    assert machine.power_state() == "on"
    asked = len(machine.actions)
    assert set_power(api, node["uuid"], "power off")["power_state"] == "power off"
    # Not a time bound (a loaded machine can take 1.5 s for anything): what the BMC was asked.
    assert machine.actions[asked:] == ["power_off"]
