"""metalsmith, installed from PyPI in its own venv, deploys and undeploys through enclume-aio.

As a user runs it: ``metalsmith deploy`` picks an available node of the resource class through
an allocation, writes the image's instance_info and a config drive (the SSH key, the host
name), deploys and waits; ``metalsmith show``/``list`` read the instance; ``metalsmith
undeploy`` takes it back to ``available``. fake-hardware nodes, noauth (keystoneauth's
``none`` plugin with the API's URL as endpoint, as the clients' functional suites run), no
Neutron: no NICs are asked for.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.aio import running_aio
from tests.support.api_stack import wait_state
from tests.support.cached_venv import ensure_venv
from tests.support.client_functional import CLIENTS, prepare_workdir

pytestmark = [pytest.mark.integration, pytest.mark.slow]

VENV = Path(__file__).resolve().parents[2] / ".cache" / "metalsmith" / "venv"
IMAGE = "http://192.0.2.9/images/web.raw"  # fake deploy: never fetched
CHECKSUM = "ab" * 32
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM2S8i0D3m3tal5mithTestKeyOnly metalsmith@test"
HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}


@pytest.fixture(scope="module")
def metalsmith() -> Path:
    return ensure_venv(CLIENTS / "metalsmith-requirements.txt", VENV) / "bin" / "metalsmith"


def run(metalsmith: Path, workdir: Path, env: dict[str, str], *args: str) -> Any:
    done = subprocess.run([str(metalsmith), "--format", "json", *args], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"metalsmith {' '.join(args)}:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout) if done.stdout.strip() else None


def available_node(api: httpx.Client, name: str, resource_class: str) -> str:
    node = str(api.post("/v1/nodes", json={
        "driver": "fake-hardware", "name": name, "resource_class": resource_class,
        "properties": {"local_gb": 20}}).json()["uuid"])
    for target, state in (("manage", "manageable"), ("provide", "available")):
        assert api.put(f"/v1/nodes/{node}/states/provision",
                       json={"target": target}).status_code == 202
        wait_state(api, node, state)
    return node


def test_metalsmith_deploys_and_undeploys_a_node(metalsmith: Path, tmp_path: Path) -> None:
    with running_aio(tmp_path / "aio") as server, httpx.Client(
            base_url=server.url, headers=HEADERS, timeout=30) as api:
        env = prepare_workdir(tmp_path / "work", server.url)
        available_node(api, "other-1", "storage")
        node = available_node(api, "web-node", "web")
        deployed = run(metalsmith, tmp_path / "work", env, "deploy", "--image", IMAGE,
                       "--image-checksum", CHECKSUM, "--resource-class", "web",
                       "--hostname", "web-1", "--ssh-public-key", _key_file(tmp_path),
                       "--wait", "120")
        assert (deployed["node"]["id"], deployed["hostname"], deployed["state"]) == (
            node, "web-1", "active")
        shown = api.get(f"/v1/nodes/{node}").json()
        assert shown["provision_state"] == "active" and shown["last_error"] is None
        assert shown["instance_info"]["image_source"] == IMAGE
        assert shown["instance_info"]["configdrive"] == "******"  # the key and host name
        allocation = api.get(f"/v1/allocations/{shown['allocation_uuid']}").json()
        assert allocation["name"] == "web-1" and allocation["state"] == "active"
        assert allocation["resource_class"] == "web" and allocation["node_uuid"] == node

        listed = run(metalsmith, tmp_path / "work", env, "list")
        assert {name: i["state"] for name, i in listed.items()} == {"web-1": "active"}
        shown_again = run(metalsmith, tmp_path / "work", env, "show", "web-1")
        assert shown_again["web-1"]["node"]["id"] == node

        run(metalsmith, tmp_path / "work", env, "undeploy", "web-1", "--wait", "120")
        back = wait_state(api, node, "available")
        assert back["instance_info"] == {} and back["allocation_uuid"] is None
        assert api.get("/v1/allocations").json()["allocations"] == []
        assert "Traceback" not in server.log_text(), server.log_text()[-5000:]


def _key_file(tmp_path: Path) -> str:
    path = tmp_path / "id_ed25519.pub"
    path.write_text(SSH_KEY + "\n")
    return str(path)
