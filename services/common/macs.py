"""MAC addresses: the one parser, for the API's ports and the boot service's lookups."""

from __future__ import annotations

import re
from typing import Any

_MAC = re.compile(r"([0-9a-f]{2}[:-]){5}[0-9a-f]{2}")


def parse_mac(value: Any) -> str | None:
    """``value`` as a lower-case colon-separated MAC address, or None if it is not one."""
    if not isinstance(value, str):
        return None
    lowered = value.lower()
    if not _MAC.fullmatch(lowered):
        return None
    return lowered.replace("-", ":")
