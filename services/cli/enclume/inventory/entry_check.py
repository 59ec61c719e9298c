"""Checking one inventory entry alone into a node specification: its fields, maps, labels
and ports, every problem named by its path; values of secret keys are never quoted."""

from __future__ import annotations

import uuid
from typing import Any

from services.cli.enclume.inventory import schema
from services.cli.enclume.inventory.model import (
    NodeSpec,
    PortSpec,
    Problem,
    RawEntry,
)
from services.common.macs import parse_mac
from services.common.validation import (
    CONDUCTOR_GROUP_RE,
    FIELD_LIMITS,
    MAX_VLAN,
    MIN_VLAN,
    NAME_RULE,
    is_uuid,
    is_valid_name,
    is_vlan_id,
)

# Text fields that null resets (to the server's default); driver and uuid cannot be reset.
_RESETTABLE = frozenset(schema.TEXT_FIELDS + schema.INTERFACE_FIELDS) - {"driver", "uuid"}


class EntryCheck:
    def __init__(self, entry: RawEntry) -> None:
        self.entry = entry
        self.fields = entry.fields
        self.problems: list[Problem] = []

    def bad(self, path: str, message: str) -> None:
        self.problems.append(self.entry.problem(path, message))

    def run(self) -> NodeSpec:
        for key in self.fields:
            if not isinstance(key, str) or key not in schema.FIELDS:
                self.bad(str(key), f"unknown field{schema.did_you_mean(str(key), schema.FIELDS)}")
        spec = NodeSpec(name=self._name(), entry=self.entry)
        spec.fields = self._text_fields()
        spec.maps = self._maps()
        spec.labels = self._labels()
        spec.ports = self._ports()
        return spec

    # -- scalar fields ---------------------------------------------------------------------

    def _name(self) -> str:
        name = self.fields.get("name")
        if name is None:
            self.bad("", "name is required")
            return ""
        if not is_valid_name(name):
            self.bad("name", f"{name!r} cannot be a node name: {NAME_RULE}")
            return ""
        return str(name)

    def _text_fields(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if self.fields.get("driver") is None:
            self.bad("", "driver is required")
        for name in (*schema.TEXT_FIELDS, *schema.INTERFACE_FIELDS):
            if name not in self.fields:
                continue
            value = self.fields[name]
            if value is None:
                if name in _RESETTABLE:
                    values[name] = None
                continue
            if not isinstance(value, str) or not value:
                self.bad(name, "expected a non-empty string")
                continue
            limit = FIELD_LIMITS.get(name)
            if limit is not None and len(value) > limit:
                self.bad(name, f"longer than {limit} characters")
            elif name == "conductor_group" and not CONDUCTOR_GROUP_RE.fullmatch(value):
                self.bad(name, "only letters, digits and _-. are allowed")
            elif name == "uuid":
                if not is_uuid(value):
                    self.bad(name, f"{value!r} is not a UUID")
                    continue
                value = str(uuid.UUID(value))
            values[name] = value
        for name in schema.BOOL_FIELDS:
            if name in self.fields:
                values[name] = self._boolean(name, self.fields[name])
        return values

    def _boolean(self, path: str, value: Any) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in schema.TRUE_WORDS or word in schema.FALSE_WORDS:
            return word in schema.TRUE_WORDS
        self.bad(path, "expected true or false")
        return None

    # -- mapping fields --------------------------------------------------------------------

    def _mapping(self, path: str, value: Any) -> dict[str, Any] | None:
        """``value`` if it is a mapping with text keys holding JSON values, else None."""
        if not isinstance(value, dict):
            self.bad(path, "expected a mapping of keys to values")
            return None
        clean = {}
        for key, item in value.items():
            if not isinstance(key, str) or not key:
                self.bad(path, f"key {key!r} is not a non-empty string")
                continue
            problem = _not_json(item)
            if problem:
                self.bad(f"{path}.{key}", problem)
                continue
            clean[key] = item
        return clean

    def _maps(self) -> dict[str, dict[str, Any]]:
        maps = {}
        for name in schema.NODE_MAPS:
            if self.fields.get(name) is not None:
                checked = self._mapping(name, self.fields[name])
                if checked is not None:
                    maps[name] = checked
        properties = maps.get("properties", {})
        for key in schema.NUMERIC_PROPERTIES:
            if properties.get(key) is not None:
                properties[key] = self._whole_number(f"properties.{key}", properties[key])
        if "labels" in maps.get("extra", {}):
            self.bad("extra.labels", "give labels in the labels field (and room in room)")
        info = maps.get("driver_info")
        for key in schema.VLAN_KEYS.values():
            if info and info.get(key) is not None:
                info[key] = self._vlan(f"driver_info.{key}", info[key])
        vlans = self._vlans()
        if vlans:
            info = maps.setdefault("driver_info", {})
            for key, vlan in vlans.items():
                if key in info and info[key] != vlan:
                    self.bad("vlans", f"says {key} {vlan} but driver_info says {info[key]}")
                info[key] = vlan
        return maps

    def _whole_number(self, path: str, value: Any) -> Any:
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.bad(path, f"expected a whole number (0 or more), not {value!r}")
        return value

    def _vlan(self, path: str, value: Any) -> Any:
        number = value
        if isinstance(value, str) and value.strip().isdigit():
            number = int(value)
        if not is_vlan_id(number):
            self.bad(path, f"expected a VLAN id between {MIN_VLAN} and {MAX_VLAN}, "
                           f"not {value!r}")
            return value
        return number

    def _vlans(self) -> dict[str, Any]:
        """``vlans`` as driver_info keys (provisioning -> provisioning_vlan ...)."""
        given = self.fields.get("vlans")
        if given is None:
            return {}
        checked = self._mapping("vlans", given)
        vlans = {}
        for key, value in (checked or {}).items():
            if key not in schema.VLAN_KEYS:
                self.bad(f"vlans.{key}", f"unknown VLAN; expected "
                                         f"{', '.join(schema.VLAN_KEYS)}"
                                         f"{schema.did_you_mean(key, schema.VLAN_KEYS)}")
                continue
            vlan = None if value is None else self._vlan(f"vlans.{key}", value)
            vlans[schema.VLAN_KEYS[key]] = vlan
        return vlans

    def _labels(self) -> dict[str, str | None]:
        labels: dict[str, str | None] = {}
        given = self.fields.get("labels")
        if given is not None:
            for key, value in (self._mapping("labels", given) or {}).items():
                text = _label_text(value)
                if text is False:
                    self.bad(f"labels.{key}", "a label's value must be text or a number")
                    continue
                labels[key] = text  # type: ignore[assignment]
        if "room" in self.fields:
            room = _label_text(self.fields["room"])
            if room is False or room == "":
                self.bad("room", "expected a room name")
            elif schema.ROOM_LABEL in labels and labels[schema.ROOM_LABEL] != room:
                self.bad("room", f"says {room!r} but labels.{schema.ROOM_LABEL} says "
                                 f"{labels[schema.ROOM_LABEL]!r}")
            else:
                labels[schema.ROOM_LABEL] = room  # type: ignore[assignment]
        return labels

    # -- ports -----------------------------------------------------------------------------

    def _ports(self) -> list[PortSpec] | None:
        has_macs, has_ports = "macs" in self.fields, "ports" in self.fields
        if has_macs and has_ports:
            self.bad("ports", "give either macs or ports, not both")
            return None
        if has_ports:
            if "pxe_macs" in self.fields:
                self.bad("pxe_macs", "with ports, say pxe_enabled in each port")
            if "local_link_connection" in self.fields:
                self.bad("local_link_connection",
                         "with ports, give local_link_connection in each port")
            return self._port_list()
        if has_macs:
            return self._mac_list()
        for name in ("pxe_macs", "local_link_connection"):
            if name in self.fields:
                self.bad(name, "needs macs")
        return None

    def _macs(self, path: str) -> list[tuple[str, str]]:
        """The valid MACs of ``path`` (normalised), each with where it is written."""
        given = self.fields.get(path)
        items = schema.split_list(given) if isinstance(given, str) else given
        if not isinstance(items, list):
            self.bad(path, "expected a list of MAC addresses")
            return []
        macs: list[tuple[str, str]] = []
        for index, item in enumerate(items):
            mac = parse_mac(item)
            if mac is None:
                self.bad(f"{path}[{index}]", f"{item!r} is not a MAC address")
            elif mac in dict(macs):
                self.bad(f"{path}[{index}]", f"MAC {mac} is given twice for this node")
            else:
                macs.append((mac, f"{path}[{index}]"))
        return macs

    def _mac_list(self) -> list[PortSpec]:
        macs = self._macs("macs")
        if "pxe_macs" in self.fields:
            pxe = [mac for mac, _path in self._macs("pxe_macs")]
            for mac in pxe:
                if mac not in dict(macs):
                    self.bad("pxe_macs", f"MAC {mac} is not one of the node's macs")
        else:
            pxe = [mac for mac, _path in macs[:1]]
        ports = [PortSpec(mac, {"pxe_enabled": mac in pxe}, path) for mac, path in macs]
        link = self.fields.get("local_link_connection")
        if link is not None:
            checked = self._link("local_link_connection", link)
            cabled = next((port for port in ports if port.fields["pxe_enabled"]), None)
            if cabled is None:
                self.bad("local_link_connection", "applies to the PXE-enabled MAC: there is none")
            elif checked is not None:
                cabled.fields["local_link_connection"] = checked
        return ports

    def _link(self, path: str, value: Any) -> dict[str, Any] | None:
        checked = self._mapping(path, value)
        if checked is None:
            return None
        for key, item in list(checked.items()):
            if key not in schema.LOCAL_LINK_KEYS:
                self.bad(f"{path}.{key}", f"unknown key; expected "
                                          f"{', '.join(schema.LOCAL_LINK_KEYS)}"
                                          f"{schema.did_you_mean(key, schema.LOCAL_LINK_KEYS)}")
            elif isinstance(item, int) and not isinstance(item, bool):
                checked[key] = str(item)  # a vde switch port number
            elif not isinstance(item, str) or not item:
                self.bad(f"{path}.{key}", "expected a non-empty string")
        return checked

    def _port_list(self) -> list[PortSpec]:
        given = self.fields["ports"]
        if not isinstance(given, list):
            self.bad("ports", "expected a list of ports")
            return []
        ports = []
        seen: set[str] = set()
        for index, item in enumerate(given):
            path = f"ports[{index}]"
            if not isinstance(item, dict):
                self.bad(path, "a port must be a mapping (address: ..., pxe_enabled: ...)")
                continue
            for key in item:
                if key not in schema.PORT_FIELDS:
                    hint = schema.did_you_mean(str(key), schema.PORT_FIELDS)
                    self.bad(f"{path}.{key}", f"unknown port field{hint}")
            mac = parse_mac(item.get("address"))
            if mac is None:
                self.bad(f"{path}.address", "a MAC address is required" if "address" not in item
                         else f"{item['address']!r} is not a MAC address")
                continue
            if mac in seen:
                self.bad(f"{path}.address", f"MAC {mac} is given twice for this node")
                continue
            seen.add(mac)
            ports.append(PortSpec(mac, self._port_fields(path, item), f"{path}.address"))
        return ports

    def _port_fields(self, path: str, item: dict[str, Any]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if "pxe_enabled" in item:
            if isinstance(item["pxe_enabled"], bool):
                fields["pxe_enabled"] = item["pxe_enabled"]
            else:
                self.bad(f"{path}.pxe_enabled", "expected true or false")
        if item.get("local_link_connection") is not None:
            link = self._link(f"{path}.local_link_connection", item["local_link_connection"])
            if link is not None:
                fields["local_link_connection"] = link
        if "physical_network" in item:
            network = item["physical_network"]
            if network is None or (isinstance(network, str) and 0 < len(network) <= 64):
                fields["physical_network"] = network
            else:
                self.bad(f"{path}.physical_network", "expected a name of at most 64 characters")
        if item.get("extra") is not None:
            extra = self._mapping(f"{path}.extra", item["extra"])
            if extra is not None:
                fields["extra"] = extra
        return fields


def _label_text(value: Any) -> str | bool | None:
    """A label value as text; None to remove the label; False when it cannot be one."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value).strip()
    return False


def _not_json(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` cannot be sent as JSON, or None. Never quotes the value."""
    if depth > 32:
        return "nested too deeply"
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if value == value and abs(value) != float("inf") else "not a finite number"
    if isinstance(value, list):
        return next((p for p in (_not_json(v, depth + 1) for v in value) if p), None)
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            return "mapping keys must be text"
        return next((p for p in (_not_json(v, depth + 1) for v in value.values()) if p), None)
    return f"a {type(value).__name__} cannot be sent as JSON (quote it)"
