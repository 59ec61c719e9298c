"""The validation rules (services.common.validation) and the grammars that use them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.api.patch import apply_patch
from services.common import validation
from services.common.exceptions import Invalid
from services.common.macs import parse_mac
from services.drivers.network.switches.base import check_interface_name


def test_every_limit_is_ironics_column_size_where_ironic_has_one() -> None:
    limits = validation.FIELD_LIMITS
    assert (limits["name"], limits["resource_class"], limits["owner"], limits["lessee"],
            limits["conductor_group"], limits["physical_network"], limits["trait"]) == (
        255, 80, 255, 255, 255, 64, 255)
    assert limits["maintenance_reason"] == limits["description"] == 4096


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("owner", "project-1", "project-1"),
    ("description", "line one\nline two\ttabbed\r\n", "line one\nline two\ttabbed\r\n"),
    ("description", "cafe\u0301", "caf\u00e9"),  # NFC
    ("resource_class", "x" * 80, "x" * 80),
])
def test_text_accepts_clean_strings(field: str, value: str, expected: str) -> None:
    assert validation.text(field, value) == expected


@pytest.mark.parametrize(("field", "value", "fragment"), [
    ("owner", "a\ud800", "lone surrogate"),
    ("description", "\udfff", "lone surrogate"),
    ("owner", "a\nb", "control character"),
    ("owner", "trailing\n", "control character"),
    ("description", "nul\x00", "control character"),
    ("description", "esc\x1b[31m", "control character"),
    ("maintenance_reason", "c1\x85", "control character"),
    ("resource_class", "x" * 81, "at most 80"),
    ("maintenance_reason", "x" * 4097, "at most 4096"),
    ("agent_version", "9" * 65, "at most 64"),
    ("owner", {"a": 1}, "expected a string"),
    ("owner", 5, "expected a string"),
])
def test_text_refuses(field: str, value: Any, fragment: str) -> None:
    with pytest.raises(Invalid, match=fragment):
        validation.text(field, value)


def test_uuids_are_canonical_and_lower_case() -> None:
    value = str(uuid.uuid4())
    assert validation.uuid_value("uuid", value.upper()) == value
    for bad in (value + "\n", " " + value, value.replace("-", ""), "{" + value + "}",
                "urn:uuid:" + value, value[:-1] + "_", value[:-1] + "\u0661", None, 5,
                {"a": 1}):
        assert not validation.is_uuid(bad)
        with pytest.raises(Invalid, match="Expected UUID for uuid: "):
            validation.uuid_value("uuid", bad)


@pytest.mark.parametrize("good", ["node-1", "a.b_c~d", "x" * 255])
def test_names(good: str) -> None:
    assert validation.name(good) == good


# The random UUIDs get fixed ids: pytest-xdist's workers must collect the same test ids.
@pytest.mark.parametrize("bad", ["node-1\n", "", "has space", "x" * 256,
                                 pytest.param(str(uuid.uuid4()), id="uuid"),
                                 pytest.param(uuid.uuid4().hex, id="uuid-hex"),
                                 "n\u00e9", None, {"a": 1}])
def test_bad_names(bad: Any) -> None:
    assert not validation.is_valid_name(bad)
    with pytest.raises(Invalid, match="as a node name"):
        validation.name(bad)


def test_conductor_groups() -> None:
    assert validation.conductor_group("rack-1.a_b") == "rack-1.a_b"
    assert validation.conductor_group("") == ""
    for bad in ("group\n", "with space", "x" * 256, {"a": 1}):
        with pytest.raises(Invalid):
            validation.conductor_group(bad)


def test_traits_match_whole() -> None:
    assert validation.traits(["CUSTOM_A", "HW_X", "CUSTOM_A"]) == ["CUSTOM_A", "HW_X"]
    for bad in (["CUSTOM_A\n"], ["custom_a"], ["C" * 256], [{"a": 1}], "CUSTOM_A"):
        with pytest.raises(Invalid):
            validation.traits(bad)


def test_node_idents() -> None:
    value = str(uuid.uuid4())
    assert validation.node_ident("node", value) == value
    assert validation.node_ident("node", "node-1") == "node-1"
    for bad in ({"a": 1}, "node-1\n", "has space", 5):
        with pytest.raises(Invalid, match="node UUID or name"):
            validation.node_ident("node", bad)


def test_macs_match_whole() -> None:
    assert parse_mac("52-54-00-AA-BB-CC") == "52:54:00:aa:bb:cc"
    for bad in ("52:54:00:aa:bb:cc\n", "52:54:00:aa:bb:cc:dd", "\u0665" * 12, None):
        assert parse_mac(bad) is None


def test_switch_port_ids_match_whole() -> None:
    assert check_interface_name("Gi1/0/1") is None
    assert check_interface_name("Gi1/0/1\n") is not None


@pytest.mark.parametrize("value", [
    {"a": float("nan")}, {"a": [float("inf")]}, {"a": {"b": -float("inf")}},
    {"a": "\ud800"}, {"\udc00": 1}, [["x\x00"]], {"a": {1, 2}},
])
def test_json_values_refuse_what_cannot_be_stored_or_rendered(value: Any) -> None:
    with pytest.raises(Invalid):
        validation.json_value("extra", value)


def test_json_values_keep_their_strings_as_sent() -> None:
    value = {"password": "cafe\u0301\n\t", "n": [1, 2.5, True, None]}
    assert validation.json_object("driver_info", value) == value


def test_json_depth_is_limited() -> None:
    deep: Any = {"leaf": 1}
    for _ in range(validation.MAX_JSON_DEPTH - 1):
        deep = [deep]  # MAX_JSON_DEPTH containers in all
    validation.json_value("extra", deep)
    with pytest.raises(Invalid, match="nested more than"):
        validation.json_value("extra", [deep])


@pytest.mark.parametrize(("raw", "fragment"), [
    (b'{"a": NaN}', "NaN"),
    (b'{"a": -Infinity}', "Infinity"),
    (b'{"a": 1e999}', "NaN and Infinity"),
    (b'{"a": "\\ud800"}', "lone surrogate"),
    (b'{"a": "\\u0000"}', "NUL"),
    (b'{"a": ' + b"1" * 5000 + b"}", "too long"),
    (b"\xff\xfe", "not UTF-8"),
    (b'{"a": ', "Invalid JSON"),
])
def test_parse_json_refuses(raw: bytes, fragment: str) -> None:
    with pytest.raises(Invalid, match=fragment):
        validation.parse_json(raw)


def test_parse_json_accepts_json() -> None:
    assert validation.parse_json('{"a": [1, 2.5, "\u00e9\\n"]}'.encode()) == {
        "a": [1, 2.5, "\u00e9\n"]}


def test_integers_are_ascii_digits() -> None:
    assert validation.integer("limit", "-12") == -12
    for bad in ("\u0661", "1_0", " 1", "1\n", "9" * 19, "", None):
        with pytest.raises(Invalid, match="Invalid value for limit"):
            validation.integer("limit", bad)


@pytest.mark.parametrize("index", ["\u0661", "1" * 5000, "\uff11", "-1"])
def test_patch_indexes_are_ascii_digits(index: str) -> None:
    with pytest.raises(Invalid, match="index"):
        apply_patch({"extra": {"list": [0, 1]}},
                    [{"op": "replace", "path": f"/extra/list/{index}", "value": 5}])
