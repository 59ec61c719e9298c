"""``enclume node inventory NODE``: what inspection (or discovery) found on the machine.

``-f json``/``yaml`` print the API's document (``{"inventory": ..., "plugin_data": ...}``);
the table is a summary: CPUs, memory, disks, interfaces, system, boot.
"""

from __future__ import annotations

from typing import Any

import typer

from services.cli.enclume.client import ApiError
from services.cli.enclume.context import cli
from services.cli.enclume.options import Format, Node
from services.cli.enclume.output import COLUMN_FORMATS, render

app = typer.Typer()

MIB = 1024**2
GIB = 1024**3


def _size(size_bytes: Any) -> str:
    if not isinstance(size_bytes, int) or isinstance(size_bytes, bool):
        return "size unknown"
    if size_bytes >= GIB:
        return f"{size_bytes / GIB:.0f} GiB"
    return f"{size_bytes // MIB} MiB"


def _joined(parts: list[str]) -> str:
    return "; ".join(parts) if parts else "none"


def _words(*values: Any) -> str:
    return " ".join(str(value) for value in values if value not in (None, ""))


def summary(inventory: dict[str, Any]) -> dict[str, str]:
    """One line per part of the machine, from the agent's inventory (missing parts: none)."""
    cpu = inventory.get("cpu") or {}
    memory = inventory.get("memory") or {}
    memory_mb = memory.get("physical_mb")
    if memory_mb is None and isinstance(memory.get("total_bytes"), int):
        memory_mb = memory["total_bytes"] // MIB
    disks = [_words(disk.get("name"), _size(disk.get("size")), disk.get("model"))
             for disk in inventory.get("disks") or [] if isinstance(disk, dict)]
    interfaces = [_words(nic.get("name"), nic.get("mac_address"), nic.get("ipv4_address"))
                  for nic in inventory.get("interfaces") or [] if isinstance(nic, dict)]
    vendor = inventory.get("system_vendor") or {}
    boot = inventory.get("boot") or {}
    return {
        "cpus": _words(cpu.get("count"), cpu.get("architecture"),
                       f"({cpu['model_name']})" if cpu.get("model_name") else None)
        or "unknown",
        "memory": f"{memory_mb} MiB" if memory_mb is not None else "unknown",
        "disks": _joined(disks),
        "interfaces": _joined(interfaces),
        "system": _words(vendor.get("manufacturer"), vendor.get("product_name"),
                         f"serial {vendor['serial_number']}"
                         if vendor.get("serial_number") else None) or "unknown",
        "boot": _words(boot.get("current_boot_mode"),
                       f"from {boot['pxe_interface']}" if boot.get("pxe_interface") else None)
        or "unknown",
    }


@app.command("inventory")
def inventory(ctx: typer.Context, node: Node, fmt: Format = None) -> None:
    """What inspection found on the node: a summary, or the whole inventory with -f json|yaml."""
    state = cli(ctx)
    try:
        data = state.client.get(f"/v1/nodes/{node}/inventory")
    except ApiError as exc:
        if exc.status == 404 and "inventory could not be found" in exc.message:
            raise ApiError(404, f"{exc.message} It has none until it is inspected "
                                f"(enclume node inspect {node}) or discovered.") from None
        raise
    chosen = state.output_format(fmt)
    if chosen in COLUMN_FORMATS:
        render(summary(data.get("inventory") or {}), None, chosen)
    else:
        render(data, None, chosen)
