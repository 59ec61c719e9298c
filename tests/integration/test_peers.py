"""The protocol peers of the power drivers are faithful: driven by real clients.

IPMI emulator <- ipmitool -I lanplus -C 3 and pyghmi; sushy-emulator <- sushy (HTTP basic auth,
TLS with a per-emulator CA); WoL listener in a namespace <- a hand-built magic packet from the root
namespace.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sushy
from pyghmi import exceptions as pyghmi_exceptions
from pyghmi.ipmi import command as ipmi_command
from pyghmi.ipmi.private import session as pyghmi_session
from sushy import exceptions as sushy_exceptions

from tests.support import peers_fixtures
from tests.support.ipmi_bmc import BmcFleet, BootSetting, MemoryMachine
from tests.support.peers_fixtures import IpmiPeers, RedfishPeers
from tests.support.redfish_emulator import fake_systems
from tests.support.throwaway_ca import create_ca
from tests.support.wol_listener import WolListener

pytestmark = pytest.mark.integration

ipmi_fleet = peers_fixtures.ipmi_fleet
make_redfish_emulator = peers_fixtures.make_redfish_emulator
redfish_emulator = peers_fixtures.redfish_emulator
redfish_emulator_tls = peers_fixtures.redfish_emulator_tls
wol_listener = peers_fixtures.wol_listener

REPO_ROOT = Path(__file__).resolve().parents[2]
# Short ipmitool timeouts for the fault tests: 1 s per try, one retry.
QUICK_GIVE_UP = ("-N", "1", "-R", "1")
REDFISH_POWER_LANDS_WITHIN_S = 13.0
FLEET_BENCH_SIZE = 500
FLEET_CLIENT_THREADS = 8
FLEET_PROCESS_PASSWORD = "fleet-secret"
# sushy retries a failed connection server_side_retries times, server_side_retries_delay apart
# (10 x 3 s by default): one quick try for the tests that expect a failure.
GIVE_UP_AT_ONCE = {"server_side_retries": 1, "server_side_retries_delay": 0.1}


def run_ipmitool(host: str, port: int, username: str, password: str, *args: str,
                 options: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess[str], float]:
    """ipmitool -I lanplus -C 3 (password through the environment); the result and seconds."""
    if shutil.which("ipmitool") is None:
        pytest.fail("ipmitool is missing: run `make deps`")
    argv = ["ipmitool", "-I", "lanplus", "-C", "3", "-H", host, "-p", str(port),
            "-U", username, "-E", *options, *args]
    began = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, IPMI_PASSWORD=password))
    return done, time.monotonic() - began


def ipmitool(peers: IpmiPeers, port: int, *args: str, password: str | None = None,
             options: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess[str], float]:
    secret = peers.password if password is None else password
    return run_ipmitool(peers.fleet.host, port, peers.username, secret, *args, options=options)


def ipmitool_ok(peers: IpmiPeers, port: int, *args: str) -> str:
    done, _ = ipmitool(peers, port, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def pyghmi_command(peers: IpmiPeers, port: int,
                   password: str | None = None) -> ipmi_command.Command:
    secret = peers.password if password is None else password
    return ipmi_command.Command(bmc=peers.fleet.host, port=port, userid=peers.username.encode(),
                                password=secret.encode())


# --- IPMI ----------------------------------------------------------------------------------


def test_ipmitool_power_commands(ipmi_fleet: IpmiPeers) -> None:
    port, machine = ipmi_fleet.bmcs[0]
    other = ipmi_fleet.bmcs[1][1]
    assert ipmitool_ok(ipmi_fleet, port, "power", "status") == "Chassis Power is off\n"

    refused, _ = ipmitool(ipmi_fleet, port, "power", "reset")
    assert refused.returncode != 0
    assert "Command not supported in present state" in refused.stderr

    assert "Up/On" in ipmitool_ok(ipmi_fleet, port, "power", "on")
    assert ipmitool_ok(ipmi_fleet, port, "power", "status") == "Chassis Power is on\n"
    assert "Reset" in ipmitool_ok(ipmi_fleet, port, "power", "reset")
    assert "Cycle" in ipmitool_ok(ipmi_fleet, port, "power", "cycle")
    assert machine.power_state() == "on"
    assert "Soft" in ipmitool_ok(ipmi_fleet, port, "power", "soft")
    assert ipmitool_ok(ipmi_fleet, port, "power", "status") == "Chassis Power is off\n"
    assert "Down/Off" in ipmitool_ok(ipmi_fleet, port, "power", "off")

    assert isinstance(machine, MemoryMachine)
    assert machine.actions == ["power_on", "power_reset", "power_cycle", "soft_shutdown",
                               "power_off"]
    assert len(machine.boots) == 3  # on, reset, cycle
    assert other.power_state() == "off"
    assert "System Power         : off" in ipmitool_ok(ipmi_fleet, port, "chassis", "status")


def test_ipmitool_boot_device(ipmi_fleet: IpmiPeers) -> None:
    port, machine = ipmi_fleet.bmcs[0]
    ipmitool_ok(ipmi_fleet, port, "chassis", "bootdev", "pxe", "options=persistent,efiboot")
    assert machine.boot_setting() == BootSetting("pxe", persistent=True, uefi=True)
    flags = ipmitool_ok(ipmi_fleet, port, "chassis", "bootparam", "get", "5")
    assert "Boot parameter data: e004000000" in flags
    assert "Options apply to all future boots" in flags
    assert "BIOS EFI boot" in flags
    assert "Force PXE" in flags

    ipmitool_ok(ipmi_fleet, port, "chassis", "bootdev", "disk")
    assert machine.boot_setting() == BootSetting("disk")
    flags = ipmitool_ok(ipmi_fleet, port, "chassis", "bootparam", "get", "5")
    assert "Options apply to only next boot" in flags
    assert "BIOS PC Compatible (legacy) boot" in flags
    assert "Force Boot from default Hard-Drive" in flags

    # A one-time override is used by the next boot and then gone.
    ipmitool_ok(ipmi_fleet, port, "power", "on")
    assert isinstance(machine, MemoryMachine)
    assert machine.boots == [BootSetting("disk")]
    flags = ipmitool_ok(ipmi_fleet, port, "chassis", "bootparam", "get", "5")
    assert "Boot Flag Invalid" in flags and "No override" in flags


def test_ipmitool_is_refused_other_cipher_suites(ipmi_fleet: IpmiPeers) -> None:
    port, _ = ipmi_fleet.bmcs[0]
    done, _ = ipmitool(ipmi_fleet, port, "power", "status", options=("-C", "17"))
    assert done.returncode != 0
    assert "no matching cipher suite" in done.stderr


def test_pyghmi_client_two_commands_in_one_process(ipmi_fleet: IpmiPeers) -> None:
    (port_a, machine_a), (port_b, machine_b) = ipmi_fleet.bmcs
    first, second = pyghmi_command(ipmi_fleet, port_a), pyghmi_command(ipmi_fleet, port_b)
    assert first.get_power() == {"powerstate": "off"}
    first.set_power("on", wait=True)
    assert first.get_power() == {"powerstate": "on"}
    assert second.get_power() == {"powerstate": "off"}
    assert (machine_a.power_state(), machine_b.power_state()) == ("on", "off")

    second.set_bootdev("network", persist=True, uefiboot=True)
    assert second.get_bootdev() == {"bootdev": "network", "persistent": True, "uefimode": True}
    assert machine_b.boot_setting() == BootSetting("pxe", persistent=True, uefi=True)
    first.set_bootdev("hd")
    assert first.get_bootdev() == {"bootdev": "hd", "persistent": False, "uefimode": False}
    first.set_bootdev("default")
    assert first.get_bootdev()["bootdev"] == "default"

    with pytest.raises(pyghmi_exceptions.IpmiException, match="Incorrect password"):
        pyghmi_command(ipmi_fleet, port_a, password="not the password")
    with pytest.raises(pyghmi_exceptions.IpmiException, match="Unauthorized name"):
        ipmi_command.Command(bmc=ipmi_fleet.fleet.host, port=port_a, userid=b"nobody",
                             password=ipmi_fleet.password.encode())


def test_bmc_key_kg_is_checked() -> None:
    bmc_key = b"0123456789abcdef0123"
    with BmcFleet("admin", "kg-test-password", kg=bmc_key) as fleet:
        [(port, _)] = fleet.start(1)
        peers = IpmiPeers(fleet=fleet, username="admin", password="kg-test-password", bmcs=[])
        right = ipmi_command.Command(bmc=fleet.host, port=port, userid=b"admin",
                                     password=b"kg-test-password", kg=bmc_key)
        assert right.get_power() == {"powerstate": "off"}
        with pytest.raises(pyghmi_exceptions.IpmiException, match="wrong Kg"):
            ipmi_command.Command(bmc=fleet.host, port=port, userid=b"admin",
                                 password=b"kg-test-password", kg=b"another key")
        with_key, _ = ipmitool(peers, port, "power", "status", options=("-k", bmc_key.decode()))
        assert with_key.returncode == 0, with_key.stderr
        without, _ = ipmitool(peers, port, "power", "status", options=QUICK_GIVE_UP)
        assert without.returncode != 0


def test_faults_seen_from_ipmitool(ipmi_fleet: IpmiPeers) -> None:
    port, _ = ipmi_fleet.bmcs[0]
    fleet = ipmi_fleet.fleet
    normal, normal_s = ipmitool(ipmi_fleet, port, "power", "status", options=QUICK_GIVE_UP)
    assert normal.returncode == 0 and normal_s < 1.0

    fleet.set_down(port)
    down, down_s = ipmitool(ipmi_fleet, port, "power", "status", options=QUICK_GIVE_UP)
    assert down.returncode != 0 and "Unable to establish IPMI v2" in down.stderr
    assert down_s >= 1.5  # it waited for answers that never came

    fleet.restore(port)
    fleet.set_password(port, "changed on the BMC")
    wrong, wrong_s = ipmitool(ipmi_fleet, port, "power", "status", options=("-v",))
    assert wrong.returncode != 0 and "RAKP 2 HMAC is invalid" in wrong.stderr
    assert wrong_s < 1.0  # refused, not timed out
    right, _ = ipmitool(ipmi_fleet, port, "power", "status", password="changed on the BMC")
    assert right.returncode == 0

    fleet.restore(port)
    fleet.set_slow(port, 0.25)
    slow, slow_s = ipmitool(ipmi_fleet, port, "power", "status", options=("-N", "5", "-R", "1"))
    assert slow.returncode == 0 and slow.stdout == "Chassis Power is off\n"
    assert slow_s >= 2.0  # ~11 exchanges, each answered 0.25 s late

    fleet.restore(port)
    assert ipmitool(ipmi_fleet, port, "power", "status", options=QUICK_GIVE_UP)[0].returncode == 0


RMCP_IPMI = b"\x06\x00\xff\x07"
OPEN_SESSION_REQUEST, RAKP1, RAKP3 = 0x10, 0x12, 0x14


def rmcp_plus(payload_type: int, payload: bytes, session_id: bytes = bytes(4)) -> bytes:
    """An RMCP+ (IPMI 2.0) datagram, no integrity or encryption."""
    return (RMCP_IPMI + bytes([6, payload_type]) + session_id + bytes(4)
            + len(payload).to_bytes(2, "little") + payload)


def open_session_request(auth: int, integrity: int, confidentiality: int) -> bytes:
    algorithm = [bytes([kind, 0, 0, 8, number, 0, 0, 0])
                 for kind, number in ((0, auth), (1, integrity), (2, confidentiality))]
    return rmcp_plus(OPEN_SESSION_REQUEST, bytes([7, 0, 0, 0]) + b"CSID" + b"".join(algorithm))


def test_rmcp_plus_refusals_and_junk(ipmi_fleet: IpmiPeers) -> None:
    port, _ = ipmi_fleet.bmcs[0]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.settimeout(0.3)

        def exchange(datagram: bytes) -> bytes | None:
            sender.sendto(datagram, (ipmi_fleet.fleet.host, port))
            try:
                return sender.recv(1024)
            except TimeoutError:
                return None

        def status_of(answer: bytes | None) -> int:
            assert answer is not None and answer[:4] == RMCP_IPMI
            return answer[16 + 1]  # payload: tag, status, ...

        # Cipher suite 17 (SHA-256) refused with "no cipher suite match"; suite 3 accepted.
        assert status_of(exchange(open_session_request(3, 4, 1))) == 0x11
        assert status_of(exchange(rmcp_plus(OPEN_SESSION_REQUEST, bytes(8)))) == 0x11
        assert status_of(exchange(open_session_request(1, 1, 1))) == 0x00
        rakp1 = bytes([8, 0, 0, 0]) + b"XXXX" + bytes(16) + bytes([0x14, 0, 0, 6]) + b"nobody"
        assert status_of(exchange(rmcp_plus(RAKP1, rakp1))) == 0x0D  # unauthorized name

        junk = [b"", b"\x06", RMCP_IPMI, rmcp_plus(OPEN_SESSION_REQUEST, bytes(4)),
                rmcp_plus(RAKP1, b"\x01" * 10), rmcp_plus(RAKP3, bytes(40)),
                rmcp_plus(0xC0, bytes(40), session_id=b"XXXX"), RMCP_IPMI + bytes(40),
                bytes(range(256)) * 4]
        assert [exchange(datagram) for datagram in junk[:-2]] == [None] * (len(junk) - 2)
        for datagram in junk[-2:]:
            exchange(datagram)
    assert ipmitool_ok(ipmi_fleet, port, "power", "status") == "Chassis Power is off\n"


def test_a_late_rakp1_gets_the_keys_of_the_session_it_names() -> None:
    """A client that retried its open session request (pyghmi does, with a new session id,
    when the answer is late) has two sessions at the BMC; its RAKP 1 names the first one. The
    RAKP 2 must be that session's: its console id, and an HMAC over its ids, or the client
    reads it as "Incorrect password provided" (what a loaded CI run once showed)."""
    user, password = b"admin", b"late-rakp-password"
    with BmcFleet(user.decode(), password.decode()) as fleet, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        [(port, _)] = fleet.start(1)
        client.settimeout(10)
        bmc = (fleet.host, port)
        first_id, second_id = b"\x01\x00\x00\x70", b"\x02\x00\x00\x70"
        suite_3 = bytes([0, 0, 0, 8, 1, 0, 0, 0, 1, 0, 0, 8, 1, 0, 0, 0, 2, 0, 0, 8, 1, 0, 0, 0])
        for tag, console_id in ((1, first_id), (2, second_id)):
            client.sendto(rmcp_plus(OPEN_SESSION_REQUEST,
                                    bytes([tag, 0, 0, 0]) + console_id + suite_3), bmc)
        answers = {}
        for _ in range(2):
            answer = client.recv(512)[16:]
            assert answer[1] == 0, answer.hex()
            answers[bytes(answer[4:8])] = bytes(answer[8:12])
        assert set(answers) == {first_id, second_id}
        first_bmc_id = answers[first_id]
        assert first_bmc_id != answers[second_id]

        console_random, role = os.urandom(16), 0x14  # name-only lookup, administrator
        client.sendto(rmcp_plus(RAKP1, bytes([3, 0, 0, 0]) + first_bmc_id + console_random
                                + bytes([role, 0, 0, len(user)]) + user), bmc)
        rakp2 = client.recv(512)[16:]
        assert (rakp2[0], rakp2[1], bytes(rakp2[4:8])) == (3, 0, first_id)
        bmc_random, guid, code = rakp2[8:24], rakp2[24:40], rakp2[40:60]
        signed = (first_id + first_bmc_id + console_random + bmc_random + guid
                  + bytes([role, len(user)]) + user)
        assert code == hmac.new(password, signed, hashlib.sha1).digest()


def test_pyghmi_logs_in_through_a_repeated_open_session_request(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """pyghmi (1.6.19) runs a session's retry timer and its answers on whichever threads call
    its loop: a timer that fired while the channel auth answer was awaited resends the last
    payload, which another thread has just made the open session request. Replayed here on one
    thread: each open session request goes out twice, byte for byte."""
    send_open_request = pyghmi_session.Session._open_rmcpplus_request

    def sent_twice(session: Any) -> None:
        send_open_request(session)
        session.send_payload()  # the timer's resend of lastpayload

    monkeypatch.setattr(pyghmi_session.Session, "_open_rmcpplus_request", sent_twice)
    with BmcFleet("admin", "repeated-open-password") as fleet:
        [(port, _)] = fleet.start(1)
        command = ipmi_command.Command(bmc=fleet.host, port=port, userid=b"admin",
                                       password=b"repeated-open-password")
        assert command.get_power() == {"powerstate": "off"}


def power_state_of(port: int) -> str:
    command = ipmi_command.Command(bmc="127.0.0.1", port=port, userid=b"admin",
                                   password=FLEET_PROCESS_PASSWORD.encode())
    return str(command.get_power()["powerstate"])


@pytest.mark.slow
def test_fleet_process_serves_500_bmcs(tmp_path: Path) -> None:
    password_file = tmp_path / "password"
    password_file.write_text(FLEET_PROCESS_PASSWORD + "\n")
    began = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.ipmi_bmc", "--count", str(FLEET_BENCH_SIZE),
         "--user", "admin", "--password-file", str(password_file), "--control-stdin"],
        cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdin is not None and process.stdout is not None

    def control(command: str) -> dict[str, Any]:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(command + "\n")
        process.stdin.flush()
        return dict(json.loads(process.stdout.readline()))

    try:
        ready = json.loads(process.stdout.readline())
        ready_s = time.monotonic() - began
        assert ready["event"] == "ready" and len(set(ready["ports"])) == FLEET_BENCH_SIZE
        assert ready_s < 10 and ready["rss_kib"] < 200 * 1024
        began = time.monotonic()
        with ThreadPoolExecutor(FLEET_CLIENT_THREADS) as pool:
            answers = list(pool.map(power_state_of, ready["ports"]))
        assert answers == ["off"] * FLEET_BENCH_SIZE
        assert time.monotonic() - began < 60

        first, last = ready["ports"][0], ready["ports"][-1]
        status = ("power", "status")
        assert control(f"down {first}") == {"ok": True}
        down, _ = run_ipmitool("127.0.0.1", first, "admin", FLEET_PROCESS_PASSWORD, *status,
                               options=QUICK_GIVE_UP)
        assert down.returncode != 0
        assert control(f"restore {first}") == {"ok": True}
        on, _ = run_ipmitool("127.0.0.1", first, "admin", FLEET_PROCESS_PASSWORD, "power", "on")
        assert on.returncode == 0
        assert control(f"power {first}") == {"ok": True, "power": "on"}
        assert control(f"power {last}") == {"ok": True, "power": "off"}
        assert control("power 1")["ok"] is False  # no BMC there
        assert control("explode 1")["ok"] is False
    finally:
        process.stdin.close()  # end of input stops it
        try:
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()


# --- Redfish -------------------------------------------------------------------------------


def sushy_client(peers: RedfishPeers, verify: str | bool | None = None,
                 password: str | None = None, **options: Any) -> sushy.Sushy:
    emulator = peers.emulator
    if verify is None:
        verify = str(emulator.ca_file) if emulator.ca_file else True
    return sushy.Sushy(f"{emulator.address}/redfish/v1/", username=peers.username,
                       password=peers.password if password is None else password, verify=verify,
                       **options)


def test_sushy_systems_and_boot_override(redfish_emulator: RedfishPeers) -> None:
    emulator = redfish_emulator.emulator
    client = sushy_client(redfish_emulator)
    listed = sorted(path.rsplit("/", 1)[1]
                    for path in client.get_system_collection().members_identities)
    assert listed == sorted(emulator.system_ids)

    fake = emulator.systems[0]
    system = client.get_system(emulator.system_path(fake.uuid))
    assert system.power_state == sushy.POWER_STATE_OFF
    assert [nic.mac_address for nic in system.ethernet_interfaces.get_members()] == [fake.mac]
    assert (system.boot.target, system.boot.mode) == (sushy.BOOT_SOURCE_TARGET_HDD,
                                                      sushy.BOOT_SOURCE_MODE_UEFI)

    system.set_system_boot_options(sushy.BOOT_SOURCE_TARGET_PXE,
                                   enabled=sushy.BOOT_SOURCE_ENABLED_ONCE,
                                   mode=sushy.BOOT_SOURCE_MODE_BIOS)
    system.refresh()
    assert system.boot.target == sushy.BOOT_SOURCE_TARGET_PXE
    assert system.boot.mode == sushy.BOOT_SOURCE_MODE_BIOS
    # Quirk: "Once" is accepted and reads back "Continuous".
    assert system.boot.enabled == sushy.BOOT_SOURCE_ENABLED_CONTINUOUS

    with pytest.raises(sushy_exceptions.AccessError):
        sushy_client(redfish_emulator, password="wrong").get_system(
            emulator.system_path(fake.uuid))


@pytest.mark.slow
def test_sushy_power_changes_land_later(
        make_redfish_emulator: Callable[..., RedfishPeers]) -> None:
    peers = make_redfish_emulator(fake_systems(1, "Off") + fake_systems(1, "On", "on"))
    client = sushy_client(peers)
    off_one, on_one = (client.get_system(peers.emulator.system_path(uuid))
                       for uuid in peers.emulator.system_ids)
    assert (off_one.power_state, on_one.power_state) == (sushy.POWER_STATE_OFF,
                                                         sushy.POWER_STATE_ON)
    began = time.monotonic()
    off_one.reset_system(sushy.RESET_ON)
    on_one.reset_system(sushy.RESET_FORCE_OFF)
    landed: dict[str, float] = {}
    while len(landed) < 2 and time.monotonic() - began < REDFISH_POWER_LANDS_WITHIN_S:
        for name, system, wanted in (("on", off_one, sushy.POWER_STATE_ON),
                                     ("off", on_one, sushy.POWER_STATE_OFF)):
            if name not in landed:
                system.refresh()
                if system.power_state == wanted:
                    landed[name] = time.monotonic() - began
        time.sleep(0.1)
    assert set(landed) == {"on", "off"}, f"power changes did not land: {landed}"

    on_one.reset_system(sushy.RESET_FORCE_RESTART)  # of a system that is off now
    on_one.refresh()
    assert on_one.power_state == sushy.POWER_STATE_OFF
    with pytest.raises(sushy_exceptions.HTTPError):
        off_one.reset_system(sushy.RESET_NMI)  # listed as allowed, answers 501


def test_sushy_tls_with_the_node_ca_and_refused_without(
        redfish_emulator_tls: RedfishPeers, tmp_path: Path) -> None:
    emulator = redfish_emulator_tls.emulator
    assert emulator.address.startswith("https://127.0.0.1:")
    system_path = emulator.system_path(emulator.system_ids[0])
    system = sushy_client(redfish_emulator_tls).get_system(system_path)
    assert system.power_state == sushy.POWER_STATE_OFF

    unknown_ca = create_ca(tmp_path / "other-ca", name="Some other CA").cert_file
    for verify in (str(unknown_ca), True):  # another CA; the system's trust store
        with pytest.raises(sushy_exceptions.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            sushy_client(redfish_emulator_tls, verify=verify)


def test_redfish_endpoint_down_and_back(redfish_emulator: RedfishPeers) -> None:
    emulator = redfish_emulator.emulator
    system_path = emulator.system_path(emulator.system_ids[0])
    client = sushy_client(redfish_emulator)
    client.get_system(system_path).set_system_boot_options(sushy.BOOT_SOURCE_TARGET_PXE)
    port, pid = emulator.port, emulator.pid

    emulator.stop()
    began = time.monotonic()
    with pytest.raises(sushy_exceptions.ConnectionError, match="Connection refused"):
        sushy_client(redfish_emulator, **GIVE_UP_AT_ONCE)
    assert time.monotonic() - began < 1.0
    emulator.start()
    assert (emulator.port, emulator.running) == (port, True) and emulator.pid != pid
    assert client.get_system(system_path).boot.target == sushy.BOOT_SOURCE_TARGET_PXE

    emulator.freeze()
    began = time.monotonic()
    with pytest.raises(sushy_exceptions.ConnectionError, match="Read timed out"):
        sushy_client(redfish_emulator, read_timeout=1, **GIVE_UP_AT_ONCE)
    assert time.monotonic() - began >= 1.0  # hung: it timed out, nothing refused
    emulator.thaw()
    system = sushy_client(redfish_emulator).get_system(system_path)
    assert system.power_state == sushy.POWER_STATE_OFF


# --- Wake-on-LAN ---------------------------------------------------------------------------


def magic_packet(mac: str, password: bytes = b"") -> bytes:
    return b"\xff" * 6 + bytes.fromhex(mac.replace(":", "")) * 16 + password


def test_wol_magic_packet_to_the_subnet_broadcast(wol_listener: WolListener) -> None:
    mac = "52:54:00:12:34:56"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        with pytest.raises(PermissionError):  # a broadcast needs SO_BROADCAST
            sender.sendto(magic_packet(mac), (wol_listener.broadcast, wol_listener.port))
        sender.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sender.sendto(magic_packet(mac, bytes.fromhex("a1b2c3d4e5f6")),
                      (wol_listener.broadcast, wol_listener.port))
        sender.sendto(b"not a magic packet", (wol_listener.address, wol_listener.port))
        sender.sendto(magic_packet("52:54:00:65:43:21", b"\x01\x02\x03\x04"),
                      (wol_listener.address, wol_listener.port))

    record = wol_listener.wait_for_magic(mac.upper(), password="A1:B2:C3:D4:E5:F6")
    assert record is not None, wol_listener.datagrams
    assert record["destination"] == wol_listener.broadcast
    assert record["source"] == wol_listener.link.root_address
    unicast = wol_listener.wait_for_magic("52:54:00:65:43:21", password="01:02:03:04")
    assert unicast is not None and unicast["destination"] == wol_listener.address
    assert wol_listener.wait_for_magic(mac, password="00:00:00:00", timeout=0.2) is None
    garbage = [d for d in wol_listener.datagrams if d["magic"] is None]
    assert [bytes.fromhex(d["payload_hex"]) for d in garbage] == [b"not a magic packet"]
