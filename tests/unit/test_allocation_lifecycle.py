"""Allocations as Ironic's: created ``allocating``, decided by a conductor (``active`` or
``error`` with Ironic's ``last_error``), backfilled at once, freed by deletion under Ironic's
rules, deleted with their node, and decided again when their conductor died."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.models import Allocation, Node, utcnow
from services.conductor.periodic import ORPHANED_ALLOCATION_S, PeriodicTasks
from tests.support.api_stack import ServedApi, fault, served_api


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApi]:
    directory: Path = tmp_path_factory.mktemp("allocations")
    url = f"sqlite:///{directory / 'api.sqlite'}"
    upgrade_schema(url)
    settings = Settings(process={"data_dir": directory}, conductor={"hostname": "conductor-1"})
    with served_api(settings, Database(url)) as stack:
        yield stack


@pytest.fixture
def api(served: ServedApi) -> httpx.Client:
    return served.client


def rc() -> str:
    return f"rc-{uuid.uuid4().hex[:8]}"


def available(api: httpx.Client, resource_class: str, **values: Any) -> str:
    """A node created available (before API 1.11, as Ironic does)."""
    created = api.post("/v1/nodes", headers={"X-OpenStack-Ironic-API-Version": "1.10"},
                       json={"driver": "fake-hardware", **values})
    assert created.status_code == 201, created.text
    node = str(created.json()["uuid"])
    assert api.patch(f"/v1/nodes/{node}", json=[
        {"op": "add", "path": "/resource_class", "value": resource_class}]).status_code == 200
    return node


def settle(api: httpx.Client, allocation: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while (shown := api.get(f"/v1/allocations/{allocation}").json())["state"] == "allocating":
        assert time.monotonic() < deadline, shown
        time.sleep(0.02)
    return dict(shown)


def allocate(api: httpx.Client, **body: Any) -> dict[str, Any]:
    created = api.post("/v1/allocations", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["state"] == "allocating" and created.json()["node_uuid"] is None
    return settle(api, created.json()["uuid"])


def test_a_conductor_decides_by_class_traits_candidates_and_name(api: httpx.Client) -> None:
    cls = rc()
    plain = available(api, cls, name=f"{cls}-plain")
    gpu = available(api, cls)
    assert api.put(f"/v1/nodes/{gpu}/traits", json={"traits": ["CUSTOM_GPU"]}).status_code == 204
    done = allocate(api, resource_class=cls, traits=["CUSTOM_GPU"])
    assert (done["state"], done["node_uuid"], done["last_error"]) == ("active", gpu, None)
    node = api.get(f"/v1/nodes/{gpu}").json()
    assert (node["instance_uuid"], node["allocation_uuid"]) == (done["uuid"], done["uuid"])
    failed = allocate(api, resource_class=cls, traits=["CUSTOM_GPU"])
    assert (failed["state"], failed["node_uuid"]) == ("error", None)
    assert failed["last_error"] == (f"Failed to process allocation {failed['uuid']}: no "
                                    "suitable nodes have the requested traits CUSTOM_GPU.")
    none = allocate(api, resource_class=rc())
    assert none["last_error"].endswith(": no available nodes match the resource class "
                                       f"{none['resource_class']}.")
    other = available(api, rc())
    picked = allocate(api, resource_class=cls, candidate_nodes=[other])
    assert picked["last_error"] == (
        f"Failed to process allocation {picked['uuid']}: none of the requested nodes are "
        f"available and match the resource class {cls}.")
    # The node named as the allocation is tried first.
    second = available(api, cls)
    named = allocate(api, resource_class=cls, name=f"{cls}-plain")
    assert named["node_uuid"] == plain
    assert allocate(api, resource_class=cls)["node_uuid"] == second
    assert api.get("/v1/allocations", params={"state": "error", "resource_class": cls}).json()[
        "allocations"][0]["uuid"] in (failed["uuid"], picked["uuid"])


def test_an_owned_allocation_gets_a_node_its_project_owns_or_leases(api: httpx.Client) -> None:
    """Ironic's conductor filters candidates by 'project': the node's owner or lessee."""
    cls = rc()
    other, leased = available(api, cls), available(api, cls)
    for node, projects in ((other, {"owner": "p-other"}),
                           (leased, {"owner": "p-landlord", "lessee": "p-tenant"})):
        assert api.patch(f"/v1/nodes/{node}", headers={"X-OpenStack-Ironic-API-Version": "1.65"},
                         json=[{"op": "add", "path": f"/{field}", "value": value}
                               for field, value in projects.items()]).status_code == 200
    done = allocate(api, resource_class=cls, owner="p-tenant")
    assert (done["state"], done["node_uuid"]) == ("active", leased)
    refused = allocate(api, resource_class=cls, owner="p-nobody")
    assert (refused["state"], refused["node_uuid"]) == ("error", None)


def test_backfill_is_decided_at_once_with_ironics_texts(api: httpx.Client) -> None:
    cls = rc()
    node = available(api, cls)
    refused = api.post("/v1/allocations", json={"node": node, "name": f"{cls}-bf"})
    assert fault(refused, 400).startswith("Failed to process allocation ")
    assert fault(refused, 400).endswith(
        f"Cannot backfill an allocation for node {node}: Node must be in the \"active\" "
        "state, but the current state is \"available\".")
    failed = api.get(f"/v1/allocations/{cls}-bf").json()
    assert (failed["state"], failed["resource_class"]) == ("error", cls)
    assert api.put(f"/v1/nodes/{node}/states/provision",
                   json={"target": "active"}).status_code == 202
    deadline = time.monotonic() + 10
    while api.get(f"/v1/nodes/{node}").json()["provision_state"] != "active":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    instance = api.get(f"/v1/nodes/{node}").json()["instance_uuid"]
    backfilled = api.post("/v1/allocations", json={"node": node})
    assert backfilled.status_code == 201, backfilled.text
    document = backfilled.json()
    assert (document["state"], document["node_uuid"]) == ("active", node)
    if instance:  # the node's instance UUID becomes the allocation's
        assert document["uuid"] == instance
    # An active node's allocation stays unless the node is in maintenance.
    assert fault(api.delete(f"/v1/allocations/{document['uuid']}"), 409) == (
        f"Cannot remove allocation {document['uuid']} for node {node}, because the node is "
        "active (and maintenance mode is off)")
    assert api.put(f"/v1/nodes/{node}/maintenance", json={}).status_code == 202
    assert api.delete(f"/v1/allocations/{document['uuid']}").status_code == 204
    freed = api.get(f"/v1/nodes/{node}").json()
    assert (freed["instance_uuid"], freed["allocation_uuid"]) == (None, None)
    unknown = api.post("/v1/allocations", json={"node": str(uuid.uuid4())})
    assert "could not be found" in fault(unknown, 400)


def test_deleting_a_node_or_its_instance_deletes_its_allocation(served: ServedApi) -> None:
    api = served.client
    cls = rc()
    node = available(api, cls)
    done = allocate(api, resource_class=cls)
    assert done["node_uuid"] == node
    assert api.delete(f"/v1/allocations/{done['uuid']}").status_code == 204
    assert api.get(f"/v1/nodes/{node}").json()["instance_uuid"] is None
    # Removing the instance removes the allocation (available: allowed), as in Ironic.
    again = allocate(api, resource_class=cls)
    assert api.patch(f"/v1/nodes/{node}", json=[
        {"op": "remove", "path": "/instance_uuid"}]).status_code == 200
    assert api.get(f"/v1/allocations/{again['uuid']}").status_code == 404
    # A node deleted while an allocation names it takes the allocation along.
    third = allocate(api, resource_class=cls)
    with served.manager.db.session() as session:
        session.execute(update(Node).where(Node.uuid == node).values(instance_uuid=None))
    assert api.delete(f"/v1/nodes/{node}").status_code == 204
    assert api.get(f"/v1/allocations/{third['uuid']}").status_code == 404


def test_an_orphaned_allocation_is_decided_by_the_periodic_task(served: ServedApi) -> None:
    api, manager = served.client, served.manager
    cls = rc()
    node = available(api, cls)
    old = utcnow() - timedelta(seconds=ORPHANED_ALLOCATION_S + 5)
    with manager.db.session() as session:
        session.add(Allocation(uuid=(orphan := str(uuid.uuid4())), resource_class=cls,
                               created_at=old, traits=[], candidate_nodes=[], extra={}))
    periodic = PeriodicTasks(manager)
    assert periodic.resume_allocations() == 1
    assert settle(api, orphan)["node_uuid"] == node
    assert periodic.resume_allocations() == 0
