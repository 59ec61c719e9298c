"""The actions of inspection rules, as Ironic's inspection rules engine runs them
(ironic/common/inspection_rules/actions.py), on the node's row in the inspection's session.

Paths are "a/b/c" or "a.b.c"; the first part is a field of the node (or port). Ironic lets a
rule set any field of its node object; here only the fields an operator may change through
the API (the JSON fields, the free texts, the flags) can be set or deleted, so that a rule
cannot move a node's state or identity behind the state machine's back."""

from __future__ import annotations

import copy
import logging
import time
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import select

from services.common import validation
from services.common.exceptions import DriverError, Invalid
from services.common.models import Port
from services.drivers.inspect.rule_arguments import RuleExecutionError, arguments

if TYPE_CHECKING:
    from services.conductor.task import Task

LOG = logging.getLogger(__name__)
FORMATTED: dict[str, tuple[str, ...]] = {
    "log": ("msg",), "api-call": ("url",),
    **{op: ("value",) for op in ("set-attribute", "extend-attribute", "set-capability",
                                 "set-plugin-data", "extend-plugin-data",
                                 "set-port-attribute", "extend-port-attribute")},
}
JSON_FIELDS = frozenset({"driver_info", "properties", "instance_info", "extra", "network_data"})
NODE_FIELDS = JSON_FIELDS | {
    "name", "description", "resource_class", "owner", "lessee", "conductor_group", "shard",
    "maintenance", "maintenance_reason", "protected", "protected_reason", "retired",
    "retired_reason", "automated_clean"}
PORT_JSON_FIELDS = frozenset({"extra", "local_link_connection"})
PORT_FIELDS = PORT_JSON_FIELDS | {"physical_network", "pxe_enabled", "is_smartnic"}
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class RuleFailed(DriverError):
    """The ``fail`` action: inspection fails with the rule's message."""

    def __init__(self, msg: Any) -> None:
        super().__init__(f"Failed to inspect hardware. Reason: {msg}")


def _parts(path: Any) -> list[str]:
    text = str(path)
    return text.strip("/").split("/") if "/" in text else text.split(".")


def _check_top(row: Any, field: str, value: Any, allowed: frozenset[str],
               json_fields: frozenset[str]) -> None:
    if field not in allowed:
        raise Invalid(f"the field {field} cannot be changed by an inspection rule")
    if field in json_fields and not isinstance(value, dict):
        raise Invalid(f"{field} must be an object")
    if field not in json_fields and value is not None and not isinstance(
            value, type(getattr(row, field)) if getattr(row, field) is not None else str):
        raise Invalid(f"{field} cannot be set to {value!r}")
    validation.json_value(field, value)


def _change(row: Any, path: Any, allowed: frozenset[str], json_fields: frozenset[str],
            change: Any) -> None:
    """Apply ``change(container, key)`` at ``path`` of a copy of the field, then store it."""
    parts = _parts(path)
    if len(parts) == 1:
        holder = {parts[0]: copy.deepcopy(getattr(row, parts[0], None))}
        change(holder, parts[0])
        value = holder.get(parts[0], {} if parts[0] in json_fields else None)
    else:
        if parts[0] not in json_fields:
            raise Invalid(f"{parts[0]} is not an object")
        value = copy.deepcopy(getattr(row, parts[0]) or {})
        current = value
        for part in parts[1:-1]:
            current = current.setdefault(part, {})
        change(current, parts[-1])
    _check_top(row, parts[0], value, allowed, json_fields)
    setattr(row, parts[0], value)


def _set(value: Any) -> Any:
    def change(container: dict[str, Any], key: str) -> None:
        container[key] = value
    return change


def _extend(path: Any, value: Any, unique: bool) -> Any:
    def change(container: dict[str, Any], key: str) -> None:
        current = container.get(key)
        current = [] if current is None else current
        if not isinstance(current, list):
            raise Invalid(f"Cannot extend non-list attribute {path} with value {value}")
        if not unique or value not in current:
            current.append(value)
        container[key] = current
    return change


def _delete(container: dict[str, Any], key: str) -> None:
    del container[key]


def _port(task: Task, port_id: Any) -> Port:
    port = task.session.scalar(select(Port).where(Port.node_id == task.node.id,
                                                  Port.uuid == str(port_id)))
    if port is None:
        raise RuleExecutionError(f"Port {port_id} could not be found.")
    return port


def _capabilities(task: Task, name: Any, value: Any | None) -> None:
    """Ironic's add/remove_node_capability on ``properties.capabilities`` ("k:v,k:v")."""
    properties = dict(task.node.properties or {})
    found = str(properties.get("capabilities") or "")
    if value is not None:
        new = f"{name}:{value}"
        properties["capabilities"] = f"{found},{new}" if found else new
    else:
        kept = [cap for cap in found.split(",") if not cap.startswith(f"{name}:")]
        properties["capabilities"] = ",".join(kept)
    task.node.properties = properties


