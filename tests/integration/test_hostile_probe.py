"""What a hostile probe of the API found (issue #15), against a real ``enclume-aio``: no 500 for
any shape of credentials or version header, concurrent PATCHes that lose nothing, and a known
set of secrets that never appears in a response or a log line of a scenario full of errors.
(The agent's lookup and heartbeat defences: tests/unit/test_agent_flow.py.)
"""

from __future__ import annotations

import base64
import http.client
import json
import select
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.conftest import USERS
from tests.support.aio import Server, free_port, running_aio
from tests.support.polling import eventually
from tests.support.redfish_emulator import RedfishEmulator, fake_systems

pytestmark = pytest.mark.integration

VERSION_HEADER = "X-OpenStack-Ironic-API-Version"
HEADERS = {VERSION_HEADER: "1.73"}
PARALLEL = 20
ROUNDS = 4


def basic(user: str | bytes, password: str | bytes = b"") -> dict[str, str]:
    raw = user if isinstance(user, bytes) else f"{user}:{password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


# -- authentication and headers: 4xx, never 500, and the connection stays usable -------------


def test_credentials_of_any_shape_are_401_and_the_connection_stays_usable(
        aio_basic: Server) -> None:
    user, password = next(iter(USERS.items()))
    shapes = {
        "password over bcrypt's 72 bytes": basic(f"{user}:{'p' * 73}"),
        "a password of 4 000 bytes": basic(f"{user}:{'é' * 2_000}"),
        "malformed base64": {"Authorization": "Basic !!!not-base64==="},
        "base64 of non-UTF-8 bytes": basic(b"\xff\xfe:\xfd\xfc"),
        "no colon": basic(b"admin-without-password"),
        "another scheme": {"Authorization": "Bearer abc"},
        "an empty header": {"Authorization": ""},
        "a user of 3 000 characters": basic(f"{'u' * 3_000}:{password}"),
    }
    with httpx.Client(base_url=aio_basic.url, headers=HEADERS, timeout=10) as client:
        for shape, headers in shapes.items():
            answer = client.get("/v1/nodes", headers=headers)
            assert answer.status_code == 401, (shape, answer.status_code, answer.text)
            assert answer.headers.get("connection") != "close", shape
        good = client.get("/v1/nodes", headers=basic(user, password))
        assert good.status_code == 200, good.text
    assert "Traceback" not in aio_basic.log_text()


def test_an_idle_connection_is_kept_longer_than_httpx_keeps_it(aio: Server) -> None:
    """The server must not close an idle connection before its clients let it go (httpx: 5 s),
    or a request sent just as it closes is reset (a CI run's "Connection reset by peer")."""
    idle_s = httpx.Limits().keepalive_expiry
    assert idle_s is not None
    connection = http.client.HTTPConnection(urlsplit(aio.url).netloc, timeout=10)
    try:
        statuses = []
        for pause in (idle_s + 1, 0):
            connection.request("GET", "/v1", headers=HEADERS)
            answer = connection.getresponse()
            answer.read()
            statuses.append(answer.status)
            time.sleep(pause)
            readable, _, _ = select.select([connection.sock], [], [], 0)
            assert not readable, "the server closed the idle connection"
        assert statuses == [200, 200]
    finally:
        connection.close()


@pytest.mark.parametrize("version", [
    "1." + "7" * 5000, "9" * 5000 + ".1", "1.\u0663", "\u0661.73", "1.73" + " " * 5000 + "x",
    "latest1"])
def test_a_version_header_of_any_shape_is_400_or_406(aio: Server, version: str) -> None:
    with httpx.Client(base_url=aio.url, timeout=10) as client:
        answer = client.get("/v1/nodes", headers={VERSION_HEADER: version.encode()})
        assert answer.status_code in (400, 406), (answer.status_code, answer.text[:300])
        assert len(answer.text) < 2000  # the header is not echoed whole
        assert client.get("/v1/nodes", headers=HEADERS).status_code == 200


