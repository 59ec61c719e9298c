"""What each switch dialect types for a set of access-port changes, and which port ids and VLAN
ids may reach a switch at all."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.drivers.base import DriverError
from services.drivers.network.switches.base import PortVlan, check_interface_name, check_vlan
from services.drivers.network.switches.cli_dialects import DIALECTS, Finish
from services.drivers.network.switches.vde import VdeSwitchDriver

TWO_PORTS = [PortVlan("Port1", 100), PortVlan("Port2", 200)]


def test_cisco_ios_and_arista_eos_put_each_interface_in_access_mode_then_its_vlan() -> None:
    expected = ["interface Port1", "switchport mode access", "switchport access vlan 100",
                "interface Port2", "switchport mode access", "switchport access vlan 200"]
    for name in ("cisco_ios", "arista_eos"):
        assert DIALECTS[name].render(TWO_PORTS) == expected
        assert DIALECTS[name].finish is Finish.SAVE
        assert DIALECTS[name].enter_enable_mode


def test_cisco_nxos_and_dell_os10_leave_each_interface_with_exit() -> None:
    expected = ["interface Port1", "switchport mode access", "switchport access vlan 100",
                "exit",
                "interface Port2", "switchport mode access", "switchport access vlan 200",
                "exit"]
    for name in ("cisco_nxos", "dell_os10"):
        assert DIALECTS[name].render(TWO_PORTS) == expected
        assert DIALECTS[name].finish is Finish.SAVE
        assert not DIALECTS[name].enter_enable_mode  # both log in at the # prompt


def test_junos_replaces_the_membership_in_a_private_candidate_and_commits() -> None:
    junos = DIALECTS["juniper_junos"]
    unit = "unit 0 family ethernet-switching vlan members"
    assert junos.render([PortVlan("ge-0/0/5", 300)]) == [
        f"delete interfaces ge-0/0/5 {unit}", f"set interfaces ge-0/0/5 {unit} 300"]
    assert junos.finish is Finish.COMMIT
    assert junos.config_command == "configure private"


@pytest.mark.parametrize(("dialect", "refusal"), [
    ("cisco_ios", "% Invalid input detected at '^' marker."),
    ("cisco_ios", "% Incomplete command."),
    ("arista_eos", "% Invalid input"),
    ("cisco_nxos", "ERROR: VLAN with the following IDs does not exist: 4000"),
    ("dell_os10", "% Error: Unrecognized command."),
    ("juniper_junos", "syntax error."),
    ("juniper_junos", "unknown command."),
    ("juniper_junos", "error: configuration check-out failed"),
])
def test_each_dialect_recognises_its_switchs_refusals(dialect: str, refusal: str) -> None:
    output = f"switch(config-if)#\n{refusal}\nswitch(config-if)#"
    assert re.search(DIALECTS[dialect].error_pattern, output, flags=re.M)


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_ordinary_answers_are_not_taken_for_refusals(dialect: str) -> None:
    answers = ["Enter configuration commands, one per line.  End with CNTL/Z.",
               "warning: statement not found", "Building configuration...", "[OK]",
               "commit complete", "% Access VLAN does not exist. Creating vlan 300"]
    for answer in answers:
        assert not re.search(DIALECTS[dialect].error_pattern, answer, flags=re.M), answer


@pytest.mark.parametrize("name", ["GigabitEthernet1/0/5", "Ethernet1", "Ethernet1/49/1",
                                  "ge-0/0/5", "xe-1/0/0.0", "ethernet1/1/5", "Port-channel3",
                                  "Te1/0/1:2"])
def test_interface_names_of_real_switches_are_accepted(name: str) -> None:
    assert check_interface_name(name) is None


@pytest.mark.parametrize("name", ["", "Gi1/0/5\nshutdown", "Gi1/0/5 ; reload", " Gi1", "-x",
                                  "Gi1/0/5\r", "a" * 65, "eth0|include", "Gi1/0/5?"])
def test_anything_that_could_smuggle_a_command_into_a_cli_is_refused(name: str) -> None:
    assert check_interface_name(name) is not None


def test_vde_ports_are_numbers() -> None:
    driver = VdeSwitchDriver("lab", Path("/nonexistent"), 1.0)
    assert driver.check_port_id("7") is None
    for bad in ("0", "-1", "tap0", "7 ", "7\nvlan/remove 1", ""):
        assert driver.check_port_id(bad) is not None, bad


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (4094, 4094), ("100", 100), (7.0, 7)])
def test_vlan_ids_are_1_to_4094_as_numbers_or_numeric_strings(value: object,
                                                              expected: int) -> None:
    assert check_vlan(value, "driver_info/tenant_vlan") == expected


@pytest.mark.parametrize("value", [0, 4095, -1, True, "ten", None, 7.5, [100], "100; reload"])
def test_other_vlan_ids_are_refused_naming_the_setting(value: object) -> None:
    with pytest.raises(DriverError, match="driver_info/tenant_vlan must be a VLAN id"):
        check_vlan(value, "driver_info/tenant_vlan")
