"""The fields an inventory entry may have (docs/inventory-format.md describes them)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from services.common.node_fields import INTERFACES

# Node fields copied as they are (strings).
TEXT_FIELDS = ("driver", "resource_class", "description", "conductor_group", "owner", "lessee",
               "uuid")
# Node fields that are true or false (null: the server's default); CSV: true/false, yes/no.
BOOL_FIELDS = ("automated_clean",)
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")
# firmware_interface is newer than the API version Enclume serves.
INTERFACE_FIELDS = tuple(f"{name}_interface" for name in INTERFACES if name != "firmware")
# Node fields that are JSON objects, merged key by key into the node's.
NODE_MAPS = ("driver_info", "properties", "extra")
# Fields of the file that are mappings (also in CSV as ``FIELD.KEY`` columns).
MAP_FIELDS = (*NODE_MAPS, "labels", "vlans", "local_link_connection")
FIELDS = frozenset({"name", *TEXT_FIELDS, *BOOL_FIELDS, *INTERFACE_FIELDS, *MAP_FIELDS,
                    "macs", "pxe_macs", "ports", "room"})
# What a YAML file's ``defaults`` may not give: what identifies one machine.
PER_NODE_ONLY = frozenset({"name", "uuid", "macs", "pxe_macs", "ports"})

# A port of the ``ports`` list (Ironic's port fields, as `baremetal create` reads them).
PORT_FIELDS = ("address", "pxe_enabled", "local_link_connection", "physical_network", "extra")
# The keys the API accepts in a port's local_link_connection (services/api/ports.py).
LOCAL_LINK_KEYS = ("switch_id", "port_id", "switch_info", "network_type")

# ``vlans`` keys -> the driver_info keys the ``vlan`` network interface reads
# (services/drivers/network/vlan.py, node_vlans).
VLAN_KEYS = {"provisioning": "provisioning_vlan", "cleaning": "cleaning_vlan",
             "tenant": "tenant_vlan"}

# properties that schedulers and inspection read as whole numbers.
NUMERIC_PROPERTIES = ("cpus", "memory_mb", "local_gb")

# The label that ``room`` sets.
ROOM_LABEL = "room"

# Fields holding several MAC addresses; as text (CSV cells), separated by spaces, ";" or ",".
CSV_LIST_COLUMNS = ("macs", "pxe_macs")
_LIST_SEPARATORS = re.compile(r"[\s;,]+")
# CSV: the labels column holds "key=value;key=value".
CSV_LABEL_SEPARATOR = ";"


HINT_CUTOFF = 0.6  # difflib's similarity ratio: "port" -> "port_id", "drvier" -> "driver"


def did_you_mean(word: str, candidates: Iterable[str], cutoff: float = HINT_CUTOFF) -> str:
    """' (did you mean X?)' when a candidate is close to ``word``, else ''."""
    close = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=cutoff)
    return f" (did you mean {close[0]}?)" if close else ""


def csv_columns() -> frozenset[str]:
    """Plain column names (mapping fields only as ``FIELD.KEY``; ``ports`` not at all)."""
    return frozenset(FIELDS - {"ports", *MAP_FIELDS} | {"labels"})


def split_list(text: str) -> list[str]:
    """The items of a list written as text: "a b", "a;b" and "a, b" all give ["a", "b"]."""
    return [item for item in _LIST_SEPARATORS.split(text) if item]
