"""API 1.93 to 1.115, built ahead of the versions Enclume speaks: served here by an app made
while ``MAX_VERSION`` is raised to 1.115 (as the lead raises it once 1.85 to 1.92 are built),
on SQLite with fake hardware and an in-process conductor. Each is checked at its version and
at the one below it, where Ironic ignores or refuses it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.api_stack import at, served_at_maximum, wait_state
from tests.support.api_stack import faultstring as fault
from tests.support.polling import eventually


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with served_at_maximum(tmp_path_factory.mktemp("micro-93-115"), (1, 115)) as stack:
        yield stack.client


def new_node(api: httpx.Client, version: str = "latest", **values: Any) -> str:
    created = api.post("/v1/nodes", json={"driver": "fake-hardware", **values},
                       headers=at(version))
    assert created.status_code == 201, created.text
    return str(created.json()["uuid"])


def patch(api: httpx.Client, node: str, *operations: dict[str, Any],
          version: str = "1.104") -> httpx.Response:
    return api.patch(f"/v1/nodes/{node}", json=list(operations), headers=at(version))


# -- 1.104: instance_name ------------------------------------------------------------------


def test_instance_name_is_set_shown_filtered_and_removed(api: httpx.Client) -> None:
    # openstacksdk's TestBareMetalNodeInstanceName, step by step
    node, other = new_node(api), new_node(api)
    assert api.get(f"/v1/nodes/{node}", headers=at("1.104")).json()["instance_name"] is None
    named = patch(api, node, {"op": "add", "path": "/instance_name", "value": "instance-1"})
    assert named.status_code == 200 and named.json()["instance_name"] == "instance-1"
    patch(api, other, {"op": "add", "path": "/instance_name", "value": "instance-2"})
    found = api.get("/v1/nodes/detail?instance_name=instance-1", headers=at("1.104")).json()
    assert [(n["uuid"], n["instance_name"]) for n in found["nodes"]] == [(node, "instance-1")]
    listed = api.get("/v1/nodes?instance_name=instance-2", headers=at("1.104")).json()
    assert [n["uuid"] for n in listed["nodes"]] == [other]
    removed = patch(api, node, {"op": "remove", "path": "/instance_name"})
    assert removed.json()["instance_name"] is None
    assert api.get(f"/v1/nodes/{node}", headers=at("1.104")).json()["instance_name"] is None


def test_instance_name_below_1_104_and_its_limits(api: httpx.Client) -> None:
    node = new_node(api, instance_name="created-named")
    assert api.get(f"/v1/nodes/{node}").json()["instance_name"] == "created-named"
    assert "instance_name" not in api.get(f"/v1/nodes/{node}", headers=at("1.103")).json()
    old = patch(api, node, {"op": "add", "path": "/instance_name", "value": "x"},
                version="1.103")
    assert old.status_code == 406  # Ironic's reject_patch_in_newer_versions
    refused = api.get("/v1/nodes?instance_name=x", headers=at("1.103"))
    assert refused.status_code == 406
    assert fault(refused) == "instance_name is not acceptable in this API version"
    empty = patch(api, node, {"op": "add", "path": "/instance_name", "value": ""})
    assert empty.status_code == 400 and "too short" in fault(empty)
    long = patch(api, node, {"op": "add", "path": "/instance_name", "value": "x" * 256})
    assert long.status_code == 400


def test_instance_info_display_name_names_the_instance_until_undeploy(api: httpx.Client
                                                                      ) -> None:
    node = new_node(api, "1.10")  # available at once
    shown = patch(api, node, {"op": "add", "path": "/instance_info",
                              "value": {"display_name": "vm-1"}}).json()
    assert shown["instance_name"] == "vm-1"
    # an instance_name already set is kept
    shown = patch(api, node, {"op": "add", "path": "/instance_info",
                              "value": {"display_name": "vm-2"}}).json()
    assert shown["instance_name"] == "vm-1"
    assert api.put(f"/v1/nodes/{node}/states/provision",
                   json={"target": "active"}).status_code == 202
    assert wait_state(api, node, "active")["instance_name"] == "vm-1"
    assert api.put(f"/v1/nodes/{node}/states/provision",
                   json={"target": "deleted"}).status_code == 202
    undeployed = wait_state(api, node, "available")
    assert undeployed["instance_name"] is None and undeployed["instance_info"] == {}


# -- 1.112: runbook traits -----------------------------------------------------------------

STEP = {"interface": "bios", "step": "factory_reset", "args": {}, "order": 0}


def test_runbook_traits_description_and_names(api: httpx.Client) -> None:
    old = api.post("/v1/runbooks", json={"name": "CUSTOM_OLD", "steps": [STEP]},
                   headers=at("1.111"))
    assert old.status_code == 201 and "traits" not in old.json()
    assert "description" not in old.json()
    assert api.post("/v1/runbooks", json={"name": "wipe-disks", "steps": [STEP]},
                    headers=at("1.111")).status_code == 400  # a trait below 1.112
    described = api.post("/v1/runbooks", json={"name": "CUSTOM_D", "steps": [STEP],
                                                "description": "x"}, headers=at("1.111"))
    assert described.status_code == 400 and "'description' unexpected" in fault(described)
    new = api.post("/v1/runbooks", json={"name": "wipe-disks.v2", "steps": [STEP],
                                         "description": "Wipe them"})
    assert new.status_code == 201, new.text
    assert new.json()["traits"] == [] and new.json()["description"] == "Wipe them"
    bad = api.post("/v1/runbooks", json={"name": "wipe disks", "steps": [STEP]})
    assert bad.status_code == 400 and "does not match" in fault(bad)
    no_traits = api.post("/v1/runbooks", json={"name": "x", "steps": [STEP], "traits": []})
    assert no_traits.status_code == 400 and "'traits' unexpected" in fault(no_traits)
    # a PATCH accepts such names at every version, not a description below 1.112
    renamed = api.patch("/v1/runbooks/CUSTOM_OLD", headers=at("1.111"),
                        json=[{"op": "replace", "path": "/name", "value": "old-one"}])
    assert renamed.status_code == 200 and renamed.json()["name"] == "old-one"
    assert api.patch("/v1/runbooks/old-one", headers=at("1.111"), json=[
        {"op": "add", "path": "/description", "value": "d"}]).status_code == 400
    patched = api.patch("/v1/runbooks/old-one", json=[
        {"op": "add", "path": "/description", "value": "d"}])
    assert patched.json()["description"] == "d"


def test_the_traits_sub_resource(api: httpx.Client) -> None:
    api.post("/v1/runbooks", json={"name": "traited", "steps": [STEP]})
    base = "/v1/runbooks/traited/traits"
    assert api.get(base, headers=at("1.111")).status_code == 404
    assert api.put(base, json={"traits": []}, headers=at("1.91")).status_code == 405
    assert api.put(base, json={"traits": ["CUSTOM_A", "CUSTOM_B", "CUSTOM_A"]}).status_code \
        == 204
    assert api.get(base).json() == {"traits": ["CUSTOM_A", "CUSTOM_B"]}
    added = api.put(f"{base}/CUSTOM_C")
    assert added.status_code == 204 and added.headers["location"].endswith(f"{base}/CUSTOM_C")
    assert api.put(f"{base}/CUSTOM_C").status_code == 204  # twice: no error
    assert api.get("/v1/runbooks/traited").json()["traits"] == ["CUSTOM_A", "CUSTOM_B",
                                                                "CUSTOM_C"]
    assert api.put(f"{base}/not-a-trait").status_code == 400
    with_body = api.put(f"{base}/CUSTOM_D", json={"x": 1})
    assert fault(with_body) == "No body should be provided when adding a trait"
    assert "A single runbook trait may be added" in fault(api.put(base, json={}))
    assert api.delete(f"{base}/CUSTOM_B").status_code == 204
    assert api.delete(f"{base}/CUSTOM_NONE").status_code == 204
    assert api.get(base).json() == {"traits": ["CUSTOM_A", "CUSTOM_C"]}
    assert api.delete(base).status_code == 204
    assert api.get(base).json() == {"traits": []}
    assert api.get("/v1/runbooks/nothing/traits").status_code == 404


def test_a_node_runs_a_runbook_that_shares_one_of_its_traits(api: httpx.Client) -> None:
    api.post("/v1/runbooks", json={"name": "bios-reset", "steps": [STEP]})
    node = new_node(api, bios_interface="fake")
    assert api.put(f"/v1/nodes/{node}/states/provision",
                   json={"target": "manage"}).status_code == 202
    wait_state(api, node, "manageable")
    clean = {"target": "clean", "runbook": "bios-reset"}
    untraited = api.put(f"/v1/nodes/{node}/states/provision", json=clean)
    assert untraited.status_code == 400 and "has no traits configured" in fault(untraited)
    api.put("/v1/runbooks/bios-reset/traits", json={"traits": ["CUSTOM_RESETTABLE"]})
    unapproved = api.put(f"/v1/nodes/{node}/states/provision", json=clean)
    assert fault(unapproved) == (
        f"This runbook has not been approved for use on this node {node}. The node does not "
        "have any of the runbook's traits ['CUSTOM_RESETTABLE']. Please ask an administrator "
        "to add a matching trait to your node.")
    assert api.put(f"/v1/nodes/{node}/traits/CUSTOM_RESETTABLE").status_code == 204
    # below 1.112 the runbook's name must be one of the node's traits
    assert api.put(f"/v1/nodes/{node}/states/provision", json=clean,
                   headers=at("1.111")).status_code == 400
    assert api.put(f"/v1/nodes/{node}/states/provision", json=clean).status_code == 202
    eventually(lambda: any("factory_reset" in event["event"] for event in api.get(
        f"/v1/nodes/{node}/history").json()["history"]), 10, "the runbook's step run")
    wait_state(api, node, "manageable")


# -- 1.107: X-OpenStack-Request-Id -------------------------------------------------------


def test_every_answer_names_its_request(api: httpx.Client) -> None:
    answers = [api.get("/v1/nodes"), api.get("/v1/nodes/no-such-node"), api.get("/"),
               api.get("/v1/nodes", headers=at("1.1"))]
    ids = [answer.headers["x-openstack-request-id"] for answer in answers]
    for answer, request_id in zip(answers, ids, strict=True):
        assert answer.headers["openstack-request-id"] == request_id
        assert re.fullmatch(r"req-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", request_id)
    assert len(set(ids)) == len(ids)


# -- 1.110: abort in wait call-back ------------------------------------------------------


def test_a_deploy_waiting_for_its_agent_is_aborted_from_1_110(api: httpx.Client) -> None:
    node = new_node(api, "1.10", instance_info={
        "image_source": "http://127.0.0.1:9/disk.raw",
        "image_checksum": "0123456789abcdef0123456789abcdef"})
    patch(api, node, {"op": "add", "path": "/deploy_interface", "value": "direct"})
    assert api.put(f"/v1/nodes/{node}/states/provision",
                   json={"target": "active"}).status_code == 202
    wait_state(api, node, "wait call-back")
    old = api.put(f"/v1/nodes/{node}/states/provision", json={"target": "abort"},
                  headers=at("1.109"))
    assert old.status_code == 406
    assert api.get(f"/v1/nodes/{node}").json()["provision_state"] == "wait call-back"
    assert api.put(f"/v1/nodes/{node}/states/provision", json={"target": "abort"},
                   headers=at("1.110")).status_code == 202
    wait_state(api, node, "deploy failed")


# -- 1.98: ~ and / in the keys of patch paths ----------------------------------------------


@pytest.mark.parametrize("version", ["1.97", "1.98"])
def test_patch_keys_may_hold_tilde_and_slash(api: httpx.Client, version: str) -> None:
    # Enclume decodes ~0 and ~1 in every path segment at every version, as the jsonpatch
    # library Ironic applies patches with; 1.98 changed only Ironic's check of field names.
    node = new_node(api)
    patched = patch(api, node, {"op": "add", "path": "/extra/a~1b~0c", "value": 1},
                    version=version)
    assert patched.json()["extra"] == {"a/b~c": 1}
    removed = patch(api, node, {"op": "remove", "path": "/extra/a~1b~0c"}, version=version)
    assert removed.json()["extra"] == {}


# -- ports and port groups: 1.94, 1.97, 1.99 to 1.103, 1.106 ------------------------------


def test_port_texts_and_creation_by_node_name(api: httpx.Client) -> None:
    node = new_node(api, name="port-texts-node")
    body = {"address": "52:54:00:12:34:01", "node_ident": "port-texts-node",
            "description": "uplink", "vendor": "intel", "category": "fast"}
    assert api.post("/v1/ports", json=body, headers=at("1.93")).status_code == 406
    assert api.post("/v1/ports", json={**body, "node_ident": node, "description": None},
                    headers=at("1.96")).status_code == 406  # description is 1.97's
    created = api.post("/v1/ports", json=body)
    assert created.status_code == 201, created.text
    port = created.json()
    assert (port["node_uuid"], port["description"], port["vendor"], port["category"]) == (
        node, "uplink", "intel", "fast")
    shown = api.get(f"/v1/ports/{port['uuid']}", headers=at("1.100")).json()
    assert shown["vendor"] == "intel" and "category" not in shown
    assert "description" not in api.get(f"/v1/ports/{port['uuid']}",
                                        headers=at("1.96")).json()
    too_long = api.post("/v1/ports", json={"address": "52:54:00:12:34:02", "node_uuid": node,
                                           "vendor": "x" * 33})
    assert too_long.status_code == 400
    both = api.post("/v1/ports", json={"address": "52:54:00:12:34:03", "node_uuid": node,
                                       "node_ident": node})
    assert both.status_code == 400
    old_patch = api.patch(f"/v1/ports/{port['uuid']}", headers=at("1.100"), json=[
        {"op": "replace", "path": "/category", "value": "slow"}])
    assert old_patch.status_code == 406
    patched = api.patch(f"/v1/ports/{port['uuid']}", json=[
        {"op": "replace", "path": "/category", "value": "slow"},
        {"op": "remove", "path": "/description"}]).json()
    assert patched["category"] == "slow" and patched["description"] is None


def test_port_filters_by_description_and_conductor_group(api: httpx.Client) -> None:
    here = new_node(api, conductor_group="rack-7")
    elsewhere = new_node(api)
    mine = api.post("/v1/ports", json={"address": "52:54:00:12:35:01", "node_uuid": here,
                                       "description": "the rack-7 uplink"}).json()["uuid"]
    api.post("/v1/ports", json={"address": "52:54:00:12:35:02", "node_uuid": elsewhere})
    by_text = api.get("/v1/ports?description_contains=rack-7 up").json()["ports"]
    assert [p["uuid"] for p in by_text] == [mine]
    by_group = api.get("/v1/ports?conductor_groups=RACK-7,none").json()["ports"]
    assert [p["uuid"] for p in by_group] == [mine]
    mixed = api.get(f"/v1/ports?conductor_groups=rack-7&node={here}")
    assert mixed.status_code == 400 and "cannot be combined" in fault(mixed)


def test_portgroup_fields_and_filters(api: httpx.Client) -> None:
    sharded = new_node(api, shard="shard-pg", conductor_group="rack-8")
    other = new_node(api)
    group = api.post("/v1/portgroups", json={"node_uuid": sharded, "physical_network": "lab",
                                             "category": "bond"}).json()
    assert (group["physical_network"], group["category"]) == ("lab", "bond")
    api.post("/v1/portgroups", json={"node_uuid": other})
    shown = api.get(f"/v1/portgroups/{group['uuid']}", headers=at("1.102")).json()
    assert shown["physical_network"] == "lab" and "category" not in shown
    assert "physical_network" not in api.get(f"/v1/portgroups/{group['uuid']}",
                                             headers=at("1.101")).json()
    by_shard = api.get("/v1/portgroups?shard=shard-pg").json()["portgroups"]
    assert [g["uuid"] for g in by_shard] == [group["uuid"]]
    assert api.get("/v1/portgroups?shard=shard-pg", headers=at("1.105")).status_code == 406
    by_group = api.get("/v1/portgroups?conductor_groups=rack-8").json()["portgroups"]
    assert [g["uuid"] for g in by_group] == [group["uuid"]]
    assert api.get("/v1/portgroups?shard=shard-pg&conductor_groups=rack-8").status_code == 400
    patched = api.patch(f"/v1/portgroups/{group['uuid']}", json=[
        {"op": "remove", "path": "/physical_network"}]).json()
    assert patched["physical_network"] is None and patched["category"] == "bond"


# -- 1.95: disable_power_off ---------------------------------------------------------------


def test_a_node_with_disable_power_off_is_not_powered_off(api: httpx.Client) -> None:
    node = new_node(api, "1.10")
    assert "disable_power_off" not in api.get(f"/v1/nodes/{node}", headers=at("1.94")).json()
    assert patch(api, node, {"op": "replace", "path": "/disable_power_off", "value": True},
                 version="1.94").status_code == 406  # as Ironic
    shown = patch(api, node, {"op": "replace", "path": "/disable_power_off", "value": "True"},
                  version="1.95").json()
    assert shown["disable_power_off"] is True
    for target in ("power off", "soft power off"):
        refused = api.put(f"/v1/nodes/{node}/states/power", json={"target": target})
        assert refused.status_code == 500
        assert fault(refused) == f"Failed to set node power state to {target}."
    assert api.put(f"/v1/nodes/{node}/states/power",
                   json={"target": "rebooting"}).status_code == 202
    eventually(lambda: api.get(f"/v1/nodes/{node}").json()["target_power_state"] is None, 30,
               "the reboot done")  # else the patch below may meet the node locked (409)
    # A soft reboot never goes through off: fake power has no soft reboot of its own (as
    # Ironic's ipmitool with disable_power_off), so it fails and the machine stays on.
    assert api.put(f"/v1/nodes/{node}/states/power",
                   json={"target": "soft rebooting"}).status_code == 202
    eventually(lambda: api.get(f"/v1/nodes/{node}").json()["target_power_state"] is None, 30,
               "the soft reboot done")
    shown = api.get(f"/v1/nodes/{node}").json()
    assert "fake power cannot set the power state 'soft rebooting'" in shown["last_error"]
    assert shown["power_state"] == "power on"
    assert shown["driver_internal_info"]["fake_power_state"] == "power on"
    assert patch(api, node, {"op": "remove", "path": "/disable_power_off"}).status_code == 200
    assert api.get(f"/v1/nodes/{node}").json()["disable_power_off"] is False
    assert api.put(f"/v1/nodes/{node}/states/power",
                   json={"target": "power off"}).status_code == 202


# -- 1.113, 1.115: node history's project, state, target and duration ------------------------


def test_history_events_carry_the_state_they_happened_in(api: httpx.Client) -> None:
    node = new_node(api, bios_interface="fake")
    assert api.put(f"/v1/nodes/{node}/states/provision",
                   json={"target": "manage"}).status_code == 202
    wait_state(api, node, "manageable")
    assert api.put(f"/v1/nodes/{node}/states/provision", json={
        "target": "clean", "clean_steps": [{"interface": "bios", "step": "factory_reset"}]}
    ).status_code == 202
    base = f"/v1/nodes/{node}/history"
    events = eventually(lambda: api.get(f"{base}?detail=true").json()["history"], 10,
                        "the clean step's history")
    newest = events[-1]
    assert {"project", "state", "target_provision_state", "duration_seconds"} <= set(newest)
    assert newest["project"] is None
    assert (newest["state"], newest["target_provision_state"]) in (
        ("cleaning", "manageable"), ("clean wait", "manageable"), ("manageable", None))
    assert isinstance(newest["duration_seconds"], int) and newest["duration_seconds"] >= 0
    at_113 = api.get(f"{base}?detail=true", headers=at("1.113")).json()["history"][-1]
    assert "project" in at_113 and "state" not in at_113
    at_112 = api.get(f"{base}/{newest['uuid']}", headers=at("1.112")).json()
    assert "project" not in at_112 and "duration_seconds" not in at_112
    assert set(api.get(base).json()["history"][-1]) == {"uuid", "created_at", "severity",
                                                        "event", "links"}


# -- 1.111: dynamic port groups (fields only) ----------------------------------------------


def test_dynamic_portgroup_fields(api: httpx.Client) -> None:
    node = new_node(api)
    port = api.post("/v1/ports", json={"address": "52:54:00:12:36:01", "node_uuid": node})
    assert port.json()["available_for_dynamic_portgroup"] is True
    assert api.post("/v1/ports", json={"address": "52:54:00:12:36:02", "node_uuid": node,
                                       "available_for_dynamic_portgroup": False},
                    headers=at("1.110")).status_code == 406
    assert "available_for_dynamic_portgroup" not in api.get(
        f"/v1/ports/{port.json()['uuid']}", headers=at("1.110")).json()
    patched = api.patch(f"/v1/ports/{port.json()['uuid']}", json=[
        {"op": "replace", "path": "/available_for_dynamic_portgroup", "value": "false"}])
    assert patched.json()["available_for_dynamic_portgroup"] is False
    group = api.post("/v1/portgroups", json={"node_uuid": node}).json()
    assert group["dynamic_portgroup"] is False
    dynamic = api.patch(f"/v1/portgroups/{group['uuid']}", json=[
        {"op": "replace", "path": "/dynamic_portgroup", "value": True}]).json()
    assert dynamic["dynamic_portgroup"] is True
    assert "dynamic_portgroup" not in api.get(f"/v1/portgroups/{group['uuid']}",
                                              headers=at("1.110")).json()


# -- 1.93: the BMC's virtual media (Redfish's in tests/integration/test_redfish_vmedia.py) --


def test_vmedia_is_listed_from_1_93_as_ironic_answers_an_interface_without_it(
        api: httpx.Client) -> None:
    node = new_node(api)
    assert api.get(f"/v1/nodes/{node}/vmedia", headers=at("1.92")).status_code == 404
    assert api.get(f"/v1/nodes/{node}/vmedia", headers=at("1.88")).status_code == 404
    listed = api.get(f"/v1/nodes/{node}/vmedia", headers=at("1.93"))
    assert listed.status_code == 400
    assert fault(listed) == ("Driver fake-hardware does not support get_virtual_media "
                             "(disabled or not implemented).")
    assert api.get("/v1/nodes/no-such-node/vmedia").status_code == 404


# -- 1.105: OVN VTEP switches in local_link_connection removed ------------------------------


def test_vtep_switches_are_refused_and_hidden_from_1_105(api: httpx.Client) -> None:
    node = new_node(api)
    vtep = {"port_id": "p1", "vtep-logical-switch": "ls1", "vtep-physical-switch": "ps1"}
    body = {"address": "52:54:00:12:37:01", "node_uuid": node, "local_link_connection": vtep}
    assert api.post("/v1/ports", json=body, headers=at("1.105")).status_code == 406
    half = {**body, "local_link_connection": {"port_id": "p1", "vtep-logical-switch": "ls1"}}
    assert "is a dependency" in fault(api.post("/v1/ports", json=half, headers=at("1.105")))
    created = api.post("/v1/ports", json=body, headers=at("1.104"))
    assert created.status_code == 201, created.text
    path = f"/v1/ports/{created.json()['uuid']}"
    assert api.get(path, headers=at("1.104")).json()["local_link_connection"] == vtep
    assert api.get(path, headers=at("1.105")).json()["local_link_connection"] == {}
    plain = {"port_id": "p2", "switch_id": "0a:1b:2c:3d:4e:5f"}
    other = api.post("/v1/ports", json={"address": "52:54:00:12:37:02", "node_uuid": node,
                                        "local_link_connection": plain})
    assert other.status_code == 201 and other.json()["local_link_connection"] == plain


# -- 1.108: disable_ramdisk with the service verb -------------------------------------------


def test_disable_ramdisk_is_taken_for_servicing_from_1_108(api: httpx.Client) -> None:
    node = new_node(api, "1.10")
    patch(api, node, {"op": "add", "path": "/bios_interface", "value": "fake"})
    deploy = api.put(f"/v1/nodes/{node}/states/provision",
                     json={"target": "active", "disable_ramdisk": True})
    assert deploy.status_code == 400
    assert fault(deploy) == "disable_ramdisk is supported only with manual cleaning or servicing"
    assert api.put(f"/v1/nodes/{node}/states/provision",
                   json={"target": "active"}).status_code == 202
    wait_state(api, node, "active")
    step = {"interface": "bios", "step": "apply_configuration",
            "args": {"settings": [{"name": "HyperThreading", "value": "Disabled"}]}}
    body = {"target": "service", "service_steps": [step], "disable_ramdisk": True}
    old = api.put(f"/v1/nodes/{node}/states/provision", json=body, headers=at("1.107"))
    assert old.status_code == 406
    assert fault(old) == "disable_ramdisk is not acceptable in this API version"
    assert api.put(f"/v1/nodes/{node}/states/provision", json=body,
                   headers=at("1.108")).status_code == 202

    def serviced() -> bool:
        shown = api.get(f"/v1/nodes/{node}").json()
        bios = api.get(f"/v1/nodes/{node}/bios").json()["bios"]
        return (shown["provision_state"] == "active" and shown["service_step"] == {}
                and {s["name"]: s["value"] for s in bios}.get("HyperThreading") == "Disabled")

    eventually(serviced, 30, "serviced without a ramdisk")
    assert api.get(f"/v1/nodes/{node}").json()["last_error"] is None


def test_disable_ramdisk_of_a_manual_cleaning_from_1_70(api: httpx.Client) -> None:
    node = new_node(api, "1.10")
    assert api.put(f"/v1/nodes/{node}/states/provision",
                   json={"target": "manage"}).status_code == 202
    wait_state(api, node, "manageable")
    body = {"target": "clean", "clean_steps": [{"interface": "deploy", "step": "hold"}],
            "disable_ramdisk": True}
    old = api.put(f"/v1/nodes/{node}/states/provision", json=body, headers=at("1.69"))
    assert old.status_code == 406
    assert fault(old) == "disable_ramdisk is not acceptable in this API version"
