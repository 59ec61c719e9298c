"""Reading a node's driver_info: required keys, ports, booleans, with messages users can act on."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from services.common.secrets import is_secret_key
from services.drivers.base import DriverError, MissingParameters


class InvalidParameter(DriverError):
    pass


def require(info: Mapping[str, Any], keys: Iterable[str], what: str) -> None:
    missing = [key for key in keys if info.get(key) in (None, "")]
    if missing:
        raise MissingParameters(
            f"Missing the following {what} in node's driver_info: {', '.join(missing)}.")


def port_number(info: Mapping[str, Any], key: str, default: int) -> int:
    value = info.get(key)
    if value in (None, ""):
        return default
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"{key} must be a port number, not {value!r}.") from None
    if not 0 < port < 65536:
        raise InvalidParameter(f"{key} must be between 1 and 65535, not {port}.")
    return port


def boolean_or_path(info: Mapping[str, Any], key: str, default: bool) -> bool | str:
    """Ironic's ``redfish_verify_ca``: true/false (also as strings) or a CA bundle path."""
    value = info.get(key)
    if value in (None, ""):
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        if value.startswith("/"):
            return value
    raise InvalidParameter(f"{key} must be true, false or the absolute path of a CA bundle, "
                           f"not {value!r}.")


def text(info: Mapping[str, Any], key: str, default: str = "") -> str:
    value = info.get(key)
    if value is None:
        return default
    if not isinstance(value, str | int):
        shown = f"a {type(value).__name__}" if is_secret_key(key) else repr(value)
        raise InvalidParameter(f"{key} must be a string, not {shown}.")
    return str(value)
