"""openstacksdk, Ironic's own client library, drives enclume-aio through a node's whole life."""

from __future__ import annotations

import itertools
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openstack
import pytest
from openstack import exceptions as sdk_exceptions

from tests.integration.conftest import USERS
from tests.support.aio import Server

MACS = (f"52:54:00:{i >> 16 & 0xff:02x}:{i >> 8 & 0xff:02x}:{i & 0xff:02x}"
        for i in itertools.count(1))


def connect(server: Server, **auth: Any) -> openstack.connection.Connection:
    options: dict[str, Any] = {"auth_type": "none"}
    if auth:
        options = {"auth_type": "http_basic", "auth": auth}
    return openstack.connection.Connection(
        baremetal_endpoint_override=server.url, baremetal_api_version="1", **options
    )


def walk_node_life(conn: openstack.connection.Connection) -> None:
    name = f"node-{uuid.uuid4().hex[:8]}"
    node = conn.baremetal.create_node(driver="fake-hardware", name=name,
                                      provision_state="enroll", resource_class="baremetal",
                                      driver_info={"ipmi_password": "hunter2"})
    assert node.provision_state == "enroll"
    assert node.driver_info["ipmi_password"] == "******"
    port = conn.baremetal.create_port(node_uuid=node.id, address=next(MACS))
    assert [p.id for p in conn.baremetal.ports(node=node.id)] == [port.id]

    node = conn.baremetal.set_node_provision_state(node, "manage", wait=True, timeout=30)
    assert node.provision_state == "manageable"
    assert node.target_provision_state is None
    node = conn.baremetal.set_node_provision_state(node, "provide", wait=True, timeout=30)
    assert node.provision_state == "available"

    node = conn.baremetal.set_node_provision_state(node, "active", config_drive="H4sIAAAAAAA=",
                                                   wait=True, timeout=30)
    assert node.provision_state == "active"
    assert node.power_state == "power on"
    assert node.instance_info["configdrive"] == "******"

    conn.baremetal.set_node_power_state(node, "power off", wait=True, timeout=30)
    assert conn.baremetal.get_node(node.id).power_state == "power off"
    conn.baremetal.set_node_power_state(node, "power on", wait=True, timeout=30)
    assert conn.baremetal.get_node(node.id).power_state == "power on"

    conn.baremetal.set_node_maintenance(node, reason="disk swap")
    shown = conn.baremetal.get_node(name)
    assert shown.is_maintenance and shown.maintenance_reason == "disk swap"
    conn.baremetal.unset_node_maintenance(node)
    assert not conn.baremetal.get_node(name).is_maintenance

    node = conn.baremetal.patch_node(node, [{"op": "add", "path": "/extra/rack", "value": "r1"},
                                            {"op": "replace", "path": "/description",
                                             "value": "test machine"}])
    assert node.extra == {"rack": "r1"} and node.description == "test machine"
    node = conn.baremetal.patch_node(node, [{"op": "remove", "path": "/extra/rack"}])
    assert node.extra == {}

    details = {n.name: n for n in conn.baremetal.nodes(details=True)}
    assert details[name].provision_state == "active"
    assert details[name].driver == "fake-hardware"

    node = conn.baremetal.set_node_provision_state(node, "deleted", wait=True, timeout=30)
    assert node.provision_state == "available"
    assert node.instance_info == {}
    conn.baremetal.delete_node(node)
    with pytest.raises(sdk_exceptions.NotFoundException):
        conn.baremetal.get_node(node.id)
    with pytest.raises(sdk_exceptions.NotFoundException):
        conn.baremetal.get_port(port.id)


def test_node_life_noauth(aio: Server) -> None:
    walk_node_life(connect(aio))


def test_node_life_http_basic(aio_basic: Server) -> None:
    user, password = next(iter(USERS.items()))
    walk_node_life(connect(aio_basic, username=user, password=password))


