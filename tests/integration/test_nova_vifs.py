"""VIFs through a real enclume-aio, driven by openstacksdk as Nova's Ironic driver drives Ironic.

The deploy follows nova/virt/ironic/driver.py: ``prepare_for_spawn`` reserves the node
(``update_node(instance_id=...)``), ``prepare_networks_before_block_device_mapping`` attaches
each Neutron port (``_plug_vifs`` → ``attach_vif_to_node(retry_on_conflict=False)``, a 409
meaning "already attached"), ``spawn`` writes instance_info (``patch_node`` with the patcher's
fields), validates (``validate_node(required=None)``: deploy, power and storage must pass),
provisions ``active`` with a config drive and polls until active; ``destroy`` unprovisions
(``deleted``, polled until available) and ``unplug_vifs`` detaches each VIF (a 400 meaning
"not attached" is ignored).
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

import openstack
import pytest
from openstack import exceptions as sdk_exceptions

from tests.integration.test_baremetal_cli import Cli
from tests.support.aio import Server

MACS = (f"52:54:02:{i >> 16 & 0xff:02x}:{i >> 8 & 0xff:02x}:{i & 0xff:02x}"
        for i in itertools.count(1))
TIMEOUT = 30


@pytest.fixture(scope="module")
def conn(aio: Server) -> openstack.connection.Connection:
    return openstack.connection.Connection(auth_type="none", baremetal_endpoint_override=aio.url,
                                           baremetal_api_version="1")


def available_node(conn: openstack.connection.Connection, ports: int) -> Any:
    node = conn.baremetal.create_node(driver="fake-hardware", network_interface="flat",
                                      name=f"nova-{uuid.uuid4().hex[:8]}",
                                      resource_class="baremetal")
    for _ in range(ports):
        conn.baremetal.create_port(node_uuid=node.id, address=next(MACS))
    conn.baremetal.set_node_provision_state(node, "manage", wait=True, timeout=TIMEOUT)
    return conn.baremetal.set_node_provision_state(node, "provide", wait=True, timeout=TIMEOUT)


def wait_for(conn: openstack.connection.Connection, node_id: str, *states: str) -> Any:
    """Poll as Nova's looping calls do, until the node is in one of ``states``."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        node = conn.baremetal.get_node(node_id)
        if node.provision_state in states:
            return node
        assert node.provision_state != "deploy failed", node.last_error
        assert time.monotonic() < deadline, (node.provision_state, node.last_error)
        time.sleep(0.2)


def test_vif_life_cycle_and_errors(conn: openstack.connection.Connection, aio: Server) -> None:
    node = available_node(conn, ports=1)
    conn.baremetal.attach_vif_to_node(node, "vif-one")
    assert conn.baremetal.list_node_vifs(node) == ["vif-one"]
    [port] = conn.baremetal.ports(node=node.id, details=True)
    assert port.internal_info == {"tenant_vif_port_id": "vif-one"}
    with pytest.raises(sdk_exceptions.ConflictException, match="already attached"):
        conn.baremetal.attach_vif_to_node(node, "vif-one", retry_on_conflict=False)
    with pytest.raises(sdk_exceptions.BadRequestException,
                       match=r"Unable to attach VIF vif-two, not enough free physical ports\."):
        conn.baremetal.attach_vif_to_node(node, "vif-two")
    conn.baremetal.detach_vif_from_node(node, "vif-one")
    assert conn.baremetal.list_node_vifs(node) == []
    # openstacksdk reads Ironic's 400 as "already detached" (False), or raises it.
    assert conn.baremetal.detach_vif_from_node(node, "vif-one") is False
    with pytest.raises(sdk_exceptions.BadRequestException, match="not attached to it"):
        conn.baremetal.detach_vif_from_node(node, "vif-one", ignore_missing=False)

    old = conn.session.get(f"{aio.url}/v1/nodes/{node.id}/vifs", raise_exc=False,
                           headers={"X-OpenStack-Ironic-API-Version": "1.27"})
    assert old.status_code == 404


def test_a_deploy_as_novas_ironic_driver_does_it(conn: openstack.connection.Connection) -> None:
    node = available_node(conn, ports=2)
    instance = str(uuid.uuid4())
    network_info = [str(uuid.uuid4()), str(uuid.uuid4())]  # Neutron port IDs

    # prepare_for_spawn: _set_instance_id
    conn.baremetal.update_node(node, retry_on_conflict=False, instance_id=instance)
    # prepare_networks_before_block_device_mapping: _plug_vifs
    for vif in network_info:
        conn.baremetal.attach_vif_to_node(node.id, vif, retry_on_conflict=False)
    with pytest.raises(sdk_exceptions.ConflictException):  # Nova's _plug_vif returns on it
        conn.baremetal.attach_vif_to_node(node.id, network_info[0], retry_on_conflict=False)
    assert sorted(conn.baremetal.list_node_vifs(node.id)) == sorted(network_info)

    # spawn: _add_instance_info_to_node (the patcher's fields), validate, provision, wait
    patch = [{"op": "add", "path": f"/instance_info/{key}", "value": value} for key, value in {
        "image_source": str(uuid.uuid4()), "root_gb": "10", "swap_mb": "0",
        "display_name": "vm-1", "vcpus": "2", "nova_host_id": "compute-1",
        "memory_mb": "2048", "local_gb": "10", "project_id": "p", "project_name": "demo",
        "user_id": "u", "user_name": "alice", "flavor_name": "baremetal",
        "fixed_ips": [], "floating_ips": [], "capabilities": "{}"}.items()]
    conn.baremetal.patch_node(node, patch)
    checks = conn.baremetal.validate_node(node.id, required=None)
    assert all(checks[name].result for name in ("deploy", "power", "storage")), checks
    conn.baremetal.set_node_provision_state(node.id, "active", config_drive="H4sIAAAAAAA=")
    deployed = wait_for(conn, node.id, "active")
    assert deployed.instance_id == instance
    assert deployed.instance_info["display_name"] == "vm-1"
    assert sorted(conn.baremetal.list_node_vifs(node.id)) == sorted(network_info)

    # destroy: _unprovision, then unplug_vifs
    conn.baremetal.set_node_provision_state(node.id, "deleted")
    released = wait_for(conn, node.id, "available")
    assert released.instance_id is None and released.instance_info == {}
    for vif in network_info:
        assert conn.baremetal.detach_vif_from_node(node.id, vif) is True
    assert conn.baremetal.list_node_vifs(node.id) == []
    ports = list(conn.baremetal.ports(node=node.id, details=True))
    assert [p.internal_info.get("tenant_vif_port_id") for p in ports] == [None, None]


def test_the_baremetal_cli_attaches_lists_and_detaches(aio: Server) -> None:
    """python-ironicclient's ``baremetal node vif ...`` commands, as an operator runs them."""
    cli = Cli(aio)
    node = cli.json("node", "create", "--driver", "fake-hardware", "--network-interface",
                    "flat")["uuid"]
    cli.run("port", "create", next(MACS), "--node", node)
    cli.run("node", "vif", "attach", node, "vif-cli")
    assert cli.json("node", "vif", "list", node) == [{"id": "vif-cli"}]
    refused = cli.run("node", "vif", "attach", node, "vif-two", check=False)
    assert refused.returncode != 0
    assert "not enough free physical ports" in refused.stderr
    cli.run("node", "vif", "detach", node, "vif-cli")
    assert cli.json("node", "vif", "list", node) == []
