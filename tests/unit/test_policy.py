"""Enclume's copy of Ironic's default policy (services/api/policy.py), rule by rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.api.app import create_app
from services.api.auth import PUBLIC_PATHS, PUBLIC_PREFIXES
from services.api.policy import NODE, Credentials, Target, allowed, credentials_of
from services.api.policy_patches import node_patch_rules, runbook_patch_rules
from services.api.policy_routes import LISTS, ROUTES
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.identity import Identity
from services.common.membership import Membership
from services.conductor.manager import ConductorManager
from services.drivers.registry import Drivers

LEASED = Target(NODE, "p-owner", "p-lessee")


def project(role: str, project_id: str) -> Credentials:
    implied = {"admin": {"admin", "member", "reader"}, "member": {"member", "reader"},
               "reader": {"reader"}}[role]
    return Credentials(frozenset(implied), project_id=project_id, project_name=project_id)


SYSTEM_ADMIN = credentials_of(Identity("a", frozenset({"admin"})))
SYSTEM_MEMBER = Credentials(frozenset({"member", "reader"}), system=True)
SYSTEM_READER = Credentials(frozenset({"reader"}), system=True)


@pytest.mark.parametrize(("rule", "caller", "expected"), [
    ("baremetal:node:get", project("reader", "p-owner"), True),
    ("baremetal:node:get", project("reader", "p-lessee"), True),
    ("baremetal:node:get", project("admin", "p-other"), False),
    ("baremetal:node:update_extra", project("member", "p-lessee"), True),
    ("baremetal:node:update_extra", project("reader", "p-owner"), False),
    ("baremetal:node:update:driver_info", project("member", "p-owner"), True),
    ("baremetal:node:update:driver_info", project("admin", "p-lessee"), False),
    ("baremetal:node:update_instance_info", project("member", "p-lessee"), False),
    ("baremetal:node:update_instance_info", project("admin", "p-lessee"), True),
    ("baremetal:node:update:owner", project("admin", "p-owner"), False),
    ("baremetal:node:update:owner", SYSTEM_MEMBER, True),
    ("baremetal:node:delete", SYSTEM_MEMBER, False),
    ("baremetal:node:delete", SYSTEM_ADMIN, True),
    ("baremetal:node:list_all", SYSTEM_READER, True),
    ("baremetal:node:list_all", project("admin", "p-owner"), False),
    ("baremetal:node:list", project("reader", "p-other"), True),
    ("baremetal:node:update", SYSTEM_READER, False),
    ("baremetal:port:update", project("admin", "p-owner"), True),
    ("baremetal:port:update", project("member", "p-owner"), False),
    ("baremetal:port:create", project("admin", "p-lessee"), False),
    ("baremetal:node:set_provision_state", project("admin", "p-lessee"), True),
    ("baremetal:node:set_power_state", project("member", "p-lessee"), True),
    ("baremetal:node:delete:self_owned_node", project("admin", "p-owner"), True),
    ("baremetal:node:delete:self_owned_node", project("admin", "p-lessee"), False),
    ("baremetal:node:create:self_owned_node", project("member", "p-owner"), False),
])
def test_rules_answer_as_ironics_defaults(rule: str, caller: Credentials, expected: bool) -> None:
    assert allowed(rule, caller, LEASED) is expected


def test_a_node_without_owner_belongs_to_no_project() -> None:
    assert not allowed("baremetal:node:get", project("admin", "p-owner"), Target(NODE))
    assert allowed("baremetal:node:get", SYSTEM_READER, Target(NODE))


def test_classroom_roles_map_to_ironic_personas() -> None:
    assert credentials_of(None) == SYSTEM_ADMIN  # noauth
    assert SYSTEM_ADMIN.system and SYSTEM_ADMIN.roles == {"admin", "member", "reader"}
    assert credentials_of(Identity("o", frozenset({"operator"}))) == SYSTEM_ADMIN
    service = credentials_of(Identity("s", frozenset({"service"})))
    assert allowed("baremetal:node:update:owner", service)  # Ironic's rule:service_role
    assert not allowed("baremetal:node:delete", service)
    teacher = credentials_of(Identity("t", frozenset({"teacher"})))
    assert not allowed("baremetal:node:list", teacher) and not teacher.system


@pytest.mark.parametrize(("patch", "rules"), [
    ([{"op": "add", "path": "/extra/a", "value": 1}], ["baremetal:node:update_extra"]),
    ([{"op": "replace", "path": "/deploy_interface", "value": "direct"}],
     ["baremetal:node:update:driver_interfaces"]),
    ([{"op": "replace", "path": "/automated_clean", "value": False}],
     ["baremetal:node:disable_cleaning"]),
    ([{"op": "replace", "path": "/description", "value": "x"},
      {"op": "replace", "path": "/name", "value": "n"}],
     ["baremetal:node:update:name", "baremetal:node:update"]),
])
def test_a_node_patch_needs_the_rules_of_its_paths(patch: list[dict[str, object]],
                                                   rules: list[str]) -> None:
    assert node_patch_rules(patch) == rules


def test_a_runbook_patch_needs_the_rules_of_its_paths() -> None:
    assert runbook_patch_rules([{"op": "replace", "path": "/public", "value": True},
                                {"op": "replace", "path": "/owner", "value": "p1"}]) == [
        "baremetal:runbook:update:public", "baremetal:runbook:update:owner"]
    assert runbook_patch_rules([{"op": "replace", "path": "/public", "value": True},
                                {"op": "add", "path": "/extra/a", "value": 1}]) == [
        "baremetal:runbook:update:public", "baremetal:runbook:update"]
    assert runbook_patch_rules([]) == ["baremetal:runbook:update"]


def test_every_ironic_route_is_in_the_policy_gates_tables(tmp_path: Path) -> None:
    """A /v1 route of Ironic's API without an entry would fall to the system-only rules."""
    url = f"sqlite:///{tmp_path / 'routes.sqlite'}"
    upgrade_schema(url)
    db = Database(url)
    settings = Settings(process={"data_dir": tmp_path}, conductor={"hostname": "c1"})
    membership = Membership(db, settings)
    app = create_app(settings, db, ConductorManager(db, settings, Drivers(settings), membership),
                     membership)
    special = {("POST", "/v1/nodes"), ("POST", "/v1/allocations"),
               ("PATCH", "/v1/nodes/{ident}"), ("POST", "/v1/runbooks"),
               ("PATCH", "/v1/runbooks/{ident}")}
    routes = [inner for route in app.routes
              for inner in getattr(getattr(route, "original_router", None), "routes", [route])]
    assert len(routes) > 100
    missing = []
    for route in routes:
        path = getattr(route, "path", "")
        if (not path.startswith("/v1/") or path.startswith("/v1/enclume")
                or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)):
            continue
        for method in getattr(route, "methods", set()) - {"HEAD"}:
            if (method, path) not in ROUTES and (method, path) not in special and not (
                    method == "GET" and path in LISTS):
                missing.append(f"{method} {path}")
    assert missing == []
