"""What a caller below Ironic's ``baremetal:node:get:filter_threshold`` may not read of a node.

Ironic's ``node_sanitize``: a caller who is not one of the system's readers (a lessee, an
owner's reader...) gets ``last_error``, ``reservation``, ``driver_internal_info`` and
``driver_info`` replaced by Ironic's redaction texts unless the field's own rule
(``baremetal:node:get:<field>``, the system's readers and the owner's) allows it. Secrets
inside the fields are masked for everyone before this (services/common/secrets.py), and so is
``instance_info``'s ``image_url`` (a temporary URL may carry its signature: Ironic's
``show_instance_secrets`` is ``!``, no caller reads it).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from services.api import policy
from services.common.models import Node
from services.common.secrets import MASK

_REDACTED: dict[str, Any] = {
    "last_error": "** Value Redacted - Requires baremetal:node:get:last_error permission. **",
    "reservation": "** Redacted - requires baremetal:node:get:reservation permission. **",
    "driver_internal_info": {"content": "** Redacted - Requires baremetal:node:get:"
                                        "driver_internal_info permission. **"},
    "driver_info": {"content": "** Redacted - requires baremetal:node:get:driver_info "
                               "permission. **"},
}


def redact(request: Request, node: Node, document: dict[str, Any]) -> None:
    """Replace, in ``document``, the fields of ``node`` the caller may not read."""
    info = document.get("instance_info")
    if isinstance(info, dict) and info.get("image_url"):
        document["instance_info"] = {**info, "image_url": MASK}
    credentials = policy.caller(request)
    target = policy.Target(policy.NODE, node.owner, node.lessee)
    rules = policy.rules_of(request)
    if policy.allowed("baremetal:node:get:filter_threshold", credentials, target, rules):
        return
    for field, text in _REDACTED.items():
        if field in document and not policy.allowed(f"baremetal:node:get:{field}",
                                                    credentials, target, rules):
            document[field] = text
