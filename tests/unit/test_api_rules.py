"""Pure API rules: microversion parsing, JSON Patch, secret masking, node field checks."""

from __future__ import annotations

import pytest

from services.api import node_rules, versions
from services.api.patch import apply_patch
from services.common import validation
from services.common.config import Settings
from services.common.exceptions import Invalid
from services.common.secrets import MASK, mask
from services.drivers.registry import Drivers


@pytest.mark.parametrize(("headers", "expected"), [
    ({}, versions.MIN_VERSION),
    ({"x-openstack-ironic-api-version": "1.50"}, (1, 50)),
    ({"x-openstack-ironic-api-version": "latest"}, versions.MAX_VERSION),
    ({"openstack-api-version": "compute 2.1, baremetal 1.42"}, (1, 42)),
    ({"openstack-api-version": "baremetal latest"}, versions.MAX_VERSION),
])
def test_version_negotiation(headers: dict[str, str], expected: versions.Version) -> None:
    assert versions.parse(headers) == expected


@pytest.mark.parametrize("raw", ["1", "one.two", "1.2.3", ""])
def test_malformed_versions_are_refused(raw: str) -> None:
    with pytest.raises(versions.InvalidVersion):
        versions.parse({"x-openstack-ironic-api-version": raw})


def test_max_version_is_at_least_1_73() -> None:
    assert versions.MAX_VERSION >= (1, 73)


def test_patch_add_replace_remove() -> None:
    doc = {"extra": {"a": 1}, "name": "x", "traits": ["A"]}
    result = apply_patch(doc, [
        {"op": "add", "path": "/extra/b", "value": 2},
        {"op": "replace", "path": "/name", "value": "y"},
        {"op": "remove", "path": "/extra/a"},
        {"op": "add", "path": "/traits/-", "value": "B"},
        {"op": "add", "path": "/extra/we~1ird~0key", "value": True},
    ])
    assert result == {"extra": {"b": 2, "we/ird~key": True}, "name": "y", "traits": ["A", "B"]}
    assert doc == {"extra": {"a": 1}, "name": "x", "traits": ["A"]}  # the input is untouched


@pytest.mark.parametrize("patch", [
    {"op": "add"},
    [],
    [{"op": "move", "path": "/name", "from": "/x"}],
    [{"op": "add", "path": "/name"}],
    [{"op": "replace", "path": "name", "value": 1}],
    [{"op": "remove", "path": "/extra/missing"}],
    [{"op": "replace", "path": "/extra/missing", "value": 1}],
    [{"op": "add", "path": "/traits/9", "value": "Z"}],
    [{"op": "add", "path": "/name", "value": 1, "junk": 2}],
])
def test_bad_patches_are_refused(patch: object) -> None:
    with pytest.raises(Invalid):
        apply_patch({"extra": {}, "name": None, "traits": []}, patch)  # type: ignore[arg-type]


def test_masking_hides_secrets_at_any_depth() -> None:
    info = {"ipmi_password": "p", "ipmi_username": "admin", "ipmi_hex_kg_key": "k",
            "nested": {"redfish_password": "q", "list": [{"auth_token": "t"}]},
            "empty_password": ""}
    masked = mask(info)
    assert masked["ipmi_password"] == MASK and masked["ipmi_hex_kg_key"] == MASK
    assert masked["ipmi_username"] == "admin"
    assert masked["nested"]["redfish_password"] == MASK
    assert masked["nested"]["list"][0]["auth_token"] == MASK
    assert masked["empty_password"] == ""
    assert info["ipmi_password"] == "p"


def test_node_values_get_interface_defaults_and_refuse_bad_ones() -> None:
    drivers = Drivers(Settings())
    values = node_rules.check_values({"driver": "fake-hardware", "name": "n-1"}, drivers)
    assert values["power_interface"] == "fake" and values["network_interface"] == "noop"
    with pytest.raises(Invalid, match="power interface"):
        node_rules.check_values({"driver": "fake-hardware", "power_interface": "ipmi"}, drivers)
    with pytest.raises(Invalid, match="hardware type"):
        node_rules.check_values({"driver": "nope"}, drivers)
    with pytest.raises(Invalid, match="Cannot create node with invalid name 'has space'"):
        node_rules.check_values({"driver": "fake-hardware", "name": "has space"}, drivers)
    with pytest.raises(Invalid, match="UUID"):
        node_rules.check_values({"driver": "fake-hardware", "instance_uuid": "x"}, drivers)


def test_traits_are_checked_and_deduplicated() -> None:
    assert validation.traits(["CUSTOM_A", "HW_CPU_X86_AVX2", "CUSTOM_A"]) == [
        "CUSTOM_A", "HW_CPU_X86_AVX2"]
    for bad in (["custom_lower"], ["CUSTOM-DASH"], "CUSTOM_A", [1]):
        with pytest.raises(Invalid):
            validation.traits(bad)
    with pytest.raises(Invalid, match="at most"):
        validation.traits([f"CUSTOM_{i}" for i in range(51)])
