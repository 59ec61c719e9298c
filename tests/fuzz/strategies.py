"""Hypothesis strategies for hostile Ironic input: node, port and allocation bodies, JSON
patches, the PUT sub-resources and the agent's calls.

Schemathesis draws from the OpenAPI document, which never holds a lone surrogate, NaN, a
non-ASCII digit or a string where an object belongs; these strategies mix well-formed values
with exactly those (the classes of issue #15), so each request is plausible enough to reach the
code past the first check.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from services.api import node_rules, ports
from services.common import states
from services.common.hardware_types import BOOT_DEVICES, POWER_TARGETS
from services.common.validation import FIELD_LIMITS

SURROGATES = ("\ud800", "\udfff", "a\udc80b")
# Strings a validator must refuse or keep as they are, and never crash on.
SPECIAL_STRINGS = (
    *SURROGATES, "", " ", "\n", "\x00", "nul\x00byte", "\x1b[31m", "e\u0301", "\ufeffbom",
    "\u0660", "\u0661\u0662", "\U0001d7d9", "\uff11", "NaN", "null", "true", "../../etc/passwd",
    "' OR 1=1 --", "%s%n", "{{7*7}}", "x" * 256, "x" * 4097, "\u00e9" * 300,
)
NON_ASCII_DIGITS = ("\u0660", "\u0661", "\u0969", "\U0001d7d8", "\uff11", "\u00b2")
ENDINGS = ("\n", "\r\n", "\t", " ", "\x00", "\ud800", "\u2028")
HUGE = "R" * 900_000  # under the 1 MiB body limit: what PATCH limits to 4,096 characters


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]
           ) -> st.SearchStrategy[Any]:
    """``good`` seven times in eight (``one_of`` would draw ``bad`` as often as ``good``)."""
    return st.integers(0, 7).flatmap(lambda i: bad if i == 7 else good)


def plain_text(max_size: int = 16) -> st.SearchStrategy[str]:
    return st.text(max_size=max_size)


def nasty_text() -> st.SearchStrategy[str]:
    names = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
    return st.one_of(
        plain_text(),
        st.sampled_from(SPECIAL_STRINGS),
        st.builds(lambda word, end: word + end, names, st.sampled_from(ENDINGS)),
        st.text(st.characters(codec=None, categories=["Cs", "Cc", "Zl", "Nd", "Mn"]),
                min_size=1, max_size=4),
    )


def json_scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63),
        st.floats(allow_nan=True, allow_infinity=True), nasty_text(),
    )


def json_values(max_leaves: int = 6) -> st.SearchStrategy[Any]:
    return st.recursive(
        json_scalars(),
        lambda children: st.one_of(st.lists(children, max_size=3),
                                   st.dictionaries(nasty_text(), children, max_size=3)),
        max_leaves=max_leaves,
    )


def json_objects() -> st.SearchStrategy[dict[str, Any]]:
    planted = st.sampled_from([{"k": "\ud800"}, {"\udfff": 1}, {"n": float("nan")},
                               {"i": float("inf")}, {"deep": [[{"x": "\x00"}]]}])
    return st.one_of(planted, st.dictionaries(nasty_text(), json_values(), max_size=3))


def wrong_type() -> st.SearchStrategy[Any]:
    """A value of another JSON type than the field's: dicts for strings and the like."""
    return st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.booleans(),
                     st.lists(st.integers(), max_size=2), json_objects())


def uuids() -> st.SearchStrategy[Any]:
    canonical = st.uuids().map(str)
    return st.one_of(canonical, canonical.map(str.upper), canonical.map(lambda u: u + "\n"),
                     canonical.map(lambda u: "{" + u + "}"), st.uuids().map(lambda u: u.hex),
                     st.just(None), nasty_text(), wrong_type())


def names() -> st.SearchStrategy[Any]:
    valid = st.from_regex(r"[a-zA-Z0-9._~-]{1,20}", fullmatch=True)
    return st.one_of(valid, st.builds(lambda n, end: n + end, valid, st.sampled_from(ENDINGS)),
                     st.uuids().map(str), st.just("n" * 256), nasty_text(), wrong_type())


def macs() -> st.SearchStrategy[Any]:
    octets = st.lists(st.integers(0, 255), min_size=6, max_size=6)
    valid = octets.map(lambda o: ":".join(f"{b:02x}" for b in o))
    return st.one_of(valid, valid.map(str.upper), valid.map(lambda m: m.replace(":", "-")),
                     st.builds(lambda m, end: m + end, valid, st.sampled_from(ENDINGS)),
                     nasty_text(), wrong_type())


