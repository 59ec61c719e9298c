"""Discovery rules: reading and checking the file, matching inventories, templates, merging."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from services.discovery import templates
from services.discovery.facts import VARIABLES, Facts
from services.discovery.rules import RulesError, RuleSet, load, node_name

ENABLED = ("fake-hardware", "ipmi", "redfish", "wol")
GiB = 1024**3

INVENTORY: dict[str, Any] = {
    "cpu": {"count": 4, "architecture": "x86_64", "model_name": "QEMU Virtual CPU"},
    "memory": {"total_bytes": 8 * GiB, "physical_mb": 8192},
    "disks": [{"name": "/dev/sda", "size": 100 * GiB}, {"name": "/dev/sdb", "size": 2 * GiB}],
    "interfaces": [
        {"name": "eno1", "mac_address": "AA:BB:CC:00:00:01", "ipv4_address": None},
        {"name": "eno2", "mac_address": "52:54:00:12:34:56", "ipv4_address": "10.12.0.57"},
        {"name": "lo", "mac_address": "00:00:00:00:00:00"},
    ],
    "system_vendor": {"manufacturer": "Dell Inc.", "product_name": "OptiPlex 7010",
                      "serial_number": "ABC 123"},
    "boot": {"current_boot_mode": "uefi", "pxe_interface": "52:54:00:12:34:56"},
}


def facts(**changes: Any) -> Facts:
    inventory = copy.deepcopy(INVENTORY)
    inventory.update(changes)
    return Facts.of(inventory)


def rules_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return path


def ruleset(tmp_path: Path, text: str) -> RuleSet:
    return load(rules_file(tmp_path, text), ENABLED)


def refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(RulesError) as caught:
        ruleset(tmp_path, text)
    return str(caught.value)


# -- facts ---------------------------------------------------------------------------------


def test_facts_come_from_the_inventory_with_the_inspection_sizes() -> None:
    found = facts()
    assert found.macs == ("52:54:00:12:34:56", "aa:bb:cc:00:00:01")  # booting NIC first
    assert found.boot_mac == "52:54:00:12:34:56" and found.boot_interface == "eno2"
    assert (found.cpus, found.cpu_arch, found.memory_mb) == (4, "x86_64", 8192)
    assert found.local_gb == 99  # the smallest disk of at least 4 GiB, less 1 GiB
    assert found.system_product == "OptiPlex 7010" and found.bmc_address is None
    variables = found.variables()
    assert set(variables) == VARIABLES
    assert variables["mac_hex"] == "525400123456" and variables["ipv4_address"] == "10.12.0.57"


def test_without_a_boot_nic_the_first_mac_names_the_machine() -> None:
    found = facts(boot={"current_boot_mode": "bios"})
    assert found.boot_mac is None and found.main_mac == "aa:bb:cc:00:00:01"


# -- matching and actions ------------------------------------------------------------------


def test_every_matching_rule_applies_in_order_later_keys_win(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, """
rules:
  - name: every machine
    set:
      driver: wol
      labels: {site: main, room: unknown}
      properties: {capabilities: "boot_mode:uefi"}
      resource_class: pc
  - name: classroom B12
    match:
      mac_prefix: "52:54:00:12"
      memory_mb: {min: 4096, max: 16384}
      system_vendor: ["dell*", "lenovo"]
      interface_name: "eno*"
      boot_mode: uefi
      cpu_arch: x86_64
      cpus: 4
    set:
      labels: {room: B12, floor: 1}
      name: "b12-{mac_hex}"
      driver_info: {wol_host: "10.12.255.255"}
  - name: servers
    match: {has_bmc: true}
    set: {driver: ipmi}
  - name: big memory
    match: {memory_mb: {min: 100000}}
    set: {resource_class: big}
