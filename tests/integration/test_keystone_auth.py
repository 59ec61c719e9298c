"""The keystone strategy against a real Keystone (PyPI keystone on SQLite, started here).

Each caller holds a real token of its role and scope; the answers expected for nodes and ports
are Ironic's (ironic/common/policy.py defaults, 404 for what a project may not see, 403 for what
it sees but may not do), written out here rather than computed from Enclume's policy table.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from tests.support.api_stack import served_api
from tests.support.keystone_server import Keystone, KeystoneServer, seeded_template
from tests.support.polling import eventually

pytestmark = pytest.mark.integration

SERVICE_PASSWORD = "ironic-service-password"
PASSWORD = "user-password"
# user -> (role, project or None for the system)
CALLERS = {
    "sys_admin": ("admin", None), "sys_reader": ("reader", None),
    "owner_admin": ("admin", "owner"), "owner_member": ("member", "owner"),
    "owner_reader": ("reader", "owner"), "lessee_admin": ("admin", "lessee"),
    "lessee_member": ("member", "lessee"), "stranger": ("member", "other"),
}


@dataclass
class World:
    api: httpx.Client
    keystone: Keystone
    tokens: dict[str, str]
    user_ids: dict[str, str]
    leased: str  # node uuid: owned by "owner", leased to "lessee"
    spare: str  # node uuid: no owner
    leased_port: str
    spare_port: str
    settings: Settings
    db: Database
    projects: dict[str, str]

    def as_(self, caller: str) -> dict[str, str]:
        return {"X-Auth-Token": self.tokens[caller]}


def _settings(data: Path, auth_url: str, hostname: str = "c1", **keystone: object) -> Settings:
    return Settings(process={"data_dir": data}, conductor={"hostname": hostname},
                    auth={"strategy": "keystone"},
                    keystone={"auth_url": auth_url, "username": "ironic",
                              "password": SERVICE_PASSWORD, "project_name": "service",
                              "timeout_s": 30, **keystone})


def _seed(url: str) -> dict[str, Any]:
    """The projects and users of the tests (cached in a template: each call is slow)."""
    keystone = Keystone(url)
    try:
        projects = {name: keystone.project(name) for name in ("service", "owner", "lessee",
                                                               "other")}
        ironic = keystone.user("ironic", SERVICE_PASSWORD)
        keystone.role("service")  # what keystone's policy lets validate others' tokens
        keystone.grant(ironic, "service", projects["service"])
        keystone.grant(ironic, "admin", projects["service"])
        users = {}
        for user, (role, project) in CALLERS.items():
            users[user] = keystone.user(user, PASSWORD)
            keystone.grant(users[user], role, projects[project] if project else None)
        return {"projects": projects, "users": users}
    finally:
        keystone.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    template, seeded = seeded_template(f"roles-v1 {sorted(CALLERS.items())}", _seed)
    projects, user_ids = seeded["projects"], seeded["users"]
    server = KeystoneServer(tmp_path_factory.mktemp("keystone"))
    server.prepare(template)
    server.start()
    try:
        keystone = Keystone(server.url)
        tokens = {user: keystone.token(user, PASSWORD, project=project, system=project is None)
                  for user, (_, project) in CALLERS.items()}
        data = tmp_path_factory.mktemp("api")
        url = f"sqlite:///{data / 'db.sqlite'}"
        upgrade_schema(url)
        settings = _settings(data, server.url)
        db = Database(url)
        with served_api(settings, db) as served:
            admin = {"X-Auth-Token": tokens["sys_admin"]}
            probe = served.client.get("/v1/nodes", headers=admin)
            assert probe.status_code == 200, probe.text
            leased = served.client.post("/v1/nodes", headers=admin, json={
                "driver": "fake-hardware", "owner": projects["owner"],
                "lessee": projects["lessee"]}).json()["uuid"]
            spare = served.client.post("/v1/nodes", headers=admin,
                                       json={"driver": "fake-hardware"}).json()["uuid"]
            ports = [served.client.post("/v1/ports", headers=admin, json={
                "node_uuid": node, "address": f"52:54:00:00:00:0{i}"}).json()["uuid"]
                for i, node in enumerate((leased, spare))]
            yield World(served.client, keystone, tokens, user_ids, leased, spare, *ports,
                        settings=settings, db=db, projects=projects)
        keystone.close()
    finally:
        server.stop()


def _listed(world: World, path: str, caller: str, key: str) -> set[str]:
    answer = world.api.get(path, headers=world.as_(caller))
    assert answer.status_code == 200, answer.text
    return {item["uuid"] for item in answer.json()[key]}


def test_lists_show_the_system_everything_and_a_project_its_owned_or_leased_nodes(
        world: World) -> None:
    both, leased = {world.leased, world.spare}, {world.leased}
    expected = {"sys_admin": both, "sys_reader": both, "owner_admin": leased,
                "owner_member": leased, "owner_reader": leased, "lessee_admin": leased,
                "lessee_member": leased, "stranger": set()}
    assert {c: _listed(world, "/v1/nodes", c, "nodes") for c in CALLERS} == expected
    ports = {"sys_reader": {world.leased_port, world.spare_port},
             "owner_reader": {world.leased_port}, "lessee_member": {world.leased_port},
             "stranger": set()}
    assert {c: _listed(world, "/v1/ports", c, "ports") for c in ports} == ports
    # A project asking for another project's nodes is refused, as in Ironic; the system
    # narrows its list to a project's (owned or leased) nodes with the same filter.
    assert world.api.get("/v1/nodes?project=someone-else",
                         headers=world.as_("owner_reader")).status_code == 403
    lessee = world.projects["lessee"]
    assert _listed(world, f"/v1/nodes?project={lessee}", "sys_reader", "nodes") == leased
    assert _listed(world, f"/v1/nodes?project={lessee}", "lessee_member", "nodes") == leased
    assert _listed(world, "/v1/nodes?owner=someone-else", "owner_reader", "nodes") == set()


def test_gets_conceal_from_a_project_what_it_neither_owns_nor_leases(world: World) -> None:
    expected = {"sys_admin": (200, 200), "sys_reader": (200, 200), "owner_reader": (200, 404),
                "owner_member": (200, 404), "lessee_member": (200, 404),
                "lessee_admin": (200, 404), "stranger": (404, 404)}
    seen = {caller: tuple(world.api.get(f"/v1/nodes/{node}", headers=world.as_(caller))
                          .status_code for node in (world.leased, world.spare))
            for caller in expected}
    assert seen == expected
    ports = {caller: tuple(world.api.get(f"/v1/ports/{port}", headers=world.as_(caller))
                           .status_code for port in (world.leased_port, world.spare_port))
             for caller in expected}
    assert ports == expected


# Ironic's rule of each patched field: update_extra (system or project member),
# driver_info (system member or owner member), instance_info (... or lessee admin),
# owner (system member only).
PATCHES = {
    "/extra/note": {"sys_admin": 200, "sys_reader": 403, "owner_member": 200,
                    "owner_reader": 403, "lessee_member": 200, "lessee_admin": 200,
                    "stranger": 404},
    "/driver_info/note": {"sys_admin": 200, "owner_admin": 200, "owner_member": 200,
                          "owner_reader": 403, "lessee_member": 403, "lessee_admin": 403,
                          "stranger": 404},
    "/instance_info/note": {"owner_member": 200, "lessee_member": 403, "lessee_admin": 200,
                            "sys_reader": 403},
}


@pytest.mark.parametrize("path", sorted(PATCHES))
def test_node_patches_answer_as_ironic_for_each_role(world: World, path: str) -> None:
    seen = {caller: world.api.patch(f"/v1/nodes/{world.leased}", headers=world.as_(caller),
                                    json=[{"op": "add", "path": path, "value": caller}]
                                    ).status_code for caller in PATCHES[path]}
    assert seen == PATCHES[path]


def test_only_the_system_changes_owners_and_only_admins_delete_nodes(world: World) -> None:
    owner_patch = [{"op": "replace", "path": "/owner", "value": "mine-now"}]
    for caller in ("owner_admin", "owner_member", "lessee_admin"):
        assert world.api.patch(f"/v1/nodes/{world.leased}", headers=world.as_(caller),
                               json=owner_patch).status_code == 403
    for caller in ("owner_member", "lessee_admin", "sys_reader"):
        assert world.api.delete(f"/v1/nodes/{world.leased}",
                                headers=world.as_(caller)).status_code == 403
    assert world.api.get(f"/v1/nodes/{world.leased}", headers=world.as_("sys_reader")
                         ).json()["owner"] != "mine-now"


def test_a_project_admin_creates_and_deletes_its_own_nodes_only(world: World) -> None:
    admin, member = world.as_("owner_admin"), world.as_("owner_member")
    assert world.api.post("/v1/nodes", headers=member,
                          json={"driver": "fake-hardware"}).status_code == 403
    assert world.api.post("/v1/nodes", headers=admin, json={
        "driver": "fake-hardware", "owner": world.projects["other"]}).status_code == 400
    created = world.api.post("/v1/nodes", headers=admin, json={"driver": "fake-hardware"})
    assert created.status_code == 201 and created.json()["owner"] == world.projects["owner"]
    node = f"/v1/nodes/{created.json()['uuid']}"
    assert world.api.delete(node, headers=member).status_code == 403
    assert world.api.delete(node, headers=admin).status_code == 204


def test_port_updates_are_for_system_members_and_owner_admins(world: World) -> None:
    expected = {"sys_admin": 200, "sys_reader": 403, "owner_admin": 200, "owner_member": 403,
                "lessee_admin": 403, "stranger": 404}
    seen = {caller: world.api.patch(f"/v1/ports/{world.leased_port}", headers=world.as_(caller),
                                    json=[{"op": "add", "path": "/extra/by", "value": caller}]
                                    ).status_code for caller in expected}
    assert seen == expected


def test_missing_revoked_and_expired_tokens_are_refused(world: World) -> None:
    node = f"/v1/nodes/{world.leased}"
    missing = world.api.get(node)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Keystone uri=")
    fresh = world.keystone.token("owner_reader", PASSWORD, project="owner")
    world.keystone.revoke(fresh)
    assert world.api.get(node, headers={"X-Auth-Token": fresh}).status_code == 401
    # A token that expires between two requests: the first is served (the token is checked
    # when a request arrives), the next is refused although auth_token cached the token.
    short, expires = world.keystone.expiring_token(
        world.user_ids["owner_member"], world.tokens["owner_member"], seconds=10)
    assert world.api.get(node, headers={"X-Auth-Token": short}).status_code == 200
    while time.time() <= expires + 1:
        time.sleep(0.2)
    assert world.api.get(node, headers={"X-Auth-Token": short}).status_code == 401
    assert world.api.get(node, headers=world.as_("owner_member")).status_code == 200


def test_keystone_out_of_reach_is_a_503_that_names_no_secret(
        world: World, tmp_path: Path) -> None:
    with socket_closed() as port:
        # A conductor of its own: stopping it must not take the world's "c1" offline.
        settings = _settings(tmp_path, f"http://127.0.0.1:{port}/v3", hostname="c-503")
        with served_api(settings, world.db) as served:
            answer = served.client.get("/v1/nodes", headers=world.as_("sys_reader"))
    assert answer.status_code == 503 and answer.headers["retry-after"] == "30"
    assert "Keystone cannot be reached" in answer.text
    assert SERVICE_PASSWORD not in answer.text and world.tokens["sys_reader"] not in answer.text


POLICY_FILE = """\
"owner_reader": "role:reader and project_id:%(node.owner)s"
"baremetal:node:update_extra": "rule:owner_reader"
"baremetal:node:get": "role:reader and system_scope:all or rule:is_node_owner"
"""


def test_a_policy_file_changes_what_a_projects_callers_may_do(
        world: World, tmp_path: Path) -> None:
    """ENCLUME_API_POLICY_FILE: the owner's readers patch ``extra``, the lessee no longer sees
    the node (Ironic's defaults: the opposite of both)."""
    node, extra = f"/v1/nodes/{world.leased}", [{"op": "add", "path": "/extra/site",
                                                 "value": "rack 4"}]
    assert world.api.patch(node, headers=world.as_("owner_reader"), json=extra
                           ).status_code == 403
    assert world.api.get(node, headers=world.as_("lessee_member")).status_code == 200
    (tmp_path / "policy.yaml").write_text(POLICY_FILE)
    settings = _settings(tmp_path, world.keystone.url, hostname="c-policy").model_copy(
        update={"api": Settings(api={"policy_file": tmp_path / "policy.yaml"}).api})
    with served_api(settings, world.db) as served:
        patched = served.client.patch(node, headers=world.as_("owner_reader"), json=extra)
        assert patched.status_code == 200, patched.text
        assert served.client.get(node, headers=world.as_("lessee_member")).status_code == 404
        assert served.client.get(node, headers=world.as_("sys_reader")).status_code == 200
        # Nobody else patches extra now: the system's admin neither (Ironic's answer too).
        assert served.client.patch(node, headers=world.as_("sys_admin"), json=[
            {"op": "remove", "path": "/extra/site"}]).status_code == 403
    removed = world.api.patch(node, headers=world.as_("sys_admin"), json=[
        {"op": "remove", "path": "/extra/site"}])
    assert removed.status_code == 200, removed.text


@contextmanager
def socket_closed() -> Iterator[int]:
    """A loopback port nothing listens on (bound, never listening) while the block runs."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield int(bound.getsockname()[1])


# -- the other resources: node sub-resources, port groups, volumes, allocations, the system's --

LATEST = {"X-OpenStack-Ironic-API-Version": "latest"}


def _codes(world: World, method: str, path: str, callers: dict[str, int],
           body: Any = None) -> dict[str, int]:
    return {caller: world.api.request(method, path, json=body,
                                      headers={**world.as_(caller), **LATEST}).status_code
            for caller in callers}


# Ironic's rule of each node sub-resource: get_states and traits:list (system or project
# reader), history:get (system or owner reader), get_boot_device (system member or owner
# admin), set_maintenance (system member, owner member or lessee admin).
SUB_RESOURCES = {
    ("GET", "states"): {"sys_reader": 200, "owner_reader": 200, "lessee_member": 200,
                        "stranger": 404},
    ("GET", "traits"): {"owner_reader": 200, "lessee_member": 200, "stranger": 404},
    ("GET", "history"): {"sys_reader": 200, "owner_reader": 200, "lessee_admin": 403,
                         "stranger": 404},
    ("GET", "management/boot_device"): {"sys_reader": 403, "owner_admin": 200,
                                        "owner_member": 403, "lessee_admin": 403,
                                        "stranger": 404},
    ("PUT", "maintenance"): {"sys_reader": 403, "owner_member": 202, "lessee_member": 403,
                             "lessee_admin": 202, "stranger": 404},
}


@pytest.mark.parametrize(("method", "sub"), sorted(SUB_RESOURCES))
def test_node_sub_resources_answer_as_ironic_for_each_role(world: World, method: str,
                                                           sub: str) -> None:
    body = {"reason": "rbac"} if sub == "maintenance" else None
    expected = SUB_RESOURCES[(method, sub)]
    assert _codes(world, method, f"/v1/nodes/{world.leased}/{sub}", expected, body) == expected


def test_a_lessee_reads_a_node_without_its_errors_and_bmc_details(world: World) -> None:
    """Ironic's node_sanitize: below the system's readers, last_error, reservation,
    driver_internal_info and driver_info need the owner's reader; instance_info's image_url
    is masked for everyone."""
    from services.common.models import Node

    with world.db.session() as session:
        node = session.query(Node).filter_by(uuid=world.leased).one()
        node.last_error = "conductor c1 could not reach 10.0.0.7"
        node.driver_info = {**node.driver_info, "ipmi_address": "10.0.0.7"}
        node.instance_info = {**node.instance_info, "image_url": "http://s/i?temp_url_sig=1"}
    seen = {caller: world.api.get(f"/v1/nodes/{world.leased}", headers=world.as_(caller)
                                  ).json() for caller in ("sys_reader", "owner_reader",
                                                          "lessee_admin")}
    for caller in ("sys_reader", "owner_reader"):
        assert seen[caller]["last_error"] == "conductor c1 could not reach 10.0.0.7"
        assert seen[caller]["driver_info"]["ipmi_address"] == "10.0.0.7"
    for caller in seen:  # Ironic's show_instance_secrets ("!"): nobody reads image_url
        assert seen[caller]["instance_info"]["image_url"] == "******"
    assert seen["lessee_admin"]["last_error"] == (
        "** Value Redacted - Requires baremetal:node:get:last_error permission. **")
    assert seen["lessee_admin"]["driver_info"] == {
        "content": "** Redacted - requires baremetal:node:get:driver_info permission. **"}
    listed = world.api.get("/v1/nodes/detail", headers=world.as_("lessee_admin")).json()
    assert [n["last_error"] for n in listed["nodes"]] == [seen["lessee_admin"]["last_error"]]


def test_a_provisioned_nodes_owner_changes_only_by_the_systems_admins(world: World) -> None:
    """update_owner_provisioned: Ironic's service role (a system member, project-scoped) may
    change owners, but not of a node in ``active``: a 409."""
    from services.common.models import Node

    admin = world.as_("sys_admin")
    created = world.api.post("/v1/nodes", headers=admin, json={
        "driver": "fake-hardware", "owner": world.projects["owner"]})
    assert created.status_code == 201, created.text
    node = created.json()["uuid"]
    with world.db.session() as session:
        session.query(Node).filter_by(uuid=node).one().provision_state = "active"
    service = {"X-Auth-Token": world.keystone.token("ironic", SERVICE_PASSWORD,
                                                    project="service")}
    patch = [{"op": "replace", "path": "/owner", "value": world.projects["other"]}]
    refused = world.api.patch(f"/v1/nodes/{node}", headers=service, json=patch)
    assert refused.status_code == 409, refused.text
    assert "while it is in state" in refused.text
    assert world.api.patch(f"/v1/nodes/{node}", headers=admin, json=patch).status_code == 200


def test_port_groups_and_volumes_follow_their_nodes_owner_and_lessee(world: World) -> None:
    admin = {**world.as_("sys_admin"), **LATEST}
    group = world.api.post("/v1/portgroups", headers=admin, json={
        "node_uuid": world.leased, "name": "bond-rbac"}).json()["uuid"]
    expected = {"sys_reader": 200, "lessee_member": 200, "owner_reader": 200, "stranger": 404}
    assert _codes(world, "GET", f"/v1/portgroups/{group}", expected) == expected
    patch = [{"op": "add", "path": "/extra/by", "value": "x"}]
    expected = {"owner_member": 403, "owner_admin": 200, "lessee_admin": 403, "stranger": 404}
    assert _codes(world, "PATCH", f"/v1/portgroups/{group}", expected, patch) == expected
    groups = world.api.get("/v1/portgroups", headers={**world.as_("stranger"), **LATEST})
    assert groups.status_code == 200 and groups.json()["portgroups"] == []
    connector = {"node_uuid": world.leased, "type": "iqn", "connector_id": "iqn.2026-12.rbac"}
    expected = {"lessee_member": 403, "stranger": 403, "lessee_admin": 201}
    assert _codes(world, "POST", "/v1/volume/connectors", expected, connector) == expected
    uuid = world.api.get("/v1/volume/connectors", headers=admin).json()["connectors"][0]["uuid"]
    expected = {"owner_reader": 200, "lessee_member": 200, "stranger": 404}
    assert _codes(world, "GET", f"/v1/volume/connectors/{uuid}", expected) == expected
    stranger = world.api.get("/v1/volume/connectors", headers={**world.as_("stranger"),
                                                                **LATEST})
    assert stranger.status_code == 200 and stranger.json()["connectors"] == []


def test_allocations_belong_to_their_owner_project(world: World) -> None:
    member = {**world.as_("owner_member"), **LATEST}
    created = world.api.post("/v1/allocations", headers=member,
                             json={"resource_class": "rbac-none"})
    assert created.status_code == 201, created.text
    assert created.json()["owner"] == world.projects["owner"]  # the caller's project
    allocation = created.json()["uuid"]
    expected = {"sys_reader": 200, "owner_reader": 200, "lessee_admin": 404, "stranger": 404}
    assert _codes(world, "GET", f"/v1/allocations/{allocation}", expected) == expected
    expected = {"owner_reader": 403, "stranger": 404, "owner_member": 204}
    assert _codes(world, "DELETE", f"/v1/allocations/{allocation}", expected) == expected
    other = world.api.post("/v1/allocations", headers=member, json={
        "resource_class": "rbac-none", "owner": world.projects["other"]})
    assert other.status_code == 403
    assert world.api.get(f"/v1/allocations?owner={world.projects['other']}",
                         headers=member).status_code == 403
    # Candidates and backfills are among the nodes the project owns or leases (else a 400).
    lessee = {**world.as_("lessee_member"), **LATEST}
    for body in ({"resource_class": "rbac-none", "candidate_nodes": [world.spare]},
                 {"node": world.spare}):
        refused = world.api.post("/v1/allocations", headers=lessee, json=body)
        assert refused.status_code == 400 and world.spare in refused.text, refused.text
    mine = world.api.post("/v1/allocations", headers=lessee, json={
        "resource_class": "rbac-none", "candidate_nodes": [world.leased]})
    assert mine.status_code == 201, mine.text


def test_the_systems_resources_are_the_systems(world: World) -> None:
    """Chassis and drivers are system-scoped rules (a project's admin is refused), conductors
    and deploy templates the system's readers'."""
    for path in ("/v1/chassis", "/v1/drivers", "/v1/conductors", "/v1/deploy_templates"):
        expected = {"sys_reader": 200, "owner_admin": 403, "lessee_member": 403}
        assert _codes(world, "GET", path, expected) == expected, path
    expected = {"sys_reader": 403, "owner_admin": 403, "sys_admin": 201}
    assert _codes(world, "POST", "/v1/chassis", expected, {"description": "rack"}) == expected


def test_a_project_sees_the_children_it_owns_or_leases(world: World) -> None:
    """A child has its parent's owner (Ironic's rule); the lessee sees the one it leases."""
    admin = {**world.as_("sys_admin"), **LATEST}
    children = {}
    for label, lessee in (("leased", world.projects["lessee"]), ("kept", None)):
        created = world.api.post("/v1/nodes", headers=admin, json={
            "driver": "fake-hardware", "owner": world.projects["owner"], "lessee": lessee,
            "parent_node": world.leased})
        assert created.status_code == 201, created.text
        children[label] = created.json()["uuid"]
    path = f"/v1/nodes/{world.leased}/children"
    seen = {caller: world.api.get(path, headers={**world.as_(caller), **LATEST})
            for caller in ("sys_reader", "owner_reader", "lessee_member", "stranger")}
    both = [children["leased"], children["kept"]]
    assert seen["sys_reader"].json()["children"] == both
    assert seen["owner_reader"].json()["children"] == both
    assert seen["lessee_member"].json()["children"] == [children["leased"]]
    assert seen["stranger"].status_code == 404


def test_volume_target_properties_need_view_target_properties(world: World) -> None:
    """Ironic's rule: the system's readers and any admin read them, others a redaction."""
    admin = {**world.as_("sys_admin"), **LATEST}
    created = world.api.post("/v1/volume/targets", headers=admin, json={
        "node_uuid": world.leased, "volume_type": "iscsi", "boot_index": 0,
        "volume_id": "vol-rbac", "properties": {"target_iqn": "iqn.2026-12.rbac:1"}})
    assert created.status_code == 201, created.text
    path = f"/v1/volume/targets/{created.json()['uuid']}"
    seen = {caller: world.api.get(path, headers={**world.as_(caller), **LATEST}).json()[
        "properties"] for caller in ("sys_reader", "lessee_admin", "owner_member")}
    assert seen["sys_reader"] == seen["lessee_admin"] == {"target_iqn": "iqn.2026-12.rbac:1"}
    assert seen["owner_member"] == {"redacted_contents": (
        "** Value redacted: Requires permission baremetal:volume:view_target_properties "
        "access. Permission denied. **")}
    listed = world.api.get("/v1/volume/targets?detail=True",
                           headers={**world.as_("owner_reader"), **LATEST})
    assert [t["properties"] for t in listed.json()["targets"]] == [seen["owner_member"]]


# -- runbooks: Ironic's RunbooksController and baremetal:runbook:* (a project's manager owns,
# changes and uses its runbooks; another project's private one is a 403, not concealed) --

RUNBOOKS = {"X-OpenStack-Ironic-API-Version": "1.92"}  # runbooks named by a node trait
STEPS = [{"interface": "bios", "step": "factory_reset", "args": {}, "order": 0}]


def _runbook_codes(world: World, method: str, path: str, callers: dict[str, int],
                   body: Any = None) -> dict[str, int]:
    return {caller: world.api.request(method, path, json=body,
                                      headers={**world.as_(caller), **RUNBOOKS}).status_code
            for caller in callers}


@pytest.fixture(scope="module")
def runbooks(world: World) -> dict[str, str]:
    """The owner project's runbook (made by its admin), a public one and another project's."""
    made = {}
    for label, caller, body in (
            ("owned", "owner_admin", {"name": "CUSTOM_RBAC_OWNED"}),
            ("public", "sys_admin", {"name": "CUSTOM_RBAC_PUBLIC", "public": True}),
            ("others", "sys_admin", {"name": "CUSTOM_RBAC_OTHERS",
                                     "owner": world.projects["other"]})):
        answer = world.api.post("/v1/runbooks", json={**body, "steps": STEPS},
                                headers={**world.as_(caller), **RUNBOOKS})
        assert answer.status_code == 201, answer.text
        made[label] = answer.json()["uuid"]
        assert answer.json()["owner"] == {"owned": world.projects["owner"], "public": None,
                                          "others": world.projects["other"]}[label]
    return made


def test_a_projects_runbooks_are_its_own_and_the_public_ones(
        world: World, runbooks: dict[str, str]) -> None:
    expected = {"sys_reader": 200, "owner_reader": 200, "lessee_admin": 403, "stranger": 403}
    assert _runbook_codes(world, "GET", f"/v1/runbooks/{runbooks['owned']}",
                          expected) == expected
    expected = {"owner_admin": 403, "sys_reader": 200}
    assert _runbook_codes(world, "GET", f"/v1/runbooks/{runbooks['others']}",
                          expected) == expected
    expected = {"owner_reader": 200, "stranger": 200, "lessee_member": 200}
    assert _runbook_codes(world, "GET", f"/v1/runbooks/{runbooks['public']}",
                          expected) == expected
    assert _runbook_codes(world, "GET", "/v1/runbooks/CUSTOM_RBAC_MISSING",
                          {"owner_admin": 404}) == {"owner_admin": 404}
    mine = {runbooks["owned"], runbooks["public"]}
    shown = world.api.get("/v1/runbooks", headers={**world.as_("owner_reader"), **RUNBOOKS})
    assert {r["uuid"] for r in shown.json()["runbooks"]} & set(runbooks.values()) == mine
    shown = world.api.get("/v1/runbooks", headers={**world.as_("sys_reader"), **RUNBOOKS})
    assert {r["uuid"] for r in shown.json()["runbooks"]} >= set(runbooks.values())


def test_a_projects_manager_changes_its_runbooks_and_the_system_their_owner(
        world: World, runbooks: dict[str, str]) -> None:
    for caller, body in (("owner_member", {}), ("owner_admin", {"owner": "someone"}),
                         ("owner_admin", {"public": True})):
        refused = world.api.post("/v1/runbooks", json={"name": "CUSTOM_RBAC_NEW",
                                                       "steps": STEPS, **body},
                                 headers={**world.as_(caller), **RUNBOOKS})
        assert refused.status_code == (403 if caller == "owner_member" else 400), refused.text
    extra = [{"op": "add", "path": "/extra/why", "value": "rbac"}]
    owned = f"/v1/runbooks/{runbooks['owned']}"
    expected = {"owner_member": 403, "stranger": 403, "owner_admin": 200}
    assert _runbook_codes(world, "PATCH", owned, expected, extra) == expected
    public = [{"op": "replace", "path": "/public", "value": True}]
    assert _runbook_codes(world, "PATCH", owned, {"owner_admin": 403}, public) == {
        "owner_admin": 403}
    expected = {"owner_admin": 403}
    assert _runbook_codes(world, "DELETE", f"/v1/runbooks/{runbooks['others']}",
                          expected) == expected


def test_a_projects_manager_cleans_its_node_with_its_own_runbook(
        world: World, runbooks: dict[str, str]) -> None:
    admin = {**world.as_("sys_admin"), **RUNBOOKS}
    node = world.api.post("/v1/nodes", headers=admin, json={
        "driver": "fake-hardware", "bios_interface": "fake",
        "owner": world.projects["owner"]}).json()["uuid"]
    for trait in ("CUSTOM_RBAC_OWNED", "CUSTOM_RBAC_OTHERS"):
        assert world.api.put(f"/v1/nodes/{node}/traits/{trait}", headers=admin).status_code \
            == 204
    assert world.api.put(f"/v1/nodes/{node}/states/provision", headers=admin,
                         json={"target": "manage"}).status_code == 202
    state = f"/v1/nodes/{node}"

    def manageable() -> bool:
        return bool(world.api.get(state, headers=admin).json()["provision_state"]
                    == "manageable")
    eventually(manageable, 60, "manageable")
    provision = f"/v1/nodes/{node}/states/provision"
    # The owner's member may clean its node but not use a runbook (baremetal:runbook:use is
    # the runbook owner's managers'); nobody of the owner uses another project's.
    expected = {"owner_member": 403, "stranger": 404}
    assert _runbook_codes(world, "PUT", provision, expected,
                          {"target": "clean", "runbook": "CUSTOM_RBAC_OWNED"}) == expected
    expected = {"owner_admin": 403}
    assert _runbook_codes(world, "PUT", provision, expected,
                          {"target": "clean", "runbook": "CUSTOM_RBAC_OTHERS"}) == expected
    assert _runbook_codes(world, "PUT", provision, {"owner_admin": 202}, {
        "target": "clean", "runbook": "CUSTOM_RBAC_OWNED"}) == {"owner_admin": 202}
    history = f"/v1/nodes/{node}/history"
    eventually(lambda: [e for e in world.api.get(history, headers=admin).json()["history"]
                        if "factory_reset" in e["event"]], 60, "the runbook's step run")
    eventually(manageable, 60, "manageable again")


def test_runbooks_below_their_version_answer_the_endpoints_404_first(
        world: World, runbooks: dict[str, str]) -> None:
    old = {**world.as_("stranger"), "X-OpenStack-Ironic-API-Version": "1.91"}
    assert world.api.get(f"/v1/runbooks/{runbooks['owned']}", headers=old).status_code == 404
    traits = {**world.as_("stranger"), **RUNBOOKS}  # traits: 1.112
    assert world.api.get(f"/v1/runbooks/{runbooks['owned']}/traits",
                         headers=traits).status_code == 404
