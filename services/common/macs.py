"""MAC addresses: the one parser, for the API's ports and the boot service's lookups."""

from __future__ import annotations

import re
from typing import Any

# Six octets of two hex digits (either case) separated by colons or hyphens, matched whole.
MAC_RE = re.compile(r"([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}")


def parse_mac(value: Any) -> str | None:
    """``value`` as a lower-case colon-separated MAC address, or None if it is not one."""
    if not isinstance(value, str) or not MAC_RE.fullmatch(value):
        return None
    return value.lower().replace("-", ":")