def traits() -> st.SearchStrategy[Any]:
    valid = st.from_regex(r"CUSTOM_[A-Z0-9_]{1,12}", fullmatch=True)
    return st.one_of(valid, st.sampled_from(["HW_CPU_X86_VMX", "custom_lower", "CUSTOM_"]),
                     st.builds(lambda t, end: t + end, valid, st.sampled_from(ENDINGS)),
                     nasty_text(), wrong_type())


def text_field(field: str) -> st.SearchStrategy[Any]:
    """Text for ``field``: nasty, one character over its limit in the validation layer's
    FIELD_LIMITS, or not a string at all."""
    return st.one_of(nasty_text(), st.just("d" * (FIELD_LIMITS[field] + 1)), wrong_type())


def _some_of(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """One or two of ``fields`` with a drawn value: a mostly valid body with one or two bad
    fields reaches further than a body of many, refused at the first."""
    one = st.sampled_from(sorted(fields)).flatmap(
        lambda name: fields[name].map(lambda value: {name: value}))
    return st.builds(lambda a, b: {**a, **b}, one, st.one_of(st.just({}), one))


def node_bodies() -> st.SearchStrategy[dict[str, Any]]:
    """POST /v1/nodes: a fake-hardware node with one or two fields drawn."""
    fields: dict[str, st.SearchStrategy[Any]] = {
        "uuid": uuids(), "name": names(), "instance_uuid": uuids(),
        "chassis_uuid": st.one_of(st.none(), uuids()),
        "conductor_group": st.one_of(names(), text_field("conductor_group")),
        "automated_clean": st.one_of(st.none(), st.booleans(), wrong_type()),
        "protected": st.one_of(st.booleans(), wrong_type()),
        "retired": st.one_of(st.booleans(), wrong_type()),
        "resource_class": text_field("resource_class"),
        "description": st.one_of(text_field("description"), st.just(HUGE)),
        "owner": text_field("owner"), "lessee": text_field("lessee"),
        "protected_reason": text_field("protected_reason"),
        "retired_reason": text_field("retired_reason"),
        "deploy_interface": text_field("interface"),
        "power_interface": st.one_of(st.sampled_from(["fake", "redfish"]),
                                     text_field("interface")),
        "unknown_field": json_values(),
    }
    fields |= {field: st.one_of(json_objects(), wrong_type())
               for field in node_rules.DICT_FIELDS}
    fields["driver"] = st.one_of(st.just("redfish"), text_field("driver"))
    return st.builds(lambda rest: {"driver": "fake-hardware", **rest}, _some_of(fields))


def port_bodies(node_uuids: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """A valid port of a new MAC on an existing node, with one or two fields drawn."""
    node = st.one_of(st.sampled_from(node_uuids), uuids()) if node_uuids else uuids()
    link = st.one_of(st.dictionaries(st.sampled_from(sorted(ports.LOCAL_LINK_KEYS)),
                                     json_values(), max_size=3), wrong_type())
    base = {"address": "52:54:00:0f:0f:0f", "node_uuid": node_uuids[0] if node_uuids else ""}
    return st.builds(lambda rest: {**base, **rest}, _some_of({
        "address": macs(), "node_uuid": node, "uuid": uuids(),
        "extra": st.one_of(json_objects(), wrong_type()), "local_link_connection": link,
        "physical_network": text_field("physical_network"), "pxe_enabled": st.one_of(st.booleans(),
                                                                     wrong_type()),
        "is_smartnic": st.one_of(st.booleans(), wrong_type()),
        "portgroup_uuid": st.one_of(st.none(), uuids())}))


def allocation_bodies(node_idents: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    node = st.one_of(st.sampled_from(node_idents), names()) if node_idents else names()
    return _some_of({
        "resource_class": st.one_of(st.just("fuzz"), text_field("resource_class")),
        "traits": st.one_of(st.lists(traits(), max_size=3), wrong_type()),
        "candidate_nodes": st.one_of(st.lists(node, max_size=3), wrong_type()),
        "name": names(), "uuid": uuids(), "extra": st.one_of(json_objects(), wrong_type()),
        "owner": text_field("owner"), "node": node,
    })


def _index_tokens() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["0", "1", "2", "-", "01", "-1", "9" * 40, "1" * 5000]),
                     st.sampled_from(NON_ASCII_DIGITS), nasty_text())


def patch_paths(fields: frozenset[str]) -> st.SearchStrategy[Any]:
    """Half of them list indexes into the seeded ``extra.list`` (where int() of a non-ASCII
    digit or of 5,000 digits can fail), half fields and keys."""
    field = st.one_of(st.sampled_from(sorted(fields)), nasty_text())
    key = st.one_of(st.sampled_from(["rack", "list", "k", "ipmi_password", "a~1b", "~0"]),
                    nasty_text())
    indexes = st.one_of(
        st.sampled_from(["1" * 5000, "\u00b2", "9" * 40, "01", *NON_ASCII_DIGITS]).map(
            lambda i: f"/extra/list/{i}"),
        _index_tokens().map(lambda i: f"/extra/list/{i}"),
        st.builds(lambda i, k: f"/extra/list/{i}/{k}", _index_tokens(), key),
    )
    others = st.one_of(
        field.map(lambda f: "/" + f),
        st.builds(lambda f, k: f"/{f}/{k}", st.sampled_from(["extra", "driver_info",
                                                               "properties", "instance_info"]),
                  key),
        st.sampled_from(["/", "", "extra", "//", "/extra/"]),
        wrong_type(),
    )
    return st.integers(0, 3).flatmap(lambda i: indexes if i < 2 else others)


def patches(fields: frozenset[str]) -> st.SearchStrategy[Any]:
    operation = st.builds(
        lambda op, path, value, drop: {k: v for k, v in
                                       {"op": op, "path": path, "value": value}.items()
                                       if k not in drop},
        mostly(st.sampled_from(["add", "replace", "remove"]),
               st.sampled_from(["move", "copy", "test", "ADD"]) | wrong_type()),
        patch_paths(fields),
        st.one_of(json_values(), st.just(HUGE)),
        mostly(st.just(set()), st.sets(st.sampled_from(["value", "op", "path"]),
                                          min_size=1, max_size=1)),
    )
    # Mostly well-formed lists of operations, so that the paths and values get tested.
    return mostly(st.lists(operation, min_size=1, max_size=2),
                  st.one_of(wrong_type(), st.just([])))


NODE_PATCH_FIELDS = node_rules.WRITABLE | {"uuid", "provision_state", "traits"}
PORT_PATCH_FIELDS = ports.WRITABLE | {"uuid"}
ALLOCATION_PATCH_FIELDS = frozenset({"name", "extra", "node_uuid"})


def provision_bodies() -> st.SearchStrategy[Any]:
    target = st.one_of(st.sampled_from(sorted(states.API_TARGET_EVENTS)), text_field("target"))
    return st.one_of(st.builds(lambda t, rest: {"target": t, **rest}, target, _some_of({
        "configdrive": st.one_of(st.none(), nasty_text(), json_objects()),
        "clean_steps": st.one_of(st.lists(json_objects(), max_size=2), wrong_type()),
        "deploy_steps": st.one_of(st.lists(json_objects(), max_size=2), wrong_type()),
        "rescue_password": text_field("rescue_password"),
        "disable_ramdisk": st.one_of(st.booleans(), wrong_type()),
    })), wrong_type())


def power_bodies() -> st.SearchStrategy[Any]:
    target = st.one_of(st.sampled_from(POWER_TARGETS), text_field("target"))
    timeout = st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                        st.just(10**30), wrong_type())
    return st.one_of(st.builds(lambda t, rest: {"target": t, **rest}, target,
                               _some_of({"timeout": timeout})), wrong_type())


