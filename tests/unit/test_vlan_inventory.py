"""The switches file: what it may say, the errors it gets (never showing a password), and how
a port's local_link_connection finds its switch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.drivers.network.inventory import (
    SwitchesFileError,
    find_switch,
    load_switches,
)

YAML = """
switches:
  tor-1:
    driver: cisco_ios
    address: 192.0.2.10
    username: enclume
    password: hunter2-secret
    mac: "00-1C-73-00-00-01"
  tor-2:
    driver: juniper_junos
    address: 192.0.2.11
    port: 2222
    username: enclume
    key_file: /etc/enclume/tor-2.key
  lab:
    driver: vde
    socket: /run/enclume/vde/mgmt
"""


def write(tmp_path: Path, text: str, name: str = "switches.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_yaml_file_names_switches_and_keeps_secrets_out_of_their_repr(tmp_path: Path) -> None:
    switches = load_switches(write(tmp_path, YAML))
    assert sorted(switches) == ["lab", "tor-1", "tor-2"]
    tor1 = switches["tor-1"]
    assert (tor1.driver, tor1.address, tor1.port, tor1.mac) == (
        "cisco_ios", "192.0.2.10", 22, "00:1c:73:00:00:01")
    assert tor1.password is not None and tor1.password.get_secret_value() == "hunter2-secret"
    assert "hunter2" not in repr(tor1) and "hunter2" not in str(switches)
    assert switches["tor-2"].port == 2222 and switches["tor-2"].password is None
    assert switches["lab"].socket == Path("/run/enclume/vde/mgmt")


def test_the_same_in_json(tmp_path: Path) -> None:
    document = {"switches": {"lab": {"driver": "vde", "socket": "/tmp/mgmt"}}}
    path = write(tmp_path, json.dumps(document), "switches.json")
    assert load_switches(path)["lab"].driver == "vde"


@pytest.mark.parametrize(("text", "message"), [
    ("switches:\n  s:\n    driver: cisco_ios\n    username: u\n    password: hunter2-secret\n",
     "switch 's': switch: Value error, a cisco_ios switch needs address"),
    ("switches:\n  s:\n    driver: arista_eos\n    address: a\n    username: u\n",
     "needs `password` or `key_file`"),
    ("switches:\n  s:\n    driver: vde\n", "needs `socket`"),
    ("switches:\n  s:\n    driver: hp_procurve\n    address: a\n    username: u\n"
     "    password: hunter2-secret\n", "switch 's': driver: Input should be"),
    ("switches:\n  s:\n    driver: vde\n    socket: /x\n    pasword: hunter2-secret\n",
     "pasword: Extra inputs are not permitted"),
    ("switches:\n  s:\n    driver: vde\n    socket: /x\n    mac: hunter2-secret\n",
     "is not a MAC address"),
    ("switches:\n  'bad name':\n    driver: vde\n    socket: /x\n", "switch 'bad name': name"),
    ("switches:\n  a:\n    driver: vde\n    socket: /x\n    mac: 00:00:00:00:00:01\n"
     "  b:\n    driver: vde\n    socket: /y\n    mac: 00:00:00:00:00:01\n", "the same mac"),
    ("switches: [1, 2]\n", "must have a `switches:` mapping"),
    ("tor-1:\n  driver: vde\n", "must have a `switches:` mapping"),
    ("switches:\n  s: 3\n", "switch 's' must be a mapping"),
    ("switches: {s: [\n", "is not valid YAML"),
])
def test_mistakes_are_named_without_showing_secrets(tmp_path: Path, text: str,
                                                    message: str) -> None:
    with pytest.raises(SwitchesFileError) as caught:
        load_switches(write(tmp_path, text))
    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_missing_file_says_which(tmp_path: Path) -> None:
    with pytest.raises(SwitchesFileError, match=r"cannot read the switches file .*nope\.yaml"):
        load_switches(tmp_path / "nope.yaml")


def test_ports_find_their_switch_by_switch_info_then_switch_id_as_name_or_mac(
        tmp_path: Path) -> None:
    switches = load_switches(write(tmp_path, YAML))
    assert find_switch(switches, {"switch_info": "tor-2", "switch_id": "00:1c:73:00:00:01",
                                  "port_id": "ge-0/0/1"}).name == "tor-2"  # type: ignore[union-attr]
    by_mac = find_switch(switches, {"switch_id": "00:1C:73:00:00:01", "port_id": "Gi1"})
    assert by_mac is not None and by_mac.name == "tor-1"
    by_name = find_switch(switches, {"switch_id": "lab", "port_id": "3"})
    assert by_name is not None and by_name.name == "lab"
    # an unknown switch_info falls back to switch_id
    fallback = find_switch(switches, {"switch_info": "elsewhere", "switch_id": "lab"})
    assert fallback is not None and fallback.name == "lab"
    assert find_switch(switches, {"switch_id": "00:1c:73:00:00:99"}) is None
    assert find_switch(switches, {"switch_info": "nope"}) is None
    assert find_switch(switches, {}) is None
