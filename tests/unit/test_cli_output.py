"""Tables, JSON, YAML, values and CSV of the CLI."""

from __future__ import annotations

import io
import json

import yaml

from services.cli.enclume.output import cell, format_output, heading, render

NODES = [{"uuid": "u1", "name": "[bold]n1[/bold]", "maintenance": False, "extra": {"b": 1},
          "last_error": None, "links": [{"href": "x"}]},
         {"uuid": "u2", "name": "n2", "maintenance": True, "extra": {}, "last_error": "boom",
          "links": []}]


def test_headings_and_cells() -> None:
    assert heading("provision_state") == "Provision State"
    assert heading("instance_uuid") == "Instance UUID"
    assert heading("pxe_enabled") == "PXE Enabled"
    assert cell(None) == "None" and cell(True) == "True" and cell(3) == "3"
    assert cell({"b": 1, "a": [1]}) == '{"a": [1], "b": 1}'


def test_json_and_yaml_parse_back_to_the_data() -> None:
    assert json.loads(format_output(NODES, ["uuid"], "json")) == NODES
    assert yaml.safe_load(format_output(NODES, ["uuid"], "yaml")) == NODES
    assert yaml.safe_load(format_output(NODES[0], None, "yaml")) == NODES[0]


def test_list_table_shows_columns_and_text_not_markup() -> None:
    table = format_output(NODES, ["uuid", "name", "maintenance", "extra", "last_error"],
                          "table")
    lines = table.splitlines()
    assert "UUID" in lines[1] and "Last Error" in lines[1]
    assert "[bold]n1[/bold]" in table  # data is never read as rich markup
    assert '{"b": 1}' in table and "boom" in table and "None" in table
    assert all(len(line) < 200 for line in lines)  # not padded to the pipe width


def test_single_item_table_is_field_and_value_without_links() -> None:
    table = format_output(NODES[1], None, "table")
    assert "Field" in table and "Value" in table and "maintenance" in table
    assert "links" not in table
    assert "links" in format_output(NODES[1], ["uuid", "links"], "table")


def test_render_writes_plain_text_when_not_a_terminal() -> None:
    out = io.StringIO()
    render(NODES, ["uuid", "name"], "table", out=out)
    assert "\x1b[" not in out.getvalue() and "u2" in out.getvalue()
    out = io.StringIO()
    render(NODES, None, "json", out=out)
    assert json.loads(out.getvalue()) == NODES


def test_values_for_scripts() -> None:
    assert format_output(NODES, ["uuid", "name", "last_error"], "value").splitlines() == [
        "u1 [bold]n1[/bold] None", "u2 n2 boom"]
    assert format_output(NODES[1], ["uuid", "extra"], "value").splitlines() == ["u2", "{}"]
    assert format_output([], ["uuid"], "value") == ""
    out = io.StringIO()
    render([], ["uuid"], "value", out=out)
    assert out.getvalue() == ""  # no empty line for a `while read` loop


def test_csv_has_a_header_and_quoted_rows() -> None:
    import csv

    rows = list(csv.reader(io.StringIO(format_output(NODES, ["uuid", "extra"], "csv"))))
    assert rows == [["UUID", "Extra"], ["u1", '{"b": 1}'], ["u2", "{}"]]
    rows = list(csv.reader(io.StringIO(format_output(NODES[1], ["uuid", "name"], "csv"))))
    assert rows == [["Field", "Value"], ["uuid", "u2"], ["name", "n2"]]
    assert format_output(NODES[1], ["uuid"], "csv").splitlines()[1] == '"uuid","u2"'
