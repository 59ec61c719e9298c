"""The operators (conditions) and actions of Ironic's inspection rules, with the arguments each
takes: what the API checks (services/api/inspection_rule_checks.py) and what inspection runs
(services/drivers/inspect/rules.py) agree on."""

from __future__ import annotations

# operator -> (required args, optional args), as their __call__ signatures in Ironic.
OPERATORS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "eq": (("values",), ("force_strings",)), "lt": (("values",), ("force_strings",)),
    "gt": (("values",), ("force_strings",)), "is-empty": (("value",), ()),
    "in-net": (("address", "subnet"), ()), "matches": (("value", "regex"), ()),
    "contains": (("value", "regex"), ()), "one-of": (("value",), ("values",)),
    "is-none": (("value",), ()), "is-true": (("value",), ()), "is-false": (("value",), ()),
}
ACTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "fail": (("msg",), ()), "log": (("msg",), ("level",)),
    "set-attribute": (("path", "value"), ()),
    "extend-attribute": (("path", "value"), ("unique",)),
    "del-attribute": (("path",), ()), "set-capability": (("name", "value"), ()),
    "unset-capability": (("name",), ()), "add-trait": (("name",), ()),
    "remove-trait": (("name",), ()),
    "set-plugin-data": (("path", "value", "plugin_data"), ()),
    "extend-plugin-data": (("path", "value", "plugin_data"), ("unique",)),
    "unset-plugin-data": (("path", "plugin_data"), ()),
    "set-port-attribute": (("port_id", "path", "value"), ()),
    "extend-port-attribute": (("port_id", "path", "value"), ("unique",)),
    "del-port-attribute": (("port_id", "path"), ()),
    "api-call": (("url",), ("headers", "proxies", "timeout", "retries", "backoff_factor")),
}
# The actions whose plugin_data argument Ironic supplies itself.
PLUGIN_DATA_ACTIONS = frozenset({"set-plugin-data", "extend-plugin-data", "unset-plugin-data"})