""")
    outcome = rules.evaluate(facts())
    assert outcome.applied == ("every machine", "classroom B12")
    assert outcome.driver == "wol" and outcome.resource_class == "pc"
    assert outcome.labels == {"site": "main", "room": "B12", "floor": "1"}
    assert outcome.name == "b12-525400123456"
    assert outcome.driver_info == {"wol_host": "10.12.255.255"}
    assert outcome.node_fields("fake-hardware") == {
        "driver": "wol", "driver_info": {"wol_host": "10.12.255.255"},
        "properties": {"capabilities": "boot_mode:uefi"},
        "extra": {"labels": {"site": "main", "room": "B12", "floor": "1"}},
        "resource_class": "pc", "name": "b12-525400123456"}


@pytest.mark.parametrize("condition", [
    "mac: ['52:54:00:12:34:57']", "mac_prefix: '52:54:01'", "memory_mb: {max: 4096}",
    "cpus: {min: 8}", "local_gb: 50", "system_product: 'Precision*'", "cpu_arch: aarch64",
    "boot_mode: bios", "interface_name: 'enp*'", "has_bmc: true", "system_serial: XYZ*",
    "bmc_network: 10.0.0.0/8", "ipv4_network: [10.13.0.0/16, 'fd00::/8']",
])
def test_a_rule_applies_only_when_every_condition_holds(tmp_path: Path, condition: str) -> None:
    rules = ruleset(tmp_path, f"""
rules:
  - match: {{mac_prefix: "52:54:00", {condition}}}
    set: {{driver: ipmi}}
""")
    outcome = rules.evaluate(facts())
    assert outcome.applied == () and outcome.driver is None
    assert outcome.node_fields("fake-hardware")["driver"] == "fake-hardware"


def test_a_rule_whose_template_needs_a_missing_value_does_not_apply(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, """
rules:
  - name: BMC servers
    match: {bmc_network: 10.0.9.0/24}
    set:
      driver: ipmi
      driver_info: {ipmi_address: "{bmc_address}", ipmi_username: admin,
                    ipmi_password: "s3cret"}
""")
    assert rules.evaluate(facts()).applied == ()
    with_bmc = rules.evaluate(facts(bmc_address="10.0.9.17"))
    assert with_bmc.applied == ("BMC servers",) and with_bmc.driver == "ipmi"
    assert with_bmc.driver_info == {"ipmi_address": "10.0.9.17", "ipmi_username": "admin",
                                    "ipmi_password": "s3cret"}


def test_names_from_inventory_values_are_made_valid() -> None:
    assert node_name("pc-OptiPlex 7010/ABC 123") == "pc-OptiPlex-7010-ABC-123"
    assert node_name("12345678-1234-1234-1234-123456789abc") is None  # would look like a UUID
    assert node_name("") is None


def test_templates_render_known_variables_and_literal_braces() -> None:
    values = {"mac": "52:54:00:12:34:56", "room": None}
    known = frozenset({"mac", "room"})
    assert templates.variables_of("{{x}} {mac}", known) == {"mac"}
    assert templates.render("{{x}} {mac}", values) == "{x} 52:54:00:12:34:56"
    assert templates.render_all({"a": ["{mac}", 3]}, values) == {"a": ["52:54:00:12:34:56", 3]}
    for bad in ("{mac", "mac}", "{nope}", "{mac.__class__}"):
        with pytest.raises(templates.TemplateError):
            templates.variables_of(bad, known)


def test_no_rules_file_means_no_rules() -> None:
    outcome = RuleSet().evaluate(facts())
    assert outcome.applied == () and outcome.node_fields("wol")["driver"] == "wol"


# -- bad files: every problem with the file, the rule and its line ---------------------------


def test_problems_are_reported_with_file_rule_and_line(tmp_path: Path) -> None:
    message = refused(tmp_path, """rules:
  - name: classroom
    match:
      mac_prefix: "52:54:00"
      memory_mb: {min: 5, max: 3}
    set:
      driver: wol
  - set:
      driver_info: {ipmi_address: "{bmc_adress}", ipmi_password: hunter2}
  - match: {cpus: 2}
    set: {}
  - set: {driver: wol}
    oops: 1
  - match: {mac: [52-54-00-AA-BB-CC, not-a-mac], mac_prefix: "zz"}
    set: {name: "pc {mac_hex}", labels: {room: [1, 2]}}
