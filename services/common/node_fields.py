"""The interfaces a node has, without the server's imports (the CLI uses them too). What its
fields may hold is in ``services.common.validation``."""

from __future__ import annotations

# The interfaces a node has (one implementation of each per node), in Ironic's order.
INTERFACES: tuple[str, ...] = (
    "bios",
    "boot",
    "console",
    "deploy",
    "firmware",
    "inspect",
    "management",
    "network",
    "power",
    "raid",
    "rescue",
    "storage",
    "vendor",
)

# The driver_internal_info key of the token given to the agent of a node's ramdisk.
AGENT_TOKEN = "agent_secret_token"
