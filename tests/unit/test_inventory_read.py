"""Reading inventories: YAML (list, `baremetal create` format, defaults) and CSV, each value
with the line it was written on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from services.cli.enclume.inventory.model import InventoryInvalid, Problem
from services.cli.enclume.inventory.read import read_csv, read_inventory, read_yaml

PASSWORD = "Tr0ub4dor&3"


def problems_of(call: object, *args: object) -> list[Problem]:
    with pytest.raises(InventoryInvalid) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value.problems


def test_yaml_list_records_the_line_of_every_field() -> None:
    text = """\
# two machines
- name: rack1-01
  driver: ipmi
  driver_info:
    ipmi_address: 10.0.0.1
    ipmi_password: pw
  macs:
    - 52:54:00:00:00:01
    - 52:54:00:00:00:02
- name: rack1-02
  driver: ipmi
"""
    first, second = read_yaml(text, "inv.yaml")
    assert first.line == 2 and second.line == 10
    assert first.fields["driver_info"] == {"ipmi_address": "10.0.0.1", "ipmi_password": "pw"}
    assert first.line_of("driver_info.ipmi_address") == 5
    assert first.line_of("macs[1]") == 9
    # A path without its own line falls back to its parent, then to the entry.
    assert first.line_of("driver_info.missing") == 4
    assert second.line_of("driver_info") == 10


def test_unquoted_macs_and_dates_stay_text() -> None:
    # YAML 1.1 would read 52:54:00:12:34:56 as the base-60 integer 41135085296.
    (entry,) = read_yaml("- name: a\n  macs: [52:54:00:12:34:56]\n  extra: {bought: "
                         "2024-01-31, n: 12, f: 1.5, hexa: 0x10}\n", "x.yaml")
    assert entry.fields["macs"] == ["52:54:00:12:34:56"]
    assert entry.fields["extra"] == {"bought": "2024-01-31", "n": 12, "f": 1.5, "hexa": 16}
    # PyYAML's own loaders are untouched.
    assert yaml.safe_load("a: 1:30") == {"a": 90}


def test_baremetal_create_format_with_ports_reads_as_the_lab_writes_it() -> None:
    # The shape of tests/lab/harness/provisioning.py's inventory_entry(), dumped the same way.
    inventory = {"nodes": [{
        "name": "lab-ipmi-0", "driver": "ipmi",
        "driver_info": {"ipmi_address": "127.0.0.1", "ipmi_port": 6230,
                        "ipmi_username": "admin", "ipmi_password": "pw",
                        "provisioning_vlan": 100, "tenant_vlan": 200},
        "properties": {"capabilities": "boot_mode:bios", "memory_mb": 512, "cpus": 1,
                       "cpu_arch": "x86_64"},
        "network_interface": "vlan", "deploy_interface": "direct",
        "ports": [{"address": "52:54:00:ab:00:01", "pxe_enabled": True,
                   "local_link_connection": {"switch_info": "lab", "switch_id": "lab",
                                             "port_id": "3"}}],
    }]}
    (entry,) = read_yaml(yaml.safe_dump(inventory, sort_keys=False), "lab.yaml")
    assert entry.fields == inventory["nodes"][0]
    assert entry.line == 2
    assert entry.line_of("ports[0].local_link_connection.port_id") > entry.line


def test_defaults_fill_and_merge_and_keep_their_own_lines() -> None:
    text = """\
defaults:
  driver: ipmi
  driver_info:
    ipmi_username: admin
  room: B12
nodes:
  - name: a
    driver_info:
      ipmi_address: 10.0.0.1
  - name: b
    driver: redfish
    room: C3
"""
    first, second = read_yaml(text, "inv.yaml")
    assert first.fields == {"driver": "ipmi", "room": "B12", "name": "a",
                            "driver_info": {"ipmi_username": "admin",
                                            "ipmi_address": "10.0.0.1"}}
    assert first.line_of("driver_info.ipmi_username") == 4
    assert first.line_of("driver_info.ipmi_address") == 9
    assert first.line_of("driver") == 2
    assert second.fields["driver"] == "redfish" and second.fields["room"] == "C3"
    assert second.line_of("driver") == 11


def test_yaml_merge_keys_work_and_override() -> None:
    text = """\
- &base {name: a, driver: ipmi, resource_class: small}
- <<: *base
  name: b
"""
    _, second = read_yaml(text, "inv.yaml")
    assert second.fields == {"name": "b", "driver": "ipmi", "resource_class": "small"}


def test_yaml_structure_problems_are_all_reported_with_lines() -> None:
    text = """\
defaults:
  name: not-a-default
nodes:
  - name: a
    driver: ipmi
    driver: redfish
  - just a string