def test_a_surrogate_heartbeat_token_is_refused_not_a_server_error(aio: Server) -> None:
    with httpx.Client(base_url=aio.url, headers=HEADERS, timeout=10) as client:
        node = client.post("/v1/nodes", json={"driver": "fake-hardware"}).json()
        body = b'{"callback_url": "http://127.0.0.1:9999", "agent_token": "\\ud800"}'
        answer = client.post(f"/v1/heartbeat/{node['uuid']}", content=body,
                             headers={"Content-Type": "application/json"})
        assert 400 <= answer.status_code < 500, answer.text
        looked_up = client.get("/v1/lookup", params={"node_uuid": node["uuid"]})
        assert looked_up.status_code == 400 and "addresses" in looked_up.text


# -- optimistic concurrency ---------------------------------------------------------------------


def _parallel_patches(client: httpx.Client, path: str) -> dict[str, int]:
    def add(key: str) -> tuple[str, int]:
        answer = client.patch(path, json=[{"op": "add", "path": f"/extra/{key}", "value": key}])
        assert answer.status_code in (200, 409), (answer.status_code, answer.text)
        return key, answer.status_code

    with ThreadPoolExecutor(PARALLEL) as pool:
        return dict(pool.map(add, [f"k{n}" for n in range(PARALLEL)]))


def test_parallel_node_port_and_allocation_patches_lose_no_accepted_write(aio: Server) -> None:
    limits = httpx.Limits(max_connections=PARALLEL)
    with httpx.Client(base_url=aio.url, headers=HEADERS, timeout=60, limits=limits) as client:
        for round_number in range(ROUNDS):  # a lost update needs an unlucky interleaving
            node = client.post("/v1/nodes", json={"driver": "fake-hardware"}).json()
            port = client.post("/v1/ports", json={
                "node_uuid": node["uuid"], "address": f"52:54:00:15:00:{round_number:02x}"}
            ).json()
            allocation = client.post("/v1/allocations", json={"resource_class": "none"}).json()
            for path in (f"/v1/nodes/{node['uuid']}", f"/v1/ports/{port['uuid']}",
                         f"/v1/allocations/{allocation['uuid']}"):
                outcome = _parallel_patches(client, path)
                accepted = {key for key, status in outcome.items() if status == 200}
                assert accepted, outcome  # concurrent writers merge: some succeed
                extra = client.get(path).json()["extra"]
                assert accepted <= set(extra), (path, sorted(accepted - set(extra)), outcome)
                assert set(extra) <= set(outcome)  # and nothing else appeared


# -- secrets never leave --------------------------------------------------------------------------

URL_PASSWORD = "url-pass@with-at-1"  # in redfish_address: masked up to the last "@"
NUMERIC_PASSWORD = 918273645  # a password given as a number
LIST_SECRET = "list-secret-77"  # an ipmi_password given as a list
DICT_SECRET = "dict-secret-55"  # a redfish_password given as an object
WRONG_PASSWORD = "wrong-Pw:9@x"  # a string password the BMC refuses
SECRETS = (URL_PASSWORD, "with-at-1", str(NUMERIC_PASSWORD), LIST_SECRET, DICT_SECRET,
           WRONG_PASSWORD)


@pytest.fixture(scope="module")
def debug_aio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"ENCLUME_LOG_LEVEL": "DEBUG", "ENCLUME_IPMI_TIMEOUT_S": "2",
           "ENCLUME_REDFISH_TIMEOUT_S": "5", "ENCLUME_ACCESS_LOG": "true"}
    with running_aio(tmp_path_factory.mktemp("aio-debug"), env=env) as server:
        yield server


@pytest.fixture(scope="module")
def bmc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedfishEmulator]:
    with RedfishEmulator(tmp_path_factory.mktemp("bmc"), fake_systems(1),
                         {"admin": "the-right-password"}) as emulator:
        yield emulator


