"""What the anonymous caller of discovery (``POST /v1/continue_inspection`` from an unknown
machine) is told: the conductor's refusals and the API's generic errors."""

from __future__ import annotations

# Nothing names a node, a state or a host.
REFUSED = ("This machine is already known as a node that discovery does not change: nothing "
           "was changed. An operator re-inspects a known node with `enclume node inspect`.")
BUSY = "Discovery cannot handle this machine at the moment: nothing was changed; retry later."
TOO_MANY = ("Discovery has enrolled as many new nodes as it may until an operator takes them "
            "on (ENCLUME_DISCOVERY_MAX_ENROLL_NODES): nothing was changed; retry later.")
PUBLIC_MESSAGES = frozenset({REFUSED, BUSY, TOO_MANY})
