"""Checking inventory entries: each problem with its file and line, never a secret's value;
then against the server's drivers."""

from __future__ import annotations

from typing import Any

import pytest

from services.api.ports import LOCAL_LINK_KEYS as API_LOCAL_LINK_KEYS
from services.cli.enclume.inventory import schema
from services.cli.enclume.inventory.model import InventoryInvalid, NodeSpec, Problem
from services.cli.enclume.inventory.read import read_csv, read_yaml
from services.cli.enclume.inventory.validate import (
    DriverFacts,
    check_with_server,
    validate_entries,
)
from services.common import driver_properties as properties
from services.common.config import Settings
from services.drivers.network.vlan import node_vlans

PASSWORD = "Tr0ub4dor&3"


def specs_of_yaml(text: str) -> list[NodeSpec]:
    return validate_entries(read_yaml(text, "inv.yaml"))


def problems(text: str, reader: Any = read_yaml, source: str = "inv.yaml") -> list[str]:
    with pytest.raises(InventoryInvalid) as caught:
        validate_entries(reader(text, source))
    return [str(problem) for problem in caught.value.problems]


def test_a_complete_node() -> None:
    (spec,) = specs_of_yaml(f"""\
- name: rack1-01
  driver: ipmi
  driver_info: {{ipmi_address: 10.0.0.1, ipmi_password: "{PASSWORD}", tenant_vlan: "200"}}
  macs: [52-54-00-AA-00-01, 52:54:00:aa:00:02]
  local_link_connection: {{switch_info: tor-1, port_id: Gi1/0/1}}
  vlans: {{provisioning: 100}}
  properties: {{cpus: "8", memory_mb: 16384, cpu_arch: x86_64}}
  room: B12
  labels: {{rack: r1, floor: 2, spare: false}}
  resource_class: baremetal-small
  deploy_interface: direct
  description: null
""")
    assert spec.name == "rack1-01"
    assert spec.fields == {"driver": "ipmi", "resource_class": "baremetal-small",
                           "deploy_interface": "direct", "description": None}
    assert spec.maps["driver_info"] == {"ipmi_address": "10.0.0.1", "ipmi_password": PASSWORD,
                                        "tenant_vlan": 200, "provisioning_vlan": 100}
    assert spec.maps["properties"] == {"cpus": 8, "memory_mb": 16384, "cpu_arch": "x86_64"}
    assert spec.labels == {"rack": "r1", "floor": "2", "spare": "false", "room": "B12"}
    assert [(p.address, p.fields) for p in spec.ports or []] == [
        ("52:54:00:aa:00:01", {"pxe_enabled": True,
                               "local_link_connection": {"switch_info": "tor-1",
                                                         "port_id": "Gi1/0/1"}}),
        ("52:54:00:aa:00:02", {"pxe_enabled": False}),
    ]
    assert spec.create_body() == {
        "name": "rack1-01", "driver": "ipmi", "resource_class": "baremetal-small",
        "deploy_interface": "direct", "description": None,
        "driver_info": spec.maps["driver_info"], "properties": spec.maps["properties"],
        "extra": {"labels": spec.labels},
    }


def test_booleans_from_yaml_and_csv() -> None:
    from_yaml = specs_of_yaml("- {name: a, driver: ipmi, automated_clean: false}\n")
    from_csv = validate_entries(read_csv("name,driver,automated_clean\nb,ipmi,No\nc,ipmi,yes\n",
                                         "inv.csv"))
    assert [s.fields["automated_clean"] for s in from_yaml + from_csv] == [False, False, True]


def test_pxe_macs_and_no_ports() -> None:
    with_pxe, without_ports = specs_of_yaml("""\
- {name: a, driver: ipmi, macs: "52:54:00:00:00:01;52:54:00:00:00:02",
   pxe_macs: [52:54:00:00:00:02]}
- {name: b, driver: ipmi}
""")
    assert [(p.address, p.fields["pxe_enabled"]) for p in with_pxe.ports or []] == [
        ("52:54:00:00:00:01", False), ("52:54:00:00:00:02", True)]
    assert without_ports.ports is None  # the node's ports are left alone


