"""Reading an inventory file (YAML or CSV) into raw entries that know their line numbers.

YAML: a list of nodes, or a mapping with ``nodes`` (the `baremetal create` format) and
optionally ``defaults`` (fields every node gets unless it gives its own; mapping fields are
merged key by key). Lines come from PyYAML's node marks. CSV: a header line, then one node per
row; ``FIELD.KEY`` columns fill mapping fields; the line of a row counts the header as line 1.

Nothing here checks values beyond what is needed to read them: ``validate`` does that.
Messages never quote the file's text (it may hold BMC passwords).
"""

from __future__ import annotations

import copy
import csv
import io
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from services.cli.enclume.inventory import schema
from services.cli.enclume.inventory.model import InventoryInvalid, Problem, RawEntry
from services.common.yaml_errors import describe_yaml_error

YAML_SUFFIXES = (".yaml", ".yml", ".json")
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
CSV_SUFFIXES = (".csv",)
TOP_LEVEL_KEYS = ("nodes", "defaults")


def read_inventory(path: Path) -> list[RawEntry]:
    """The entries of the file at ``path``; InventoryInvalid listing every problem found."""
    source = str(path)
    suffix = path.suffix.lower()
    if suffix not in YAML_SUFFIXES + CSV_SUFFIXES:
        raise InventoryInvalid([Problem(source, 0, "unknown inventory format: name the file "
                                        "*.yaml, *.yml, *.json or *.csv")])
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise InventoryInvalid([Problem(source, 0, f"cannot read the file: {exc.strerror}")]
                               ) from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise InventoryInvalid([Problem(source, line, "not UTF-8 text")]) from None
    if suffix in CSV_SUFFIXES:
        return read_csv(text, source)
    return read_yaml(text, source)


# -- YAML ---------------------------------------------------------------------------------


class InventoryLoader(yaml.SafeLoader):
    """YAML 1.1 without its sexagesimal numbers and timestamps (as YAML 1.2): an unquoted MAC
    such as 52:54:00:12:34:56 stays a string (PyYAML would read the integer 41135085296), and
    a date stays text (it could not be sent as JSON)."""


InventoryLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in (_INT_TAG, _FLOAT_TAG, _TIMESTAMP_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
InventoryLoader.add_implicit_resolver(
    _INT_TAG,
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"))
InventoryLoader.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))


def read_yaml(text: str, source: str) -> list[RawEntry]:
    loader = InventoryLoader(text)
    try:
        root = loader.get_single_node()
        return _YamlReader(loader, source).entries(root)
    except yaml.YAMLError as exc:
        problem = describe_yaml_error(exc)
        raise InventoryInvalid([Problem(source, problem.line or 1,
                                        f"not valid YAML: {problem.description}")]) from None
    finally:
        loader.dispose()


class _YamlReader:
    def __init__(self, loader: InventoryLoader, source: str) -> None:
        self.loader = loader
        self.source = source
        self.problems: list[Problem] = []

    def entries(self, root: Node | None) -> list[RawEntry]:
        items, defaults = self._top_level(root)
        entries = []
        for item in items:
            if not isinstance(item, MappingNode):
                self._problem(item, "a node must be a mapping of fields (name: ..., driver: ...)")
                continue
            entry = self._entry(item)
            entries.append(entry if defaults is None else with_defaults(defaults, entry))
        if not entries and not self.problems:
            self._problem(root, "the inventory lists no nodes")
        if self.problems:
            raise InventoryInvalid(self.problems)
        return entries

    def _top_level(self, root: Node | None) -> tuple[list[Node], RawEntry | None]:
        if root is None:
            self.problems.append(Problem(self.source, 1, "the inventory is empty"))
            return [], None
        if isinstance(root, SequenceNode):
            return list(root.value), None
        if not isinstance(root, MappingNode):
            self._problem(root, "expected a list of nodes, or a mapping with 'nodes' "
                                "(and 'defaults')")
            return [], None
        self.loader.flatten_mapping(root)
        nodes: Node | None = None
        defaults = None
        for key_node, value_node in root.value:
            key = str(self.loader.construct_object(key_node))
            if key == "nodes":
                nodes = value_node
            elif key == "defaults":
                if isinstance(value_node, MappingNode):
                    defaults = self._entry(value_node)
                    self._check_defaults(defaults)
                else:
                    self._problem(value_node, "defaults must be a mapping of fields")
            else:
                self._problem(key_node, f"unknown top-level key {key!r}; expected 'nodes' "
                                        f"and optionally 'defaults'"
                                        f"{schema.did_you_mean(key, TOP_LEVEL_KEYS)}")
        if nodes is None:
            self._problem(root, "no 'nodes' list in the inventory")
            return [], defaults
        if not isinstance(nodes, SequenceNode):
            self._problem(nodes, "'nodes' must be a list of nodes")
            return [], defaults
        return list(nodes.value), defaults

    def _check_defaults(self, defaults: RawEntry) -> None:
        for key in defaults.fields:
            if key in schema.PER_NODE_ONLY:
                self.problems.append(Problem(
                    self.source, defaults.line_of(str(key)),
                    f"defaults: {key} cannot be a default, each node gives its own"))

    def _entry(self, node: MappingNode) -> RawEntry:
        lines: dict[str, int] = {}
        self._walk(node, "", lines)
        fields = self.loader.construct_object(node, deep=True)
        return RawEntry(self.source, _line(node), fields, lines)

    def _walk(self, node: Node, path: str, lines: dict[str, int]) -> None:
        """Record the line of every key and list item under ``node``; refuse repeated keys."""
        if isinstance(node, MappingNode):
            self._refuse_repeated_keys(node, path)
            self.loader.flatten_mapping(node)  # YAML merge keys (<<: *anchor)
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node)
                sub = f"{path}.{key}" if path else str(key)
                lines[sub] = _line(key_node)
                self._walk(value_node, sub, lines)
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                sub = f"{path}[{index}]"
                lines[sub] = _line(item)
                self._walk(item, sub, lines)

    def _refuse_repeated_keys(self, node: MappingNode, path: str) -> None:
        # PyYAML keeps the last of repeated keys silently; in an inventory that hides mistakes.
        # Keys merged in with << may be overridden: only the mapping's own keys count.
        seen: dict[str, int] = {}
        for key_node, _value in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = key_node.value
            if key in seen:
                where = f"{path}.{key}" if path else key
                self._problem(key_node, f"{where} is given twice (first on line {seen[key]})")
            else:
                seen[key] = _line(key_node)

    def _problem(self, node: Node | None, message: str) -> None:
        self.problems.append(Problem(self.source, _line(node) if node else 1, message))


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def with_defaults(defaults: RawEntry, entry: RawEntry) -> RawEntry:
    """``entry`` completed by ``defaults``: missing fields taken, mapping fields merged."""
    fields = copy.deepcopy(defaults.fields)
    for key, value in entry.fields.items():
        inherited = fields.get(key)
        if key in schema.MAP_FIELDS and isinstance(value, dict) and isinstance(inherited, dict):
            fields[key] = {**inherited, **value}
        else:
            fields[key] = value
    return RawEntry(entry.source, entry.line, fields, {**defaults.lines, **entry.lines})


