"""The SSH CLI switch drivers against fakenos switches on loopback (one per vendor, extended to
keep configuration modes and record every line): the exact lines each switch is sent for a
batch of two requests, refusals, and logins (password, key, host key checking)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paramiko
import pytest

from services.drivers.network.batching import SwitchBatcher
from services.drivers.network.inventory import SwitchConfig
from services.drivers.network.switches.base import PortVlan, SwitchError
from services.drivers.network.switches.netmiko_cli import NetmikoSwitchDriver
from tests.support.fake_switch import FakeSwitch, host_key, public_key_line

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TIMEOUT_S = 10.0
WINDOW_S = 0.3
JUNOS_UNIT = "unit 0 family ethernet-switching vlan members"
# Per vendor: its two access ports, an interface it does not have, and every line one session
# moving the first port to VLAN 100 and the second to VLAN 200 sends, netmiko's own included.
VENDORS: dict[str, tuple[list[str], str, list[str]]] = {
    "cisco_ios": (["GigabitEthernet0/1", "GigabitEthernet0/2"], "GigabitEthernet9/9", [
        "terminal width 511", "terminal length 0", "enable", "configure terminal",
        "interface GigabitEthernet0/1", "switchport mode access", "switchport access vlan 100",
        "interface GigabitEthernet0/2", "switchport mode access", "switchport access vlan 200",
        "end", "write mem"]),
    "cisco_nxos": (["Ethernet1/1", "Ethernet1/2"], "Ethernet9/9", [
        "terminal width 511", "terminal length 0", "configure terminal",
        "interface Ethernet1/1", "switchport mode access", "switchport access vlan 100", "exit",
        "interface Ethernet1/2", "switchport mode access", "switchport access vlan 200", "exit",
        "end", "copy running-config startup-config"]),
    "arista_eos": (["Ethernet1", "Ethernet2"], "Ethernet99", [
        "terminal width 511", "terminal length 0", "enable", "configure terminal",
        "interface Ethernet1", "switchport mode access", "switchport access vlan 100",
        "interface Ethernet2", "switchport mode access", "switchport access vlan 200",
        "end", "copy running-config startup-config"]),
    "juniper_junos": (["ge-0/0/1", "ge-0/0/2"], "ge-9/9/9", [
        "set cli screen-width 511", "set cli complete-on-space off", "set cli screen-length 0",
        "configure private",
        f"delete interfaces ge-0/0/1 {JUNOS_UNIT}", f"set interfaces ge-0/0/1 {JUNOS_UNIT} 100",
        f"delete interfaces ge-0/0/2 {JUNOS_UNIT}", f"set interfaces ge-0/0/2 {JUNOS_UNIT} 200",
        "commit", "exit configuration-mode"]),
    "dell_os10": (["ethernet1/1/1", "ethernet1/1/2"], "ethernet1/1/99", [
        "terminal length 0", "configure terminal",
        "interface ethernet1/1/1", "switchport mode access", "switchport access vlan 100",
        "exit",
        "interface ethernet1/1/2", "switchport mode access", "switchport access vlan 200",
        "exit",
        "end", "copy running-configuration startup-configuration"]),
}
REFUSALS = {"cisco_ios": "% Invalid input detected", "cisco_nxos": "% Invalid input detected",
            "arista_eos": "% Invalid input detected", "dell_os10": "% Error: Unrecognized",
            "juniper_junos": "commit failed: error: device ge-9/9/9 not found"}


@pytest.fixture(scope="module", params=sorted(VENDORS))
def switch(request: pytest.FixtureRequest) -> Iterator[FakeSwitch]:
    ports, _, _ = VENDORS[request.param]
    with FakeSwitch(request.param, ports, name="sw1") as fake:
        yield fake


def config_of(fake: FakeSwitch, **changes: object) -> SwitchConfig:
    values: dict[str, object] = {"name": "sw1", "driver": fake.vendor, "address": "127.0.0.1",
                                 "port": fake.port, "username": fake.username,
                                 "password": fake.password}
    values.update(changes)
    return SwitchConfig.model_validate({k: v for k, v in values.items() if v is not None})


def session_lines(fake: FakeSwitch, index: int) -> list[str]:
    """The lines of one session without netmiko's closing `exit`, which the switch may or may
    not read before the connection closes."""
    fake.wait_sessions(index + 1)
    lines = fake.sessions[index]
    return lines[:-1] if lines and lines[-1] == "exit" else lines


def test_two_requests_within_the_window_are_one_session_of_exactly_these_lines(
        switch: FakeSwitch) -> None:
    ports, _, expected = VENDORS[switch.vendor]
    batcher = SwitchBatcher(NetmikoSwitchDriver(config_of(switch), TIMEOUT_S), WINDOW_S)
    before = len(switch.sessions)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(batcher.apply, [PortVlan(ports[0], 100)])
        time.sleep(WINDOW_S / 6)  # the second request arrives within the first one's window
        second = pool.submit(batcher.apply, [PortVlan(ports[1], 200)])
        first.result(timeout=60)
        second.result(timeout=60)

    assert batcher.sessions == 1
    assert len(switch.sessions) == before + 1
    assert session_lines(switch, before) == expected
    assert switch.port_vlans == {ports[0]: 100, ports[1]: 200}
    assert switch.saved_vlans == {ports[0]: 100, ports[1]: 200}


def test_a_port_the_switch_does_not_have_is_refused_and_nothing_is_saved(
        switch: FakeSwitch) -> None:
    ports, missing, _ = VENDORS[switch.vendor]
    driver = NetmikoSwitchDriver(config_of(switch), TIMEOUT_S)
    driver.set_access_vlans([PortVlan(ports[0], 10), PortVlan(ports[1], 10)])
    saved = switch.saved_vlans

    with pytest.raises(SwitchError) as caught:
        driver.set_access_vlans([PortVlan(ports[0], 300), PortVlan(missing, 300)])
    message = str(caught.value)
    assert f"{switch.vendor} switch sw1 (127.0.0.1)" in message
    assert REFUSALS[switch.vendor] in message
    assert switch.password not in message
    assert switch.saved_vlans == saved
    if switch.vendor == "juniper_junos":  # a transaction: nothing of it took effect
        assert switch.port_vlans == {ports[0]: 10, ports[1]: 10}


def test_a_wrong_password_is_an_authentication_error_that_does_not_show_it() -> None:
    with FakeSwitch("cisco_ios", ["GigabitEthernet0/1"]) as fake:
        driver = NetmikoSwitchDriver(config_of(fake, password="not-the-password"), TIMEOUT_S)
        with pytest.raises(SwitchError) as caught:
            driver.set_access_vlans([PortVlan("GigabitEthernet0/1", 100)])
    assert str(caught.value) == ("cisco_ios switch sw1 (127.0.0.1): SSH authentication as "
                                 "'admin' failed")
    assert fake.sessions == []


def test_key_login_and_a_host_key_checked_against_known_hosts(tmp_path: Path) -> None:
    client_key = paramiko.RSAKey.generate(2048)
    key_file = tmp_path / "switch.key"
    client_key.write_private_key_file(str(key_file))
    with FakeSwitch("juniper_junos", ["ge-0/0/1"], authorized_key=client_key) as fake:
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{fake.port} {public_key_line(host_key())}\n")
        driver = NetmikoSwitchDriver(
            config_of(fake, password=None, key_file=key_file, known_hosts_file=known),
            TIMEOUT_S)
        driver.set_access_vlans([PortVlan("ge-0/0/1", 42)])
        assert fake.port_vlans == {"ge-0/0/1": 42}

        other = tmp_path / "other_known_hosts"
        other.write_text(f"[127.0.0.1]:{fake.port} "
                         f"{public_key_line(paramiko.RSAKey.generate(2048))}\n")
        impostor_check = NetmikoSwitchDriver(
            config_of(fake, password=None, key_file=key_file, known_hosts_file=other),
            TIMEOUT_S)
        sessions = len(fake.sessions)
        with pytest.raises(SwitchError, match=r"juniper_junos switch sw1 .*SSH: Host key for "
                                              r"server '127\.0\.0\.1' does not match"):
            impostor_check.set_access_vlans([PortVlan("ge-0/0/1", 43)])
        assert len(fake.sessions) == sessions
        assert fake.port_vlans == {"ge-0/0/1": 42}
