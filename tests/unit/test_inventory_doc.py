"""docs/inventory-format.md stays true: its YAML and CSV examples are read and checked as
`enclume enroll` would, and the driver_info keys it lists are the drivers' own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.cli.enclume.inventory.read import read_csv, read_yaml
from services.cli.enclume.inventory.validate import DriverFacts, check_with_server, validate_entries
from services.common import driver_properties as properties

DOC = Path(__file__).resolve().parents[2] / "docs" / "inventory-format.md"
TEXT = DOC.read_text()
BLOCKS = re.findall(r"```(yaml|csv)\n(.*?)```", TEXT, flags=re.DOTALL)
DRIVERS = {name: DriverFacts(name, properties.for_power(power))
           for name, power in (("ipmi", "ipmi"), ("redfish", "redfish"), ("wol", "wol"),
                               ("fake-hardware", "fake"))}


def test_the_page_has_examples_of_both_formats() -> None:
    assert [kind for kind, _ in BLOCKS].count("yaml") >= 3
    assert [kind for kind, _ in BLOCKS].count("csv") >= 1


@pytest.mark.parametrize(("kind", "text"), BLOCKS)
def test_each_example_is_a_valid_inventory(kind: str, text: str) -> None:
    reader = read_yaml if kind == "yaml" else read_csv
    specs = validate_entries(reader(text, f"example.{kind}"))
    assert specs
    assert check_with_server(specs, DRIVERS, {}) == []


def test_the_listed_driver_info_keys_are_the_drivers() -> None:
    section = TEXT.split("driver_info keys are the driver's", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r"`([a-z_]+)`", section))
    known = {*properties.IPMI, *properties.REDFISH, *properties.WOL, *properties.COMMON}
    assert listed - {"ipmi", "redfish", "wol"} == known