def boot_device_bodies() -> st.SearchStrategy[Any]:
    device = st.one_of(st.sampled_from(BOOT_DEVICES), text_field("boot_device"))
    return st.one_of(st.builds(lambda d, rest: {"boot_device": d, **rest}, device,
                               _some_of({"persistent": st.one_of(st.booleans(),
                                                                 wrong_type())})),
                     wrong_type())


def maintenance_bodies() -> st.SearchStrategy[Any]:
    return st.one_of(_some_of({"reason": st.one_of(text_field("maintenance_reason"),
                                                 st.just(HUGE))}),
                     wrong_type())


def traits_bodies() -> st.SearchStrategy[Any]:
    return st.one_of(st.fixed_dictionaries({"traits": st.one_of(
        st.lists(traits(), max_size=4), st.lists(st.just("CUSTOM_MANY"), min_size=51,
                                                  max_size=51).map(
            lambda same: [f"{t}_{i}" for i, t in enumerate(same)]),
        wrong_type())}), wrong_type())


def heartbeat_bodies() -> st.SearchStrategy[Any]:
    url = st.one_of(st.just("http://127.0.0.1:9999"), st.sampled_from(
        ["https://192.0.2.1:9999", "ftp://x", "http://u:p@h:1", "http://h:1/?q#f"]),
        nasty_text(), wrong_type())
    return st.one_of(_some_of({"callback_url": url, "agent_token": text_field("agent_token"),
                               "agent_version": st.one_of(st.just("v" * 5000),
                                                          text_field("agent_version"))}),
                     wrong_type())