""")
    path = tmp_path / "rules.yaml"
    lines = message.splitlines()
    assert lines[0] == (f"{path}, rule 1 ('classroom'), line 5: match.memory_mb: min (5) is "
                        f"greater than max (3)")
    assert lines[1].startswith(f"{path}, rule 2, line 9: set: unknown variable {{bmc_adress}}")
    assert lines[2] == f"{path}, rule 3, line 11: set: a rule needs at least one action"
    assert lines[3] == (f"{path}, rule 4, line 13: oops: unknown key (the keys are listed in "
                        f"docs/discovery.md)")
    assert "rule 5, line 14: match.mac: not MAC addresses: 'not-a-mac'" in message
    assert "rule 5, line 14: match.mac_prefix: not MAC prefixes" in message
    assert "rule 5, line 15: set.name: node names are letters, digits and -._~ only" in message
    assert "rule 5, line 15: set.labels: label 'room' must be a text" in message
    assert "hunter2" not in message  # never a value from the file: it may be a password


def test_a_driver_that_is_not_enabled_is_refused(tmp_path: Path) -> None:
    message = refused(tmp_path, "rules:\n  - name: x\n    set:\n      driver: idrac\n")
    assert message == (f"{tmp_path / 'rules.yaml'}, rule 1 ('x'), line 4: set.driver: driver "
                       f"'idrac' is not an enabled hardware type (enabled: fake-hardware, ipmi, "
                       f"redfish, wol)")


@pytest.mark.parametrize(("text", "expected"), [
    ("rules:\n  - set: {driver: wol\n", r"rules\.yaml, line 3: not valid YAML"),
    ("", r"expected a mapping with a `rules` list"),
    ("- set: {driver: wol}\n", r"expected a mapping with a `rules` list"),
    ("rules: {a: 1}\n", r"rules\.yaml, line 1: rules: Input should be a valid list"),
    ("rules: []\nmore: 1\n", r"line 2: more: unknown key"),
    ("rules:\n  - set: {properties: {bought: 2020-01-01}}\n",
     r"rule 1, line 2: set\.properties: value\.bought: date values are not allowed"),
    ("rules:\n  - match: {memory_mb: {}}\n    set: {driver: wol}\n",
     r"match\.memory_mb: give min, max or both"),
])
def test_malformed_files_are_refused_clearly(tmp_path: Path, text: str, expected: str) -> None:
    assert re.search(expected, refused(tmp_path, text))


def test_a_missing_file_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"cannot read the discovery rules file .*nope\.yaml"):
        load(tmp_path / "nope.yaml", ENABLED)


def test_an_empty_rule_list_is_fine(tmp_path: Path) -> None:
    assert ruleset(tmp_path, "rules: []\n").rules == ()


# -- addresses claimed by the machine (docs/discovery.md, Security) ------------------------


@pytest.mark.parametrize(("claimed", "expected"), [
    ("10.0.9.17", "10.0.9.17"), (" FD00::9 ", "fd00::9"), ("evil.example.com", None),
    ("10.0.9.17:8443", None), ("https://10.0.9.17", None), ("[fd00::9]", None),
    ("10.0.9.17/24", None), ("0.0.0.0", None), ("", None), (17, None),
])
def test_a_bmc_address_is_a_bare_ip_address_or_nothing(claimed: Any,
                                                        expected: str | None) -> None:
    assert facts(bmc_address=claimed).bmc_address == expected


def test_an_interface_ipv4_address_is_a_bare_ipv4_address_or_nothing() -> None:
    interfaces = copy.deepcopy(INVENTORY["interfaces"])
    interfaces[1]["ipv4_address"] = "attacker.example.com"
    assert facts(interfaces=interfaces).boot_ipv4 is None
    interfaces[1]["ipv4_address"] = "fd00::5"
    assert facts(interfaces=interfaces).boot_ipv4 is None


def test_bmc_network_confines_the_claimed_bmc_address(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, """
rules:
  - name: BMCs of rack 1
    match: {bmc_network: ["10.9.1.0/24", "fd00:9::/64"]}
    set:
      driver: redfish
      driver_info: {redfish_address: "https://{bmc_address}", redfish_password: factory}