def _traits(task: Task, name: Any, add: bool) -> None:
    traits = list(task.node.traits or [])
    if add:
        task.node.traits = validation.traits([*traits, name])
    elif name in traits:
        task.node.traits = [trait for trait in traits if trait != name]
    else:
        LOG.warning("inspection rule: node %s has no trait %s to remove", task.node.uuid, name)


def _plugin_data(op: str, args: dict[str, Any], plugin_data: dict[str, Any]) -> None:
    keys = str(args["path"]).split(".")  # dots only, as Ironic's plugin data paths
    current: Any = plugin_data
    if op == "unset-plugin-data":
        for key in keys[:-1]:
            if not isinstance(current, dict) or key not in current:
                LOG.warning("inspection rule: plugin data path %s not found", args["path"])
                return
            current = current[key]
        if isinstance(current, dict):
            current.pop(keys[-1], None)
        return
    for key in keys[:-1]:
        current = current.setdefault(key, {})
    if op == "set-plugin-data":
        current[keys[-1]] = args["value"]
        return
    found = current.get(keys[-1]) or []
    if not args.get("unique") or args["value"] not in found:
        found.append(args["value"])
    current[keys[-1]] = found


def _api_call(url: Any, headers: Any = None, proxies: Any = None, timeout: Any = 5,
              retries: Any = 3, backoff_factor: Any = 0.3) -> None:
    """GET ``url``: retried on 429 and 5xx with exponential back-off, an error otherwise."""
    try:
        timeout, retries, backoff = float(timeout), int(retries), float(backoff_factor)
        if timeout <= 0:
            raise ValueError("timeout must be greater than zero")
    except (TypeError, ValueError) as exc:
        raise RuleExecutionError(f"Invalid parameter: {exc}") from None
    mounts = {f"{scheme}://": httpx.HTTPTransport(proxy=proxy)
              for scheme, proxy in (proxies or {}).items()}
    try:
        with httpx.Client(timeout=timeout, headers=headers or None, mounts=mounts) as client:
            for attempt in range(retries + 1):
                response = client.get(str(url))
                if response.status_code not in RETRY_STATUSES or attempt == retries:
                    break
                time.sleep(backoff * 2 ** attempt)
            response.raise_for_status()
    except httpx.HTTPError as exc:
        raise RuleExecutionError(f"Request to {url} failed: {exc}") from None


def run(task: Task, action: dict[str, Any], context: dict[str, Any],
        plugin_data: dict[str, Any], item: dict[str, Any] | None) -> None:
    """Run one action (once; the engine loops)."""
    op = action["op"]
    args = arguments(op, action.get("args", {}), FORMATTED.get(op, ()), context, item)
    node = task.node
    try:
        if op == "fail":
            raise RuleFailed(args["msg"])
        if op == "log":
            level = str(args.get("level", "info")).lower()
            if level not in LOG_LEVELS:
                raise RuleExecutionError(f"Invalid log level: {level}. Choose from "
                                         f"{', '.join(LOG_LEVELS)}")
            getattr(LOG, level)("inspection rule on node %s: %s", node.uuid, args["msg"])
        elif op == "set-attribute":
            _change(node, args["path"], NODE_FIELDS, JSON_FIELDS, _set(args["value"]))
        elif op == "extend-attribute":
            _change(node, args["path"], NODE_FIELDS, JSON_FIELDS,
                    _extend(args["path"], args["value"], bool(args.get("unique"))))
        elif op == "del-attribute":
            _change(node, args["path"], NODE_FIELDS, JSON_FIELDS, _delete)
        elif op in ("set-capability", "unset-capability"):
            _capabilities(task, args["name"], args.get("value") if op == "set-capability"
                          else None)
        elif op in ("add-trait", "remove-trait"):
            _traits(task, args["name"], op == "add-trait")
        elif op.endswith("-plugin-data"):
            _plugin_data(op, args, plugin_data)
        elif op.endswith("-port-attribute"):
            port = _port(task, args["port_id"])
            change = {"set-port-attribute": lambda: _set(args["value"]),
                      "extend-port-attribute": lambda: _extend(args["path"], args["value"],
                                                               bool(args.get("unique"))),
                      "del-port-attribute": lambda: _delete}[op]()
            _change(port, args["path"], PORT_FIELDS, PORT_JSON_FIELDS, change)
        else:  # api-call: the API accepts no other action
            _api_call(**args)
    except (Invalid, KeyError, TypeError, AttributeError) as exc:
        raise RuleExecutionError(f"Failed to apply {op}: {exc}") from None
