"""What a node's text fields may hold (Ironic's rules), without the server's imports: the API's
``node_rules`` and the CLI's inventory checks (``enclume enroll``) share these."""

from __future__ import annotations

import re
import uuid

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

NAME_RE = re.compile(r"^[a-zA-Z0-9\-._~]+$")
MAX_NAME_LENGTH = 255
NODE_NAME_RULE = (f"names are 1-{MAX_NAME_LENGTH} characters from letters, digits and -._~, "
                  "and must not look like a UUID")
CONDUCTOR_GROUP_RE = re.compile(r"^[a-zA-Z0-9_\-.]*$")
# field -> longest value accepted
TEXT_FIELDS = {"description": 4096, "maintenance_reason": 4096, "protected_reason": 255,
               "retired_reason": 255, "owner": 255, "lessee": 255, "resource_class": 80}


def is_uuid_like(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def is_valid_node_name(value: object) -> bool:
    return (isinstance(value, str) and bool(NAME_RE.match(value))
            and len(value) <= MAX_NAME_LENGTH and not is_uuid_like(value))
