"""Whether a node boots in BIOS or UEFI mode: its capabilities, else the configured default."""

from __future__ import annotations

from services.common.config import Settings
from services.common.models import Node

BOOT_MODES = ("bios", "uefi")


def capabilities(node: Node) -> dict[str, str]:
    """Ironic's ``properties.capabilities``: "key:value,key:value" (or already a dict)."""
    raw = (node.properties or {}).get("capabilities") or ""
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    pairs = (item.split(":", 1) for item in str(raw).split(",") if ":" in item)
    return {key.strip(): value.strip() for key, value in pairs}


def boot_mode(node: Node, settings: Settings) -> str:
    wanted = (node.instance_info or {}).get("deploy_boot_mode") or capabilities(node).get(
        "boot_mode")
    return wanted if wanted in BOOT_MODES else settings.drivers.default_boot_mode
