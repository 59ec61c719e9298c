"""Checks of the classroom's own fields (the generic text and name rules are
``services.common.validation``'s, used as they are)."""

from __future__ import annotations

import ipaddress
import re
from datetime import date, datetime
from typing import Any

from services.common.exceptions import Invalid
from services.common.validation import MAX_VLAN, MIN_VLAN, is_vlan_id, shown

DISK_FORMATS = ("raw", "qcow2")
IMAGE_TYPES = ("whole-disk", "partition")
BOOT_MODES = ("bios", "uefi")
BEFORE = ("restore-full", "restore-delta", "none")
RESTORING = BEFORE[:2]  # the "before" values that restore the room first
AFTER = ("restore", "power-off", "nothing")
OCCURRENCE_STATES = ("planned", "claimed", "running", "done", "missed", "cancelled")
JOB_KINDS = ("wake", "restore", "restore-delta", "power-off", "log-out")
JOB_STATES = ("pending", "running", "done", "failed-partly", "failed", "cancelled")
SHA256 = re.compile(r"[0-9a-fA-F]{64}")
USER_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,255}")
SOURCE_LIMIT = 2048


def choice(field: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise Invalid(f"Invalid value for {field}: {shown(value)}; one of "
                      f"{', '.join(allowed)}.")
    return str(value)


def vlan(field: str, value: Any) -> int | None:
    if value is None:
        return None
    if not is_vlan_id(value):
        raise Invalid(f"Invalid value for {field}: {shown(value)}; a VLAN id is "
                      f"{MIN_VLAN} to {MAX_VLAN}.")
    return value


def subnet(value: Any) -> ipaddress.IPv4Network | None:
    """A room's IPv4 subnet, written as a CIDR network (host bits zero): 10.12.0.0/16."""
    if value is None:
        return None
    try:
        network = ipaddress.IPv4Network(value) if isinstance(value, str) else None
    except ValueError:
        network = None
    if network is None or network.prefixlen > 30 or network.is_loopback or (
            network.is_multicast or network.is_reserved or network.is_unspecified):
        raise Invalid(f"Invalid subnet {shown(value)}: expected an IPv4 network such as "
                      "10.12.0.0/16 (host bits zero, at most /30).")
    return network


def wol_broadcast(value: Any, network: ipaddress.IPv4Network | None) -> str | None:
    """A directed broadcast address inside the room's subnet: the broadcast address of the
    subnet or of a part of it (10.12.3.255 in 10.12.0.0/16)."""
    if value is None:
        return None
    if network is None:
        raise Invalid("A room's wol_broadcast needs its subnet: set subnet too.")
    try:
        address = ipaddress.IPv4Address(value) if isinstance(value, str) else None
    except ValueError:
        address = None
    if address is None or address not in network or not any(
            ipaddress.IPv4Network(f"{address}/{prefix}", strict=False).broadcast_address
            == address for prefix in range(network.prefixlen, 31)):
        raise Invalid(f"Invalid wol_broadcast {shown(value)}: expected the broadcast address "
                      f"of {network} or of a part of it (such as {network.broadcast_address}).")
    return str(address)


TRANSFERS = ("unicast", "multicast")


def transfer(value: Any) -> str:
    if value not in TRANSFERS:
        raise Invalid(f"Invalid transfer {shown(value)}: expected one of {', '.join(TRANSFERS)}.")
    return str(value)


LOGIN_LANGUAGES = ("en", "fr")  # of the login prompt at the PCs (agent/login_texts.py)


def optional_flag(field: str, value: Any) -> bool | None:
    """true, false, or null (the setting that applies when nothing is said)."""
    if value is not None and not isinstance(value, bool):
        raise Invalid(f"Invalid value for {field}: {shown(value)}; true, false or null.")
    return value


def login_language(value: Any) -> str | None:
    return None if value is None else choice("login_language", value, LOGIN_LANGUAGES)


def checksum(value: Any) -> str:
    if not isinstance(value, str) or SHA256.fullmatch(value) is None:
        raise Invalid(f"Invalid checksum {shown(value)}: expected a sha256 as 64 hex digits.")
    return value.lower()


def source(field: str, value: Any) -> str:
    """A URL (http, https, file) or a file name in the image store."""
    if not isinstance(value, str) or not value or len(value) > SOURCE_LIMIT or any(
            ord(c) < 0x20 or c == "\x7f" for c in value):
        raise Invalid(f"Invalid {field} {shown(value)}: expected a URL or a file name of at "
                      f"most {SOURCE_LIMIT} characters.")
    scheme, sep, _ = value.partition("://")
    if sep and scheme.lower() not in ("http", "https", "file"):
        raise Invalid(f"Invalid {field} {shown(value)}: URLs are http, https or file.")
    if not sep and ("/" in value or value in (".", "..")):
        raise Invalid(f"Invalid {field} {shown(value)}: a file name in the image store has no "
                      "slash.")
    return value


def user_name(value: Any) -> str:
    if not isinstance(value, str) or USER_NAME.fullmatch(value) is None:
        raise Invalid(f"Invalid user name {shown(value)}: 1-255 letters, digits and _.@-.")
    return value


def wall_clock(field: str, value: Any) -> datetime:
    """A wall-clock time in the room's zone: ISO 8601 without an offset (2026-10-20T14:00)."""
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is not None:
        raise Invalid(f"Invalid {field} {shown(value)}: expected a wall-clock time in the "
                      "room's time zone, like 2026-10-20T14:00 (no UTC offset).")
    return parsed


def wall_clock_or_date(field: str, value: Any) -> datetime | date:
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    return wall_clock(field, value)


def positive_int(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Invalid(f"Invalid value for {field}: {shown(value)}; expected a positive "
                      "integer.")
    return value


def known_keys(kind: str, body: Any, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Invalid(f"Invalid {kind}: expected a JSON object.")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise Invalid(f"Unknown attribute(s) for {kind}: {', '.join(unknown)}.")
    return body


MAX_LAYOUT = 30  # rows or columns of a room's grid


def layout(value: Any) -> tuple[int, int] | None:
    """A room's grid: ``{"rows": R, "columns": C}`` (each 1 to 30), or null for none."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"rows", "columns"}:
        raise Invalid("Invalid layout: expected {\"rows\": R, \"columns\": C} or null.")
    for key in ("rows", "columns"):
        number = value[key]
        if isinstance(number, bool) or not isinstance(number, int) or \
                not 1 <= number <= MAX_LAYOUT:
            raise Invalid(f"Invalid layout {key}: {shown(number)}; 1 to {MAX_LAYOUT}.")
    return value["rows"], value["columns"]
