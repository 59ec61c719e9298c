"""``GET /metrics`` of enclume-aio after real traffic: a fake-hardware deploy, a lock conflict,
power syncs, refused heartbeats and 100 lookups of different nodes; the values moved and the
labels stay bounded (route templates, never ids). Also who may read it, with http_basic, and
the conductor's RPC port with ENCLUME_METRICS_REQUIRE_AUTH."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.membership import Membership
from services.conductor.manager import ConductorManager
from services.conductor.rpc import server_app
from services.drivers.registry import Drivers
from tests.integration.test_bad_input import (
    HEADERS,
    assert_error,
    make_available,
    provision,
    wait_for_state,
)
from tests.support.aio import Server, running_aio, write_htpasswd
from tests.support.asgi import serving
from tests.support.metrics import Scrape, parse, scrape

pytestmark = pytest.mark.integration

USER, PASSWORD = "admin", "metrics-test-password"
NODE_ROUTE = "/v1/nodes/{ident}"
REQUESTS = "enclume_http_request_duration_seconds"


@pytest.fixture(scope="module")
def aio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """http_basic, slow fake deploys (a lock held long enough to conflict), syncs every 0.5 s."""
    directory: Path = tmp_path_factory.mktemp("aio-metrics")
    htpasswd = write_htpasswd(directory / "htpasswd", {USER: PASSWORD})
    env = {"ENCLUME_AUTH_STRATEGY": "http_basic", "ENCLUME_HTPASSWD_FILE": str(htpasswd),
           "ENCLUME_FAKE_DEPLOY_DELAY_S": "[1.0, 1.0]",
           "ENCLUME_PERIODIC_INTERVAL_S": "0.5", "ENCLUME_POWER_SYNC_INTERVAL_S": "0.5"}
    with running_aio(directory / "data", env=env) as server:
        yield server


@pytest.fixture(scope="module")
def api(aio: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=aio.url, headers=HEADERS, auth=(USER, PASSWORD),
                      timeout=10) as client:
        yield client


def test_a_deploy_and_its_traffic_move_the_metrics_with_bounded_labels(
        aio: Server, api: httpx.Client) -> None:
    before = scrape(aio.url)  # no credentials: open by default
    node = make_available(api)
    provision(api, node["uuid"], "active", None)
    assert api.get(f"/v1/nodes/{node['uuid']}").json()["provision_state"] == "deploying"
    locked = api.patch(f"/v1/nodes/{node['uuid']}",
                       json=[{"op": "add", "path": "/extra/during", "value": 1}])
    assert_error(locked, 409, "is locked by host")
    wait_for_state(api, node["uuid"], "active")
    strangers = [str(uuid.uuid4()) for _ in range(100)]
    for ident in strangers:
        assert api.get(f"/v1/nodes/{ident}").status_code == 404
    heartbeat = {"callback_url": "http://127.0.0.1:9999", "agent_version": "10.0.0"}
    for ident in strangers[:10]:
        assert httpx.post(f"{aio.url}/v1/heartbeat/{ident}", json=heartbeat,
                          headers=HEADERS).status_code == 404
    after = eventually_synced(aio.url, before)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    transitions = "enclume_provision_transitions_total"
    assert moved(transitions, from_state="enroll", to_state="verifying") == 1
    assert moved(transitions, from_state="available", to_state="deploying") == 1
    assert moved(transitions, to_state="active") == 1
    durations = "enclume_provision_state_duration_seconds"
    assert moved(durations + "_count", state="deploying") == 1
    assert moved(durations + "_sum", state="deploying") >= 1.0  # the fake deploy's 1 s
    assert moved("enclume_node_lock_attempts_total", outcome="conflict") >= 1
    # manage, provide, deploy
    assert moved("enclume_node_lock_attempts_total", outcome="taken") >= 3
    assert moved("enclume_agent_heartbeats_total", outcome="refused") == 10
    assert moved(REQUESTS + "_count", method="GET", route=NODE_ROUTE, status="4xx") == 100
    assert moved(REQUESTS + "_count", method="PATCH", route=NODE_ROUTE, status="4xx") == 1
    assert moved(REQUESTS + "_count", method="POST", route="/v1/heartbeat/{node_ident}",
                 status="4xx") == 10
    # Bounded: route templates only, never a node's UUID or name.
    labels = {value for sample in after.samples for value in sample.labels.values()}
    assert not labels & {node["uuid"], node["name"], *strangers}
    routes = after.label_values(REQUESTS + "_count", "route")
    assert all(not any(ident in route for ident in strangers) for route in routes)
    assert len(routes) < 20, routes


def eventually_synced(url: str, before: Scrape, timeout: float = 15.0) -> Scrape:
    """A scrape taken once a power sync cycle has run since ``before``."""
    deadline = time.monotonic() + timeout
    cycles = "enclume_power_sync_cycle_seconds_count"
    while True:
        after = scrape(url)
        if after.value(cycles) > before.value(cycles) \
                and after.value("enclume_power_sync_nodes_total") > 0:
            return after
        assert time.monotonic() < deadline, "no power sync cycle was counted"
        time.sleep(0.2)


def test_with_require_auth_the_api_asks_for_its_credentials(tmp_path: Path) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {USER: PASSWORD})
    env = {"ENCLUME_AUTH_STRATEGY": "http_basic", "ENCLUME_HTPASSWD_FILE": str(htpasswd),
           "ENCLUME_METRICS_REQUIRE_AUTH": "true"}
    with running_aio(tmp_path / "data", env=env) as server:
        assert httpx.get(f"{server.url}/metrics").status_code == 401
        assert httpx.get(f"{server.url}/metrics", auth=(USER, "wrong")).status_code == 401
        scraped = scrape(server.url, auth=(USER, PASSWORD))
        assert scraped.value(REQUESTS + "_count", route="/metrics") >= 1


def test_the_conductor_serves_its_metrics_on_its_rpc_port(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'enclume.sqlite'}"
    upgrade_schema(url)
    db = Database(url)
    secret = "rpc-secret-for-metrics"
    for require_auth in (False, True):
        settings = Settings(process={"data_dir": tmp_path},
                            metrics={"require_auth": require_auth})
        manager = ConductorManager(db, settings, Drivers(settings), Membership(db, settings))
        with serving(server_app(manager, secret)) as base:
            open_answer = httpx.get(f"{base}/metrics")
            given = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {secret}"})
        assert given.status_code == 200
        assert open_answer.status_code == (401 if require_auth else 200)
        assert "enclume_power_sync_cycle_seconds_count" in parse(given.text).names()
    db.engine.dispose()