def test_http_basic_refuses_wrong_and_missing_credentials(aio_basic: Server) -> None:
    assert httpx.get(f"{aio_basic.url}/").status_code == 200  # discovery stays public
    assert httpx.get(f"{aio_basic.url}/v1/nodes").status_code == 401
    wrong = httpx.get(f"{aio_basic.url}/v1/nodes", auth=("admin", "wrong"))
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Basic")
    conn = connect(aio_basic, username="admin", password="nope")
    with pytest.raises(sdk_exceptions.HttpException):
        list(conn.baremetal.nodes())


def test_fields_and_pagination_over_1000_nodes(aio: Server) -> None:
    conn = connect(aio)
    prefix = f"page-{uuid.uuid4().hex[:6]}"

    def create(i: int) -> str:
        node = conn.baremetal.create_node(driver="fake-hardware", name=f"{prefix}-{i:04d}",
                                          provision_state="enroll", resource_class=prefix)
        return str(node.id)

    with ThreadPoolExecutor(4) as pool:
        created = set(pool.map(create, range(1000)))

    mine = list(conn.baremetal.nodes(resource_class=prefix, limit=100))
    assert {n.id for n in mine} == created and len(mine) == 1000

    with httpx.Client(base_url=aio.url,
                      headers={"X-OpenStack-Ironic-API-Version": "1.73"}) as http:
        first = http.get("/v1/nodes", params={"resource_class": prefix, "limit": 250,
                                               "sort_key": "name", "sort_dir": "desc"}).json()
        assert len(first["nodes"]) == 250
        assert first["nodes"][0]["name"] == f"{prefix}-0999"
        assert "marker=" in first["next"] and "sort_key=name" in first["next"]
        names: list[str] = []
        url: str | None = first["next"]
        names += [n["name"] for n in first["nodes"]]
        while url:
            page = http.get(url).json()
            names += [n["name"] for n in page["nodes"]]
            url = page.get("next")
        assert names == sorted(names, reverse=True) and len(names) == 1000

        fields = http.get("/v1/nodes", params={"resource_class": prefix, "limit": 5,
                                                "fields": "uuid,provision_state"}).json()
        assert all(set(n) == {"uuid", "provision_state"} for n in fields["nodes"])

    detailed = list(conn.baremetal.nodes(details=True, resource_class=prefix))
    assert len(detailed) == 1000 and all(n.driver == "fake-hardware" for n in detailed)


def test_allocation_by_resource_class_and_trait(aio: Server) -> None:
    conn = connect(aio)
    rc = f"rc-{uuid.uuid4().hex[:6]}"
    plain = conn.baremetal.create_node(driver="fake-hardware", resource_class=rc)
    gpu = conn.baremetal.create_node(driver="fake-hardware", resource_class=rc)
    conn.baremetal.add_node_trait(gpu, "CUSTOM_GPU")
    for node in (plain, gpu):
        conn.baremetal.set_node_provision_state(node, "manage", wait=True, timeout=30)
        conn.baremetal.set_node_provision_state(node, "provide", wait=True, timeout=30)

    allocation = conn.baremetal.create_allocation(resource_class=rc, traits=["CUSTOM_GPU"])
    allocation = conn.baremetal.wait_for_allocation(allocation, timeout=30)
    assert allocation.state == "active"
    assert allocation.node_id == gpu.id
    assert conn.baremetal.get_node(gpu.id).instance_id == allocation.id

    second = conn.baremetal.create_allocation(resource_class=rc, traits=["CUSTOM_GPU"])
    second = conn.baremetal.wait_for_allocation(second, timeout=30, ignore_error=True)
    assert second.state == "error" and second.last_error == (  # Ironic's text
        f"Failed to process allocation {second.id}: no suitable nodes have the requested "
        "traits CUSTOM_GPU.")

    conn.baremetal.delete_allocation(allocation)
    assert conn.baremetal.get_node(gpu.id).instance_id is None