""")
    assert rules.evaluate(facts(bmc_address="10.9.1.20")).driver_info == {
        "redfish_address": "https://10.9.1.20", "redfish_password": "factory"}
    assert rules.evaluate(facts(bmc_address="fd00:9::20")).applied == ("BMCs of rack 1",)
    for elsewhere in ("10.9.2.20", "192.0.2.1", "fd00:8::20", "attacker.example:443"):
        assert rules.evaluate(facts(bmc_address=elsewhere)).applied == (), elsewhere
    assert rules.evaluate(facts()).applied == ()


@pytest.mark.parametrize("text", [
    # the address and the password in one rule
    """
rules:
  - name: servers
    set:
      driver_info: {ipmi_address: "{bmc_address}", ipmi_password: factory}
""",
    # merged: a general rule's password joins a later rule's claimed address
    """
rules:
  - name: credentials
    set: {driver_info: {ipmi_username: root, ipmi_password: factory}}
  - name: servers
    match: {system_vendor: "Dell*"}
    set: {driver_info: {ipmi_address: "{bmc_address}"}}
""",
    # the password inside the URL, the address from the booting NIC
    """
rules:
  - name: servers
    set: {driver_info: {redfish_address: "https://root:factory@{ipv4_address}"}}
""",
    # confined, but by the other address's network
    """
rules:
  - name: servers
    match: {ipv4_network: 10.0.0.0/8}
    set: {driver_info: {ipmi_address: "{bmc_address}", ipmi_password: factory}}
""",
    # another claimed value naming the host to connect to
    """
rules:
  - name: servers
    match: {bmc_network: 10.0.0.0/8}
    set: {driver_info: {redfish_address: "https://{system_serial}.bmc.example.com",
                        redfish_password: factory}}
""",
    # Wake-on-LAN's SecureOn password goes in the magic packet sent to wol_host
    """
rules:
  - set: {driver_info: {wol_password: "00:11:22:33:44:55"}}
  - name: servers
    set: {driver: wol, driver_info: {wol_host: "{ipv4_address}"}}
""",
])
def test_rules_sending_a_password_to_a_claimed_address_are_refused(
        tmp_path: Path, text: str) -> None:
    message = refused(tmp_path, text)
    assert re.match(rf"{re.escape(str(tmp_path / 'rules.yaml'))}, rule \d \('servers'\), "
                    rf"line \d+: set\.driver_info\.\w+: \{{\w+\}} comes from the "
                    rf"machine's own inventory", message), message
    assert "factory" not in message


def test_claimed_addresses_without_secrets_or_confined_are_fine(tmp_path: Path) -> None:
    ruleset(tmp_path, """
rules:
  - name: no secret anywhere
    set: {driver_info: {ipmi_address: "{bmc_address}", wol_host: "{ipv4_address}"}}
""")
    ruleset(tmp_path, """
rules:
  - set: {driver_info: {ipmi_username: root, ipmi_password: factory}}
  - match: {bmc_network: 10.9.0.0/16}
    set: {driver_info: {ipmi_address: "{bmc_address}"}}
  - set: {name: "srv-{system_serial}", labels: {bmc: "{bmc_address}"}}
""")
    # the ipmi password is never sent to the Wake-on-LAN host (drivers read keys by family)
    ruleset(tmp_path, """
rules:
  - match: {mac_prefix: "52:54:00:d1"}
    set: {driver: wol, driver_info: {wol_host: "{ipv4_address}"}}
  - set: {driver_info: {ipmi_address: 192.0.2.10, ipmi_password: factory}}
""")


@pytest.mark.parametrize("network", ["10.9.0.1/16", "10.9.0.0/33", "rack1", "[]"])
def test_a_bad_network_is_refused_with_its_line(tmp_path: Path, network: str) -> None:
    message = refused(tmp_path, f"""
rules:
  - name: servers
    match:
      bmc_network: {network}
    set: {{driver: ipmi}}
""")
    assert message.startswith(f"{tmp_path / 'rules.yaml'}, rule 1 ('servers'), line 5: "
                              f"match.bmc_network:"), message