def test_ports_form_keeps_only_the_fields_given() -> None:
    (spec,) = specs_of_yaml("""\
- name: a
  driver: ipmi
  ports:
    - {address: "52:54:00:00:00:01", local_link_connection: {switch_id: lab, port_id: 3}}
    - {address: "52:54:00:00:00:02", pxe_enabled: false, physical_network: phys}
""")
    assert [(p.address, p.fields) for p in spec.ports or []] == [
        ("52:54:00:00:00:01", {"local_link_connection": {"switch_id": "lab", "port_id": "3"}}),
        ("52:54:00:00:00:02", {"pxe_enabled": False, "physical_network": "phys"}),
    ]


BROKEN_YAML = f"""\
- name: good-1
  driver: ipmi
  macs: [52:54:00:00:00:01]
- driver: ipmi
  macs: [52:54:00:00:00:02]
- name: good-1
  driver: ipmi
- name: bad-mac
  driver: ipmi
  macs: [52:54:00:00:00:03, "52:54:00:00:00:zz"]
- name: dup-mac
  driver: ipmi
  macs: [52:54:00:00:00:01]
- name: bad-types
  drvier: ipmi
  properties:
    cpus: eight
  vlans: {{tenant: 5000}}
  driver_info:
    ipmi_password: !!set {{{PASSWORD}: null}}
- name: bad name
  driver: ipmi
  room: [1, 2]
"""


def test_a_broken_yaml_inventory_reports_every_problem_with_its_line() -> None:
    assert problems(BROKEN_YAML) == [
        "inv.yaml:4: name is required",
        "inv.yaml:6: node good-1: name: the name is already used on line 1",
        "inv.yaml:10: node bad-mac: macs[1]: '52:54:00:00:00:zz' is not a MAC address",
        "inv.yaml:13: node dup-mac: macs[0]: MAC 52:54:00:00:00:01 is also given for node "
        "good-1 on line 1",
        "inv.yaml:14: node bad-types: driver is required",
        "inv.yaml:15: node bad-types: drvier: unknown field (did you mean driver?)",
        "inv.yaml:17: node bad-types: properties.cpus: expected a whole number (0 or more), "
        "not 'eight'",
        "inv.yaml:18: node bad-types: vlans.tenant: expected a VLAN id between 1 and 4094, "
        "not 5000",
        "inv.yaml:20: node bad-types: driver_info.ipmi_password: a set cannot be sent as JSON "
        "(quote it)",
        "inv.yaml:21: node bad name: name: 'bad name' cannot be a node name: names are 1-255 "
        "characters from letters, digits and -._~, and must not look like a UUID",
        "inv.yaml:23: node bad name: room: expected a room name",
    ]
    assert not any(PASSWORD in line for line in problems(BROKEN_YAML))


BROKEN_CSV = f"""\
name,driver,driver_info.ipmi_address,driver_info.ipmi_password,macs,properties.memory_mb,vlans.provisioning,vlans.tenat
ok-1,ipmi,10.0.0.1,{PASSWORD},52:54:00:00:00:01,4096,100,
ok-1,ipmi,10.0.0.2,{PASSWORD},52:54:00:00:00:02,4096,100,
,ipmi,10.0.0.3,{PASSWORD},52:54:00:00:00:03,4096,100,
no-driver,,10.0.0.4,{PASSWORD},52:54:00:00:00:04,4096,100,

bad-mem,ipmi,10.0.0.5,{PASSWORD},52:54:00:00:00:05,4 GiB,100,
dup-mac,ipmi,10.0.0.6,{PASSWORD},52:54:00:00:00:01 52:54:00:00:00:06 52:54:00:00:00:06,,0,
typo,ipmi,10.0.0.7,{PASSWORD},52:54:00:00:00:07,,,200
"""