nodez: []
"""
    problems = problems_of(read_yaml, text, "inv.yaml")
    assert [(p.line, p.message) for p in problems] == [
        (2, "defaults: name cannot be a default, each node gives its own"),
        (6, "driver is given twice (first on line 5)"),
        (7, "a node must be a mapping of fields (name: ..., driver: ...)"),
        (8, "unknown top-level key 'nodez'; expected 'nodes' and optionally 'defaults' "
            "(did you mean nodes?)"),
    ]


def test_yaml_syntax_error_gives_the_line_and_never_the_text() -> None:
    text = f"- name: a\n  driver_info:\n    ipmi_password: {PASSWORD}: oops\n"
    (problem,) = problems_of(read_yaml, text, "inv.yaml")
    assert problem.line == 3
    assert problem.message.startswith("not valid YAML: ")
    assert PASSWORD not in str(problem)


@pytest.mark.parametrize(("text", "message"), [
    ("", "the inventory is empty"),
    ("nodes: []\n", "the inventory lists no nodes"),
    ("42\n", "expected a list of nodes, or a mapping with 'nodes' (and 'defaults')"),
    ("nodes: {a: 1}\n", "'nodes' must be a list of nodes"),
])
def test_yaml_without_nodes(text: str, message: str) -> None:
    (problem,) = problems_of(read_yaml, text, "inv.yaml")
    assert problem.message == message


def test_csv_rows_count_the_header_as_line_one() -> None:
    text = (
        "name,driver,driver_info.ipmi_address,macs,labels,room,properties.cpus\n"
        "n1,ipmi,10.0.0.1,52:54:00:00:00:01 52:54:00:00:00:02,rack=r1;row=3,B12,8\n"
        "\n"
        "# a comment row\n"
        '"n2",ipmi,10.0.0.2,"52:54:00:00:00:03;52:54:00:00:00:04",,,\n'
        'n3,ipmi,10.0.0.3,52:54:00:00:00:05,"rack=r2",,"16"\n'
    )
    first, second, third = read_csv(text, "inv.csv")
    assert (first.line, second.line, third.line) == (2, 5, 6)
    assert first.fields == {
        "name": "n1", "driver": "ipmi", "driver_info": {"ipmi_address": "10.0.0.1"},
        "macs": ["52:54:00:00:00:01", "52:54:00:00:00:02"],
        "labels": {"rack": "r1", "row": "3"}, "room": "B12", "properties": {"cpus": "8"}}
    # Empty cells give nothing.
    assert second.fields == {"name": "n2", "driver": "ipmi",
                             "driver_info": {"ipmi_address": "10.0.0.2"},
                             "macs": ["52:54:00:00:00:03", "52:54:00:00:00:04"]}
    assert third.line_of("properties.cpus") == 6


def test_csv_quoted_line_breaks_keep_later_lines_right() -> None:
    text = ('name,driver,description\n'
            'n1,ipmi,"first line\nsecond line"\n'
            'n2,ipmi,plain\n')
    first, second = read_csv(text, "inv.csv")
    assert first.line == 2 and first.fields["description"] == "first line\nsecond line"
    assert second.line == 4


def test_csv_header_and_row_problems() -> None:
    text = ("name,drivr,driver_info,ports,labels,driver_info.\n"
            "n1,ipmi,,,rack,\n"
            "n2,ipmi,,,,,too,many\n")
    problems = problems_of(read_csv, text, "inv.csv")
    assert [(p.line, p.message) for p in problems] == [
        (1, "column driver_info.: name a key after the dot"),
        (1, "column driver_info: give each key in its own column, such as driver_info.KEY"),
        (1, "column ports: use macs (and local_link_connection.* columns) in CSV"),
        (1, "unknown column drivr (did you mean driver?)"),
        (2, "labels: 'rack' is not key=value"),
        (3, "the row has 8 cells but the header names 6 columns"),
    ]


def test_read_inventory_picks_the_reader_by_suffix(tmp_path: Path) -> None:
    (tmp_path / "inv.csv").write_text("name,driver\nn1,ipmi\n")
    (tmp_path / "inv.yml").write_text("- {name: n1, driver: ipmi}\n")
    (tmp_path / "inv.json").write_text('{"nodes": [{"name": "n1", "driver": "ipmi"}]}')
    for name in ("inv.csv", "inv.yml", "inv.json"):
        (entry,) = read_inventory(tmp_path / name)
        assert entry.fields == {"name": "n1", "driver": "ipmi"}
    (tmp_path / "inv.txt").write_text("x")
    (problem,) = problems_of(read_inventory, tmp_path / "inv.txt")
    assert str(problem) == (f"{tmp_path / 'inv.txt'}: unknown inventory format: name the file "
                            "*.yaml, *.yml, *.json or *.csv")
    (problem,) = problems_of(read_inventory, tmp_path / "missing.yaml")
    assert "cannot read the file" in problem.message
    # A spreadsheet's byte order mark is not part of the first column's name.
    (tmp_path / "excel.csv").write_bytes(b"\xef\xbb\xbfname,driver\r\nn1,ipmi\r\n")
    (entry,) = read_inventory(tmp_path / "excel.csv")
    assert entry.fields == {"name": "n1", "driver": "ipmi"}
    (tmp_path / "latin1.csv").write_bytes(b"name,driver\nn\xe9,ipmi\n")
    (problem,) = problems_of(read_inventory, tmp_path / "latin1.csv")
    assert (problem.line, problem.message) == (2, "not UTF-8 text")