# -- CSV ----------------------------------------------------------------------------------


def read_csv(text: str, source: str) -> list[RawEntry]:
    reader = csv.reader(io.StringIO(text, newline=""))
    problems: list[Problem] = []
    try:
        header = next(reader, None)
        if header is None:
            raise InventoryInvalid([Problem(source, 1, "the inventory is empty")])
        columns = _check_header([cell.strip() for cell in header], source, problems)
        entries = []
        last_line = reader.line_num
        for row in reader:
            line, last_line = last_line + 1, reader.line_num
            if not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
                continue
            if len(row) > len(columns):
                problems.append(Problem(source, line, f"the row has {len(row)} cells but the "
                                                      f"header names {len(columns)} columns"))
                continue
            entries.append(_row_entry(source, line, columns, row, problems))
    except csv.Error as exc:
        raise InventoryInvalid([*problems, Problem(source, reader.line_num,
                                                   f"not valid CSV: {exc}")]) from None
    if not entries and not problems:
        problems.append(Problem(source, 1, "the inventory lists no nodes"))
    if problems:
        raise InventoryInvalid(problems)
    return entries


def _check_header(header: list[str], source: str, problems: list[Problem]) -> list[str]:
    plain = schema.csv_columns()
    seen: set[str] = set()
    for column in header:
        prefix, dot, key = column.partition(".")
        if not column:
            problems.append(Problem(source, 1, "a column of the header has no name"))
        elif column in seen:
            problems.append(Problem(source, 1, f"column {column} is named twice"))
        elif dot and prefix in schema.MAP_FIELDS:
            if not key:
                problems.append(Problem(source, 1, f"column {column}: name a key after the dot"))
        elif dot or column not in plain:
            problems.append(Problem(source, 1, _unknown_column(column, plain)))
        seen.add(column)
    if "name" not in header:
        problems.append(Problem(source, 1, "the header has no name column"))
    return header


def _unknown_column(column: str, plain: frozenset[str]) -> str:
    if column in schema.MAP_FIELDS:
        return f"column {column}: give each key in its own column, such as {column}.KEY"
    if column == "ports":
        return "column ports: use macs (and local_link_connection.* columns) in CSV"
    known = plain | {f"{field}." for field in schema.MAP_FIELDS}
    return f"unknown column {column}{schema.did_you_mean(column, known)}"


def _row_entry(source: str, line: int, columns: list[str], row: list[str],
               problems: list[Problem]) -> RawEntry:
    fields: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for column, raw in zip(columns, row, strict=False):
        value = raw.strip()
        if not value:
            continue  # an empty cell gives nothing
        lines[column] = line
        prefix, dot, key = column.partition(".")
        if dot and prefix in schema.MAP_FIELDS:
            target = fields.setdefault(prefix, {})
            if isinstance(target, dict):
                target[key] = value
                lines.setdefault(prefix, line)
        elif column in schema.CSV_LIST_COLUMNS:
            fields[column] = schema.split_list(value)
        elif column == "labels":
            labels = fields.setdefault("labels", {})
            for item in value.split(schema.CSV_LABEL_SEPARATOR):
                label, equals, label_value = item.partition("=")
                if not item.strip():
                    continue
                if not equals or not label.strip():
                    problems.append(Problem(source, line, f"labels: {item.strip()!r} is not "
                                                          "key=value"))
                    continue
                labels[label.strip()] = label_value.strip()
        else:
            fields[column] = value
    return RawEntry(source, line, fields, lines)
