"""ENCLUME_API_POLICY_FILE (services/api/policy_file.py): the file's rules over Ironic's
defaults, its mistakes refused at start, and an override changing what a user may do over
HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event

from services.api import policy
from services.api.policy import Credentials, Target
from services.api.policy_file import PolicyFileError, load_rules
from tests.support.api_stack import ServedApi, at, served_sqlite_api
from tests.support.classroom_users import write_users_file

PROJECT_READER = Credentials(frozenset({"reader"}), project_id="p1", project_name="p1")
OWNED = Target(policy.NODE, "p1")


def _loaded(tmp_path: Path, text: str, name: str = "policy.yaml") -> dict[str, policy.Check]:
    path = tmp_path / name
    path.write_text(text)
    return load_rules(path)


def test_a_rule_of_the_file_replaces_the_default_and_aliases_add(tmp_path: Path) -> None:
    rules = _loaded(tmp_path, '# the site\n"readers_power": "role:reader and '
                    'project_id:%(node.owner)s"\n'
                    '"baremetal:node:set_power_state": "rule:readers_power"\n')
    assert not policy.allowed("baremetal:node:set_power_state", PROJECT_READER, OWNED)
    assert policy.allowed("baremetal:node:set_power_state", PROJECT_READER, OWNED, rules)
    assert not policy.allowed("baremetal:node:set_power_state", PROJECT_READER,
                              Target(policy.NODE, "p2"), rules)
    # The rules the file leaves alone are Ironic's defaults.
    assert policy.allowed("baremetal:node:get", PROJECT_READER, OWNED, rules)
    assert not policy.allowed("baremetal:node:update", PROJECT_READER, OWNED, rules)


def test_json_and_an_empty_file_are_read(tmp_path: Path) -> None:
    rules = _loaded(tmp_path, '{"baremetal:node:get": "!"}', "policy.json")
    assert not policy.allowed("baremetal:node:get", policy.credentials_of(None), OWNED, rules)
    assert set(_loaded(tmp_path, "# nothing yet\n")) >= set(policy.RULES)


def test_a_rules_scope_stays_ironics(tmp_path: Path) -> None:
    rules = _loaded(tmp_path, '"baremetal:chassis:get": "role:reader"\n')
    assert not policy.allowed("baremetal:chassis:get", PROJECT_READER, Target(), rules)
    system_reader = Credentials(frozenset({"reader"}), system=True)
    assert policy.allowed("baremetal:chassis:get", system_reader, Target(), rules)


@pytest.mark.parametrize(("text", "unrestricted"), [
    ('"x": "@"\n', True),  # an alias: no request asks it
    ('"baremetal:node:get": "role:admin or project_id:%(node.owner)s"\n', True),
    ('"baremetal:node:get": "project_id:%(node.owner)s"\n', False),  # the node decides
    ('"baremetal:node:get": "role:admin and not project_id:%(node.owner)s"\n', False),
    ('"baremetal:node:get": "not project_id:%(node.owner)s or role:admin"\n', True),
    ('"baremetal:node:get": "role:admin and not \'x\':%(nothing)s"\n', True),  # no such field
    # a default's answer with no object (false here) may be another with one
    ('"baremetal:node:get": "role:admin and not rule:baremetal:runbook:use"\n', False),
    ('"baremetal:node:get": "role:admin or rule:baremetal:node:delete"\n', True),
    ('"baremetal:step:execute:deploy.erase_devices": "role:nobody"\n', False),
    ('"baremetal:node:delete": "!"\n', False),
])
def test_who_may_do_all_under_a_file_skips_the_lookups(tmp_path: Path, text: str,
                                                      unrestricted: bool) -> None:
    """The gate looks nothing up for a caller every rule allows whatever the object; under a
    file, rules that may read the object leave it unknown unless their answer is the same
    for any."""
    admin = policy.credentials_of(None)
    assert policy.RULES.unrestricted(admin)
    assert _loaded(tmp_path, text).unrestricted(admin) is unrestricted
    assert not policy.RULES.unrestricted(PROJECT_READER)


def test_the_step_rules_are_indexed_with_the_table(tmp_path: Path) -> None:
    rules = _loaded(tmp_path, '"baremetal:step:execute:deploy.erase_devices": "role:admin"\n'
                    '"baremetal:step:execute:bios.apply_configuration": "role:admin"\n')
    assert rules.step_rules == {"baremetal:step:execute:deploy.erase_devices",
                                "baremetal:step:execute:bios.apply_configuration"}
    assert policy.RULES.step_rules == frozenset()


def test_a_project_check_on_the_systems_resources_matches_nobody(tmp_path: Path) -> None:
    """No object (a chassis, a driver) has no node.owner: a caller without a project does
    not match it as an unowned node's "None" (Ironic's check_policy target)."""
    rules = _loaded(tmp_path, '"baremetal:chassis:update": "rule:is_node_owner"\n'
                    '"baremetal:node:update": "rule:is_node_owner"\n')
    system_member = Credentials(frozenset({"member", "reader"}), system=True)
    assert not policy.allowed("baremetal:chassis:update", system_member, Target(), rules)
    assert policy.allowed("baremetal:node:update", system_member, Target(policy.NODE), rules)


def test_a_deprecated_rules_override_reaches_its_finer_rules(tmp_path: Path) -> None:
    rules = _loaded(tmp_path, '"baremetal:node:update": "role:reader"\n'
                    '"baremetal:node:update:owner": "!"\n')
    assert policy.allowed("baremetal:node:update:name", PROJECT_READER, OWNED, rules)
    assert not policy.allowed("baremetal:node:update:owner", PROJECT_READER, OWNED, rules)


@pytest.mark.parametrize(("text", "says"), [
    ('"a": "role:x"\n"b": "role:x or"\n', "line 2: rule 'b': the check string ends"),
    ('"a": "rule:is_admin"\n\n"b": "rule:nope or rule:a"\n',
     "line 3: rule 'b' references undefined rule(s) nope"),
    ('"a": "rule:b"\n"b": "not rule:a"\n', "line 1: rule 'a' references itself"),
    ('"baremetal:node:update": "rule:baremetal:node:update:name or role:x"\n',
     "rule 'baremetal:node:update:name' (as 'baremetal:node:update') references itself"),
    ('"a": "role:x"\n"a": "role:y"\n', "line 2: rule 'a' is defined twice (also line 1)"),
    ('"a":\n', "line 1: rule 'a' needs a check string"),
    ('"a": true\n', "line 1: rule 'a' needs a check string"),
    ('"a": ["role:x"]\n', "line 1: rule 'a' needs a check string"),
    ('- "role:x"\n', "expected a mapping of rule names to check strings"),
    ('"a": "role:x\n', "not YAML or JSON: line 2"),
    # Ironic's system member and reader rules use it: the file could not change them here
    ('"a": "role:x"\n"service_role": "!"\n',
     "line 2: rule 'service_role' cannot be overridden"),
    ('"public_api": "!"\n', "line 1: rule 'public_api' cannot be overridden"),
    # false for everyone here, so "not user_id:..." would let everyone in
    ('"baremetal:node:delete": "role:admin and not user_id:1234"\n',
     "line 1: rule 'baremetal:node:delete' compares user_id, which Enclume does not know"),
])
def test_a_file_that_cannot_be_used_is_refused_with_its_line(tmp_path: Path, text: str,
                                                             says: str) -> None:
    with pytest.raises(PolicyFileError) as refused:
        _loaded(tmp_path, text)
    assert f"policy file {tmp_path / 'policy.yaml'}" in str(refused.value)
    assert says in str(refused.value)


def test_the_operator_guides_example_reads_as_it_says(tmp_path: Path) -> None:
    guide = (Path(__file__).parents[2] / "docs" / "operator-guide.md").read_text()
    example = guide.split("# /etc/enclume/policy.yaml\n", 1)[1].split("```", 1)[0]
    rules = _loaded(tmp_path, example)
    for power in (PROJECT_READER, policy.credentials_of(None)):
        assert policy.allowed("baremetal:node:set_power_state", power, OWNED, rules)
    assert not policy.allowed("baremetal:node:list", PROJECT_READER, OWNED, rules)
    assert not policy.allowed("baremetal:node:delete", policy.credentials_of(None), OWNED,
                              rules)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="cannot be read"):
        load_rules(tmp_path / "absent.yaml")


def test_the_api_refuses_to_start_with_the_files_error_alone(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text('"baremetal:node:get": "role:reader or"\n')
    env = {**os.environ, "ENCLUME_DATA_DIR": str(tmp_path), "ENCLUME_API_PORT": "0",
           "ENCLUME_API_POLICY_FILE": str(path), "ENCLUME_RPC_SECRET": "s" * 32}
    done = subprocess.run([sys.executable, "-c", "from services.api.main import main; main()"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert (f"refusing to start: policy file {path}, line 1: rule 'baremetal:node:get': "
            "the check string ends where a check was expected") in done.stderr
    assert "Traceback" not in done.stderr


PASSWORD = "pw"
POLICY = """\
# the nodes' list is the admins'; the service role deletes nodes
"baremetal:node:list": "role:admin"
"baremetal:node:list_all": "role:admin"
"baremetal:node:delete": "role:admin or rule:service_role"
# wiping disks is the admins'
"baremetal:step:execute:deploy.erase_devices": "role:admin"
"""
WIPE = {"interface": "deploy", "step": "erase_devices"}
METADATA = {"interface": "deploy", "step": "erase_devices_metadata"}
REFUSED = "insufficient privileges to execute step erase_devices on interface deploy"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApi]:
    directory = tmp_path_factory.mktemp("policy-file-api")
    users = write_users_file(directory, {"root": (["admin"], []), "svc": (["service"], [])},
                             PASSWORD)
    (directory / "policy.yaml").write_text(POLICY)
    with served_sqlite_api(directory, auth={"strategy": "users_file", "users_file": users},
                           api={"policy_file": directory / "policy.yaml"}) as served:
        yield served


@pytest.fixture(scope="module")
def api(stack: ServedApi) -> httpx.Client:
    return stack.client


def test_an_override_changes_what_a_user_may_do(api: httpx.Client) -> None:
    root, service = ("root", PASSWORD), ("svc", PASSWORD)
    node = api.post("/v1/nodes", auth=root, json={"driver": "fake-hardware"})
    assert node.status_code == 201
    # Ironic's defaults let the service role list nodes and refuse it deleting them.
    assert api.get("/v1/nodes", auth=service).status_code == 403
    listed = api.get("/v1/nodes", auth=root)
    assert [n["uuid"] for n in listed.json()["nodes"]] == [node.json()["uuid"]]
    uuid = node.json()["uuid"]
    assert api.get(f"/v1/nodes/{uuid}", auth=service).status_code == 200  # the defaults'
    assert api.delete(f"/v1/nodes/{uuid}", auth=service).status_code == 204


def test_a_step_rule_of_the_file_guards_the_step_in_a_request(api: httpx.Client) -> None:
    root, service = ("root", PASSWORD), ("svc", PASSWORD)
    uuid = api.post("/v1/nodes", auth=root, json={"driver": "fake-hardware"}).json()["uuid"]
    provision = f"/v1/nodes/{uuid}/states/provision"
    refused = api.put(provision, auth=service, json={"target": "clean", "clean_steps": [
        METADATA, WIPE]})
    assert refused.status_code == 403 and REFUSED in refused.text
    # Allowed: the step rule passes, the endpoint answers (a node in enroll is not cleaned).
    for caller, steps in ((root, [METADATA, WIPE]), (service, [METADATA])):
        answer = api.put(provision, auth=caller, json={"target": "clean",
                                                      "clean_steps": steps})
        assert answer.status_code == 400 and "can not be performed" in answer.text


def test_a_step_rule_guards_runbooks_and_their_use(api: httpx.Client) -> None:
    root, service = ("root", PASSWORD), ("svc", PASSWORD)
    wipe = {**WIPE, "order": 1}
    created = api.post("/v1/runbooks", auth=service, json={"name": "CUSTOM_WIPE",
                                                           "steps": [wipe]})
    assert created.status_code == 403 and REFUSED in created.text
    light = api.post("/v1/runbooks", auth=service, json={"name": "CUSTOM_LIGHT", "steps": [
        {**METADATA, "order": 1}]})
    assert light.status_code == 201, light.text
    to_wipe = [{"op": "add", "path": "/steps/-", "value": {**wipe, "order": 2}}]
    patched = api.patch("/v1/runbooks/CUSTOM_LIGHT", auth=service, json=to_wipe)
    assert patched.status_code == 403 and REFUSED in patched.text
    assert api.patch("/v1/runbooks/CUSTOM_LIGHT", auth=service, json=[
        {"op": "add", "path": "/extra/site", "value": "lab"}]).status_code == 200
    assert api.patch("/v1/runbooks/CUSTOM_LIGHT", auth=root, json=to_wipe).status_code == 200
    # A project's runbook (not the system's, not public): its steps pass the step rules.
    assert api.patch("/v1/runbooks/CUSTOM_LIGHT", auth=root, json=[
        {"op": "add", "path": "/owner", "value": "p1"}]).status_code == 200
    uuid = api.post("/v1/nodes", auth=root, json={"driver": "fake-hardware"}).json()["uuid"]
    assert api.put(f"/v1/nodes/{uuid}/traits/CUSTOM_LIGHT", auth=root).status_code == 204
    clean = {"target": "clean", "runbook": "CUSTOM_LIGHT"}
    used = api.put(f"/v1/nodes/{uuid}/states/provision", auth=service, json=clean,
                   headers=at("1.92"))
    assert used.status_code == 403 and REFUSED in used.text
    by_admin = api.put(f"/v1/nodes/{uuid}/states/provision", auth=root, json=clean,
                       headers=at("1.92"))
    assert by_admin.status_code == 400 and "can not be performed" in by_admin.text


def test_a_provision_request_reads_its_runbook_once(stack: ServedApi) -> None:
    """The runbook a provision request names is found where it is used (the endpoint, as
    Ironic's _handle_runbook), its ``baremetal:runbook:use`` checked there, not found first
    by the gate (the service role: not a caller every rule allows, the gate runs)."""
    api, root, service = stack.client, ("root", PASSWORD), ("svc", PASSWORD)
    assert api.post("/v1/runbooks", auth=root, json={"name": "CUSTOM_ONCE", "steps": [
        {**METADATA, "order": 1}]}).status_code == 201
    uuid = api.post("/v1/nodes", auth=root, json={"driver": "fake-hardware"}).json()["uuid"]
    assert api.put(f"/v1/nodes/{uuid}/traits/CUSTOM_ONCE", auth=root).status_code == 204
    statements: list[str] = []

    def executed(connection: object, cursor: object, statement: str, *rest: object) -> None:
        statements.append(statement)
    event.listen(stack.app.state.db.engine, "before_cursor_execute", executed)
    try:
        answer = api.put(f"/v1/nodes/{uuid}/states/provision", auth=service, headers=at("1.92"),
                         json={"target": "clean", "runbook": "CUSTOM_ONCE"})
    finally:
        event.remove(stack.app.state.db.engine, "before_cursor_execute", executed)
    assert answer.status_code == 400 and "can not be performed" in answer.text
    assert len([s for s in statements if "FROM runbooks" in s]) == 1, statements


def test_a_caller_who_may_do_all_lists_the_project_it_asks_for(
        api: httpx.Client, tmp_path: Path) -> None:
    """The gate skips its lookups for them, not ``?project=`` (Ironic's check_list_policy):
    under the file's rules (root may do all) and Ironic's defaults (noauth)."""
    root = ("root", PASSWORD)
    with served_sqlite_api(tmp_path) as defaults:
        for client, auth in ((api, root), (defaults.client, None)):
            owned = client.post("/v1/nodes", auth=auth, json={
                "driver": "fake-hardware", "owner": "p-asked"}).json()["uuid"]
            leased = client.post("/v1/nodes", auth=auth, json={
                "driver": "fake-hardware", "lessee": "p-asked"}).json()["uuid"]
            assert client.post("/v1/nodes", auth=auth, json={
                "driver": "fake-hardware"}).status_code == 201
            listed = client.get("/v1/nodes?project=p-asked", auth=auth)
            assert {node["uuid"] for node in listed.json()["nodes"]} == {owned, leased}
            assert len(client.get("/v1/nodes", auth=auth).json()["nodes"]) >= 3
