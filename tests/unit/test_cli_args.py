"""The CLI's parsing of what operators type, and the JSON patches built from it."""

from __future__ import annotations

import base64
import gzip
import io
import json
from pathlib import Path

import pytest
import typer

from services.cli.enclume import args
from services.cli.enclume.patches import (
    labels_operation,
    pointer,
    set_operations,
    unset_operations,
)


def test_pairs_decode_json_values_but_driver_info_stays_text() -> None:
    assert args.pairs(["cpus=4", "gpu=true", "name=web", "disks=[1, 2]", "x="], "--property") \
        == {"cpus": 4, "gpu": True, "name": "web", "disks": [1, 2], "x": ""}
    assert args.pairs(["ipmi_password=1234", "url=a=b"], "--driver-info", decode=False) == \
        {"ipmi_password": "1234", "url": "a=b"}
    assert args.pairs(None, "--extra") == {}


@pytest.mark.parametrize("bad", ["novalue", "=value"])
def test_pairs_refuse_what_is_not_key_value(bad: str) -> None:
    with pytest.raises(typer.BadParameter, match="KEY=VALUE"):
        args.pairs([bad], "--property")


def test_labels_match_all_given() -> None:
    node = {"extra": {"labels": {"room": "B12", "rack": 7}}}
    assert args.labels_of(node) == {"room": "B12", "rack": "7"}
    assert args.matches_labels(node, {"room": "B12", "rack": "7"})
    assert not args.matches_labels(node, {"room": "B12", "rack": "8"})
    assert not args.matches_labels({"extra": {}}, {"room": "B12"})
    assert args.matches_labels({"extra": None}, {})
    assert args.labels_of({"extra": {"labels": "not a map"}}) == {}


def test_json_or_file_reads_inline_json_files_and_yaml(tmp_path: Path) -> None:
    assert args.json_or_file('[{"a": 1}]', "--x") == [{"a": 1}]
    (tmp_path / "s.yaml").write_text("- interface: deploy\n  step: erase\n")
    assert args.json_or_file(f"@{tmp_path / 's.yaml'}", "--x") == \
        [{"interface": "deploy", "step": "erase"}]
    with pytest.raises(typer.BadParameter, match="cannot read"):
        args.json_or_file(f"@{tmp_path / 'missing.json'}", "--x")
    with pytest.raises(typer.BadParameter, match="invalid JSON"):
        args.json_or_file("{oops", "--x")


def test_yaml_errors_of_files_and_stdin_never_show_their_text(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    document = '- interface: deploy\n  args: {password: "s3cr3t-pass}\n'
    (tmp_path / "s.yaml").write_text(document)
    with pytest.raises(typer.BadParameter) as from_file:
        args.json_or_file(f"@{tmp_path / 's.yaml'}", "--x")
    monkeypatch.setattr("sys.stdin", io.StringIO(document))
    with pytest.raises(typer.BadParameter) as from_stdin:
        args.json_or_file("-", "--x")
    for caught, source in ((from_file, str(tmp_path / "s.yaml")), (from_stdin, "stdin")):
        message = caught.value.format_message()
        assert "s3cr3t" not in message
        assert (f"{source} is neither JSON nor YAML: line 3: while scanning a quoted scalar"
                in message), message


def test_steps_must_be_a_list_of_objects() -> None:
    assert args.steps(None, "--clean-steps") is None
    assert args.steps('[{"interface": "deploy", "step": "x"}]', "--clean-steps") == \
        [{"interface": "deploy", "step": "x"}]
    for bad in ('{"interface": "deploy"}', "[1, 2]"):
        with pytest.raises(typer.BadParameter, match="list of step objects"):
            args.steps(bad, "--clean-steps")


def test_config_drive_iso_file_is_gzipped_and_base64_encoded(tmp_path: Path) -> None:
    iso = tmp_path / "cd.iso"
    iso.write_bytes(b"CD001" + bytes(range(256)) * 8)
    encoded = args.config_drive(str(iso))
    assert isinstance(encoded, str)
    assert gzip.decompress(base64.b64decode(encoded)) == iso.read_bytes()


def test_config_drive_other_forms(tmp_path: Path) -> None:
    raw = b"CD001 image"
    gz = gzip.compress(raw)
    (tmp_path / "cd.gz").write_bytes(gz)
    assert base64.b64decode(str(args.config_drive(str(tmp_path / "cd.gz")))) == gz
    text = base64.b64encode(gz).decode()
    (tmp_path / "cd.b64").write_text(text[:10] + "\n" + text[10:] + "\n")
    assert args.config_drive(str(tmp_path / "cd.b64")) == text
    (tmp_path / "cd.json").write_text(json.dumps({"meta_data": {"hostname": "h"}}))
    assert args.config_drive(str(tmp_path / "cd.json")) == {"meta_data": {"hostname": "h"}}
    assert args.config_drive('{"user_data": "#!/bin/sh"}') == {"user_data": "#!/bin/sh"}
    assert args.config_drive("https://example.invalid/cd.iso") == \
        "https://example.invalid/cd.iso"
    assert args.config_drive(None) is None
    with pytest.raises(typer.BadParameter, match="neither"):
        args.config_drive(str(tmp_path / "missing.iso"))


def test_field_list() -> None:
    assert args.field_list("uuid, name,,provision_state") == ["uuid", "name", "provision_state"]
    assert args.field_list(None) is None
    with pytest.raises(typer.BadParameter):
        args.field_list(" , ")


def test_list_columns_are_the_fields_asked_or_the_short_or_long_set() -> None:
    short, every = ("uuid", "name"), ("uuid", "name", "extra")
    assert args.list_columns("name,uuid", False, short, every) == ["name", "uuid"]
    assert args.list_columns(None, False, short, every) == ["uuid", "name"]
    assert args.list_columns(None, True, short, every) == ["uuid", "name", "extra"]
    with pytest.raises(typer.BadParameter, match="cannot be combined"):
        args.list_columns("name", True, short, every)


def test_patches() -> None:
    assert pointer("driver_info", "a/b~c") == "/driver_info/a~1b~0c"
    assert set_operations({"name": "n1", "description": None},
                          {"properties": {"cpus": 4}, "extra": {}}) == [
        {"op": "add", "path": "/name", "value": "n1"},
        {"op": "add", "path": "/properties/cpus", "value": 4}]
    assert unset_operations(["description"], {"extra/labels": ["room"], "extra": []}) == [
        {"op": "remove", "path": "/description"},
        {"op": "remove", "path": "/extra/labels/room"}]
    assert labels_operation({"room": "B12", "rack": "7"}, {"room": "B13"}) == [
        {"op": "add", "path": "/extra/labels", "value": {"room": "B13", "rack": "7"}}]
    assert labels_operation({"room": "B12"}, {}) == []