def test_a_broken_csv_inventory_reports_every_problem_with_its_line() -> None:
    assert problems(BROKEN_CSV, read_csv, "inv.csv") == [
        "inv.csv:3: node ok-1: name: the name is already used on line 2",
        "inv.csv:4: name is required",
        "inv.csv:5: node no-driver: driver is required",
        "inv.csv:7: node bad-mem: properties.memory_mb: expected a whole number (0 or more), "
        "not '4 GiB'",
        "inv.csv:8: node dup-mac: macs[0]: MAC 52:54:00:00:00:01 is also given for node ok-1 "
        "on line 2",
        "inv.csv:8: node dup-mac: macs[2]: MAC 52:54:00:00:00:06 is given twice for this node",
        "inv.csv:8: node dup-mac: vlans.provisioning: expected a VLAN id between 1 and 4094, "
        "not '0'",
        "inv.csv:9: node typo: vlans.tenat: unknown VLAN; expected provisioning, cleaning, "
        "tenant (did you mean tenant?)",
    ]


@pytest.mark.parametrize(("text", "expected"), [
    ("- {name: a, driver: ipmi, macs: [52:54:00:00:00:01], ports: []}",
     "inv.yaml:1: node a: ports: give either macs or ports, not both"),
    ("- {name: a, driver: ipmi, local_link_connection: {port_id: x}}",
     "inv.yaml:1: node a: local_link_connection: needs macs"),
    ("- {name: a, driver: ipmi, macs: [52:54:00:00:00:01], pxe_macs: [52:54:00:00:00:02]}",
     "inv.yaml:1: node a: pxe_macs: MAC 52:54:00:00:00:02 is not one of the node's macs"),
    ("- {name: a, driver: ipmi, macs: [52:54:00:00:00:01], pxe_macs: [],\n"
     "   local_link_connection: {port_id: x}}",
     "inv.yaml:2: node a: local_link_connection: applies to the PXE-enabled MAC: there is none"),
    ("- {name: a, driver: ipmi, macs: [52:54:00:00:00:01],\n"
     "   local_link_connection: {port: x}}",
     "inv.yaml:2: node a: local_link_connection.port: unknown key; expected switch_id, "
     "port_id, switch_info, network_type (did you mean port_id?)"),
    ("- {name: a, driver: ipmi, ports: [{address: '52:54:00:00:00:01', pxe_enabled: yes2}]}",
     "inv.yaml:1: node a: ports[0].pxe_enabled: expected true or false"),
    ("- {name: a, driver: ipmi, extra: {labels: {x: y}}}",
     "inv.yaml:1: node a: extra.labels: give labels in the labels field (and room in room)"),
    ("- {name: a, driver: ipmi, room: B12, labels: {room: C3}}",
     "inv.yaml:1: node a: room: says 'B12' but labels.room says 'C3'"),
    ("- {name: a, driver: ipmi, vlans: {tenant: 200}, driver_info: {tenant_vlan: 300}}",
     "inv.yaml:1: node a: vlans: says tenant_vlan 200 but driver_info says 300"),
    ("- {name: a, driver: ipmi, uuid: not-a-uuid}",
     "inv.yaml:1: node a: uuid: 'not-a-uuid' is not a UUID"),
    ("- {name: a, driver: ipmi, conductor_group: 'a b'}",
     "inv.yaml:1: node a: conductor_group: only letters, digits and _-. are allowed"),
    ("- {name: a, driver: ipmi, resource_class: " + "x" * 81 + "}",
     "inv.yaml:1: node a: resource_class: longer than 80 characters"),
    ("- {name: a, driver: 7}",
     "inv.yaml:1: node a: driver: expected a non-empty string"),
    ("- {name: a, driver: ipmi, automated_clean: sometimes}",
     "inv.yaml:1: node a: automated_clean: expected true or false"),
    ("- {name: a, driver: ipmi, labels: {rack: [1]}}",
     "inv.yaml:1: node a: labels.rack: a label's value must be text or a number"),
])
def test_single_problems(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_a_misspelt_port_field() -> None:
    assert problems("- name: a\n  driver: ipmi\n  ports:\n  - {adress: '52:54:00:00:00:01'}") == [
        "inv.yaml:4: node a: ports[0].address: a MAC address is required",
        "inv.yaml:4: node a: ports[0].adress: unknown port field (did you mean address?)",
    ]


def test_the_same_uuid_twice() -> None:
    text = ("- {name: a, driver: ipmi, uuid: 1be26c0b-03f2-4d2e-ae87-c02d7f33c123}\n"
            "- {name: b, driver: ipmi, uuid: 1BE26C0B-03F2-4D2E-AE87-C02D7F33C123}\n")
    assert problems(text) == ["inv.yaml:2: node b: uuid: the UUID is already used on line 1"]


# -- against the server -------------------------------------------------------------------

DRIVERS = {
    "ipmi": DriverFacts("ipmi", properties.for_power("ipmi"),
                        {"deploy": ["direct", "iscsi"], "network": ["noop", "flat", "vlan"]}),
    "fake-hardware": DriverFacts("fake-hardware", properties.for_power("fake"),
                                 {"deploy": ["fake", "direct", "iscsi"]}),
}


def server_problems(text: str, existing: dict[str, Any] | None = None) -> list[str]:
    specs = specs_of_yaml(text)
    found: list[Problem] = check_with_server(specs, DRIVERS, existing or {})
    return [str(problem) for problem in sorted(found)]


def test_checks_against_the_drivers() -> None:
    text = f"""\
- name: a
  driver: impi
- name: b
  driver: ipmi
  driver_info:
    ipmi_adress: 10.0.0.1
    ipmi_password: "{PASSWORD}"
    rack_position: 7
  deploy_interface: direkt
- name: c
  driver: ipmi
  driver_info: {{ipmi_address: 10.0.0.3}}
- name: d
  driver: fake-hardware
"""
    assert server_problems(text) == [
        "inv.yaml:2: node a: driver: unknown driver 'impi'; the server has fake-hardware, "
        "ipmi (did you mean ipmi?)",
        "inv.yaml:5: node b: driver_info: ipmi_address is required by driver ipmi",
        "inv.yaml:6: node b: driver_info.ipmi_adress: unknown key for driver ipmi "
        "(did you mean ipmi_address?)",
        "inv.yaml:9: node b: deploy_interface: 'direkt' is not enabled for driver ipmi; it has "
        "direct, iscsi (did you mean direct?)",
    ]


def test_a_required_key_may_already_be_on_the_existing_node() -> None:
    text = "- {name: a, driver: ipmi, driver_info: {ipmi_username: admin}}\n"
    assert server_problems(text) == [
        "inv.yaml:1: node a: driver_info: ipmi_address is required by driver ipmi"]
    existing = {"a": {"driver_info": {"ipmi_address": "10.0.0.1"}}}
    assert server_problems(text, existing) == []
    # ... unless the file removes it.
    text = "- {name: a, driver: ipmi, driver_info: {ipmi_address: null}}\n"
    assert server_problems(text, existing) == [
        "inv.yaml:1: node a: driver_info: ipmi_address is required by driver ipmi"]


# -- the keys agree with their owners -----------------------------------------------------


def test_vlans_become_the_keys_the_vlan_interface_reads() -> None:
    (spec,) = specs_of_yaml("- {name: a, driver: ipmi, vlans: {provisioning: 100, "
                            "cleaning: 150, tenant: 200}}")
    vlans = node_vlans(spec.maps["driver_info"], Settings())
    assert (vlans.provisioning, vlans.cleaning, vlans.tenant) == (100, 150, 200)
    assert set(schema.VLAN_KEYS.values()) == set(spec.maps["driver_info"])


def test_local_link_keys_are_the_apis() -> None:
    assert set(schema.LOCAL_LINK_KEYS) == API_LOCAL_LINK_KEYS