def test_known_secrets_never_appear_in_a_response_or_a_log_line(
        debug_aio: Server, bmc: RedfishEmulator) -> None:
    host = bmc.address.split("://", 1)[1]
    closed = f"127.0.0.1:{free_port()}"
    nodes = {
        "url-password": {"driver": "redfish", "driver_info": {
            "redfish_address": f"http://admin:{URL_PASSWORD}@{host}",
            "redfish_password": WRONG_PASSWORD, "redfish_username": "admin"}},
        "numeric": {"driver": "redfish", "driver_info": {
            "redfish_address": bmc.address, "redfish_username": "admin",
            "redfish_password": NUMERIC_PASSWORD}},
        "dict": {"driver": "redfish", "driver_info": {
            "redfish_address": f"http://{closed}", "redfish_password": {"x": DICT_SECRET}}},
        "list": {"driver": "ipmi", "driver_info": {
            "ipmi_address": "127.0.0.1", "ipmi_port": int(closed.split(":")[1]),
            "ipmi_username": "admin", "ipmi_password": [LIST_SECRET]}},
        "ipmi-numeric": {"driver": "ipmi", "driver_info": {
            "ipmi_address": "127.0.0.1", "ipmi_port": int(closed.split(":")[1]),
            "ipmi_username": "admin", "ipmi_password": NUMERIC_PASSWORD}},
    }
    seen: list[str] = []

    def record(answer: httpx.Response, bmc_failure: str = "") -> httpx.Response:
        # A BMC that fails a synchronous call is a 500 with the driver's message, as in Ironic.
        assert answer.status_code < 500 or (bmc_failure and bmc_failure in answer.text), (
            answer.request.url, answer.text)
        seen.append(f"{answer.request.url} {answer.status_code} {answer.text}")
        return answer

    with httpx.Client(base_url=debug_aio.url, headers=HEADERS, timeout=60) as client:
        uuids = {}
        for label, body in nodes.items():
            created = record(client.post("/v1/nodes", json={**body, "name": f"leak-{label}"}))
            assert created.status_code == 201, created.text
            uuids[label] = created.json()["uuid"]
        for ident in uuids.values():
            record(client.get(f"/v1/nodes/{ident}/validate"))
            record(client.put(f"/v1/nodes/{ident}/states/power", json={"target": "power on"}))
            record(client.get(f"/v1/nodes/{ident}/management/boot_device"),
                   bmc_failure="Failed to get the boot device")
            # A PATCH that fails validation, quoting the secret-bearing document.
            record(client.patch(f"/v1/nodes/{ident}", json=[
                {"op": "add", "path": "/driver_info/redfish_verify_ca", "value": "maybe"}]))

        def settled(ident: str) -> dict[str, Any] | None:
            node: dict[str, Any] = client.get(f"/v1/nodes/{ident}").json()
            return node if node["target_power_state"] is None else None

        for label, ident in uuids.items():
            node = eventually(lambda ident=ident: settled(ident), timeout=60)
            if label in ("url-password", "numeric", "ipmi-numeric"):  # reached the BMC, failed
                assert node["last_error"], node
        for ident in uuids.values():
            record(client.get(f"/v1/nodes/{ident}"))
            record(client.get(f"/v1/nodes/{ident}/states"))
            record(client.get(f"/v1/nodes/{ident}/history"))
        record(client.get("/v1/nodes/detail"))
    time.sleep(0.5)  # the last log lines
    log = debug_aio.log_text()
    everything = "\n".join(seen) + "\n" + log
    # The scenario did provoke the errors it is about (else this test proves nothing).
    assert "IPMI" in everything and "Redfish" in everything, everything[-3000:]
    assert "http://admin:******@" in everything
    assert "HTTP request" in log or "sushy" in log  # sushy's debug lines are in the log
    for secret in SECRETS:
        leaks = [line for line in everything.splitlines() if secret in line]
        assert not leaks, (secret, leaks[:3])
    assert json.dumps(LIST_SECRET) not in everything
    assert "Traceback" not in "\n".join(seen)
