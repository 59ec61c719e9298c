"""The real ``enclume`` console script drives enclume-aio, one process per command.

Every command, every output format (JSON and YAML compared with what the API itself returns),
configuration from flags, environment and file, basic auth, API errors, and ``--wait`` over
several fake-hardware nodes (with a small fake delay so that the progress lines show real
transitions), a failure and a timeout. Each process costs ~0.5 s: tests group commands.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.api.versions import MAX_VERSION, format_version
from services.cli.enclume import selection
from services.cli.enclume.client import ApiClient
from services.cli.enclume.config import load_config
from services.cli.enclume.requests import put_state
from tests.integration.conftest import USERS
from tests.support.aio import Server, free_port, running_aio

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ENCLUME = Path(sys.executable).parent / "enclume"
COMMAND_TIMEOUT = 60.0
API_HEADERS = {"X-OpenStack-Ironic-API-Version": format_version(MAX_VERSION)}
SECRET = "Sup3r-secret-bmc-pw"
FAKE_DELAY = "[0.3, 0.3]"  # each fake deploy/clean/tear-down step, seconds


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@dataclass
class Run:
    argv: list[str]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        try:
            return json.loads(self.out)
        except json.JSONDecodeError:
            pytest.fail(f"enclume {' '.join(self.argv)} printed no JSON: {self.out!r} "
                        f"{self.err!r}")


class Enclume:
    """Runs the console script with a clean environment: no ENCLUME_* from outside, a HOME of
    its own (so no ~/.config/enclume/cli.yaml leaks in), ENCLUME_URL set to the server."""

    def __init__(self, server: Server, home: Path) -> None:
        if not ENCLUME.is_file():
            pytest.fail(f"{ENCLUME} is missing: run `.venv/bin/pip install --no-deps -e .`")
        self.server = server
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.base_env = {k: v for k, v in os.environ.items()
                         if not k.startswith("ENCLUME_") and k != "XDG_CONFIG_HOME"}
        self.base_env["HOME"] = str(home)
        self.base_env["COLUMNS"] = "200"

    def __call__(self, *argv: str, env: dict[str, str] | None = None, url: bool = True,
                 code: int | None = 0, stdin: str | None = None) -> Run:
        environment = dict(self.base_env)
        if url:
            environment["ENCLUME_URL"] = self.server.url
        environment.update(env or {})
        done = subprocess.run([str(ENCLUME), *argv], env=environment, capture_output=True,
                              text=True, timeout=COMMAND_TIMEOUT, input=stdin, check=False)
        result = Run(list(argv), done.returncode, done.stdout, done.stderr)
        if code is not None and done.returncode != code:
            pytest.fail(f"enclume {' '.join(argv)} exited {done.returncode}, expected {code}\n"
                        f"stdout: {done.stdout}\nstderr: {done.stderr}\n"
                        f"server log tail:\n{self.server.log_text()[-2000:]}")
        return result

    def parallel(self, *commands: tuple[str, ...]) -> list[Run]:
        """Independent commands at once (each must exit 0); results in the order given."""
        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(lambda command: self(*command), commands))

    def parallel_codes(self, *commands: tuple[int, tuple[str, ...]]) -> list[Run]:
        """Independent commands at once, each with the exit code it must give."""
        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(lambda item: self(*item[1], code=item[0]), commands))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Discovery on: POST /v1/continue_inspection is how an inventory reaches a known node
    # without a ramdisk (as a discovery agent posts it), for `node inventory`.
    env = {"ENCLUME_FAKE_DEPLOY_DELAY_S": FAKE_DELAY, "ENCLUME_BOOT_DISCOVERY": "true"}
    with running_aio(tmp_path_factory.mktemp("aio-cli"), env=env) as running:
        yield running


@pytest.fixture(scope="module")
def api(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=API_HEADERS, timeout=30) as client:
        yield client


@pytest.fixture
def enclume(server: Server, tmp_path: Path) -> Enclume:
    return Enclume(server, tmp_path / "home")


def make_node(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = api.post("/v1/nodes", json={"driver": "fake-hardware",
                                          "name": unique("n"), **fields})
    assert response.status_code == 201, response.text
    node: dict[str, Any] = response.json()
    return node


def node_of(api: httpx.Client, ident: str) -> dict[str, Any]:
    response = api.get(f"/v1/nodes/{ident}")
    assert response.status_code == 200, response.text
    node: dict[str, Any] = response.json()
    return node


def move(api: httpx.Client, ident: str, target: str, wanted: str) -> None:
    """Set up a node's state through the API (the CLI's verbs are tested separately)."""
    move_all(api, [ident], target, wanted)


def move_all(api: httpx.Client, idents: list[str], target: str, wanted: str) -> None:
    """``move`` for several nodes at once."""
    for ident in idents:
        response = api.put(f"/v1/nodes/{ident}/states/provision", json={"target": target})
        assert response.status_code == 202, response.text
    deadline = time.monotonic() + 20
    for ident in idents:
        while node_of(api, ident)["provision_state"] != wanted:
            assert time.monotonic() < deadline, node_of(api, ident)
            time.sleep(0.1)


def without_volatile(node: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k not in ("updated_at", "conductor")}


# -- nodes -----------------------------------------------------------------------------------


def test_node_create_show_list_set_unset_delete_in_every_format(
        enclume: Enclume, api: httpx.Client) -> None:
    name = unique("crud")
    created = enclume("node", "create", "--driver", "fake-hardware", "--name", name,
                      "--driver-info", f"ipmi_password={SECRET}", "--driver-info",
                      "ipmi_port=623", "--property", "cpus=4", "--property", "memory_mb=2048",
                      "--label", "room=B12", "--label", "rack=7", "--resource-class", "gold",
                      "--inspect-interface", "fake", "-f", "json").json()
    assert created["name"] == name and created["provision_state"] == "enroll"
    # driver_info values stay strings (a password of digits must not become a number),
    # others are JSON; labels live in extra["labels"]
    assert created["driver_info"] == {"ipmi_password": "******", "ipmi_port": "623"}
    assert created["properties"] == {"cpus": 4, "memory_mb": 2048}
    assert created["extra"] == {"labels": {"room": "B12", "rack": "7"}}
    assert created["inspect_interface"] == "fake"

    # show and list: JSON and YAML are exactly the API's documents; tables show the values;
    # filters by the API (state, driver, maintenance) and by label
    other = make_node(api, extra={"labels": {"room": "C3"}})
    api_doc = node_of(api, name)
    fields = "uuid,name,instance_uuid,power_state,provision_state,maintenance"
    api_list = api.get("/v1/nodes", params={"fields": fields}).json()["nodes"]
    (shown_json, shown_yaml, shown_table, shown_fields, listed, list_table, by_label,
     no_label, by_state, long, long_table, values, as_csv) = enclume.parallel(
        ("node", "show", name, "-f", "json"),
        ("node", "show", created["uuid"], "--format", "yaml"),
        ("node", "show", name),
        ("node", "show", name, "--fields", "uuid,properties", "-f", "json"),
        ("node", "list", "-f", "json"),
        ("node", "list"),
        ("node", "list", "--label", "room=B12", "--fields", "name,provision_state", "-f", "yaml"),
        ("node", "list", "--label", "room=B12", "--label", "rack=8", "-f", "json"),
        ("node", "list", "--provision-state", "enroll", "--driver", "fake-hardware",
         "--no-maintenance", "-f", "json"),
        ("node", "list", "--long", "--label", "room=B12", "-f", "json"),
        ("node", "list", "--long"),
        ("node", "list", "--label", "room=B12", "--fields", "name,provision_state", "-f",
         "value"),
        ("node", "show", name, "--fields", "name,provision_state", "-f", "csv"))
    assert without_volatile(shown_json.json()) == without_volatile(api_doc)
    assert without_volatile(yaml.safe_load(shown_yaml.out)) == without_volatile(api_doc)
    assert "provision_state" in shown_table.out and "enroll" in shown_table.out
    assert "gold" in shown_table.out
    assert "links" not in shown_table.out  # hyperlinks are left out of tables only
    assert shown_fields.json() == {"uuid": created["uuid"],
                                   "properties": {"cpus": 4, "memory_mb": 2048}}
    assert listed.json() == api_list
    assert {name, other["name"]} <= {n["name"] for n in listed.json()}
    assert "Provision State" in list_table.out
    assert name in list_table.out and other["name"] in list_table.out
    assert yaml.safe_load(by_label.out) == [{"name": name, "provision_state": "enroll"}]
    assert values.out == f"{name} enroll\n"
    assert as_csv.out == f'"Field","Value"\n"name","{name}"\n"provision_state","enroll"\n'
    assert no_label.json() == []
    assert {name, other["name"]} <= {n["name"] for n in by_state.json()}
    assert len(long.json()) == 1 and long.json()[0]["driver_info"]["ipmi_password"] == "******"
    assert "Target Provision State" in long_table.out

    # set and unset: JSON patches, the node shown afterwards
    changed = enclume("node", "set", name, "--property", "cpus=8", "--label", "room=B13",
                      "--description", "rack 7, slot 3", "--extra", "owner_team=infra",
                      "-f", "json").json()
    assert changed["properties"]["cpus"] == 8
    assert changed["extra"] == {"labels": {"room": "B13", "rack": "7"}, "owner_team": "infra"}
    assert changed["description"] == "rack 7, slot 3"
    unset = enclume("node", "unset", name, "--label", "rack", "--property", "memory_mb",
                    "--description", "--driver-info", "ipmi_port", "--inspect-interface",
                    "-f", "yaml").out
    after = yaml.safe_load(unset)
    assert after["extra"]["labels"] == {"room": "B13"} and after["description"] is None
    assert after["properties"] == {"cpus": 8}
    assert after["driver_info"] == {"ipmi_password": "******"}
    assert after["inspect_interface"] == "no-inspect"  # back to the hardware type's default

    deleted = enclume("node", "delete", name, other["uuid"])
    assert f"Deleted node {name}" in deleted.out
    assert api.get(f"/v1/nodes/{name}").status_code == 404

    assert SECRET not in json.dumps(created) and SECRET not in unset
    for run in (shown_json, shown_yaml, shown_table, long, long_table):
        assert SECRET not in run.out


# -- configuration -----------------------------------------------------------------------------


def test_configuration_flag_beats_environment_beats_file(
        enclume: Enclume, server: Server, api: httpx.Client, tmp_path: Path) -> None:
    node = make_node(api)
    dead = f"http://127.0.0.1:{free_port()}"
    config_dir = enclume.home / ".config" / "enclume"
    config_dir.mkdir(parents=True)
    (config_dir / "cli.yaml").write_text(f"url: {server.url}\nformat: yaml\n")

    # the default file alone: its URL and its format
    from_file = enclume("node", "show", node["name"], "--fields", "name", url=False)
    assert yaml.safe_load(from_file.out) == {"name": node["name"]}
    # the environment beats the file: the dead URL is used
    from_env = enclume("node", "list", env={"ENCLUME_URL": dead}, url=False, code=1)
    assert from_env.err.strip().startswith(f"Error: cannot reach {dead}")
    # a flag beats the environment: --url and -f win
    from_flag = enclume("--url", server.url, "-f", "json", "node", "show", node["name"],
                        "--fields", "name", env={"ENCLUME_URL": dead}, url=False)
    assert from_flag.json() == {"name": node["name"]}
    # ENCLUME_CLI_CONFIG names another file, --config beats it
    other = tmp_path / "other.yaml"
    other.write_text(f"url: {dead}\n")
    enclume("node", "list", env={"ENCLUME_CLI_CONFIG": str(other)}, url=False, code=1)
    good = tmp_path / "good.yaml"
    good.write_text(f"url: {server.url}\nformat: json\napi_version: '1.50'\n")
    old_version = enclume("--config", str(good), "node", "show", node["name"],
                          env={"ENCLUME_CLI_CONFIG": str(other)}, url=False).json()
    # api_version from the file is sent: lessee (1.65) is not in a 1.50 document
    assert old_version["uuid"] == node["uuid"] and "lessee" not in old_version
    assert "lessee" in enclume("--config", str(good), "node", "show", node["name"],
                               url=False, env={"ENCLUME_API_VERSION": "1.73"}).json()

    # a broken file is reported, not a traceback
    (config_dir / "cli.yaml").write_text("url: http://x\npasword: oops\n")
    broken = enclume("node", "list", url=False, code=1)
    assert "unknown setting(s) pasword" in broken.err and "Traceback" not in broken.err
    missing = enclume("--config", str(tmp_path / "nope.yaml"), "node", "list", code=1)
    assert "nope.yaml does not exist" in missing.err
    bad_format = enclume("node", "list", env={"ENCLUME_FORMAT": "xml"}, code=1)
    assert "format" in bad_format.err and "Traceback" not in bad_format.err


def test_basic_auth_and_the_password_is_never_shown(aio_basic: Server, tmp_path: Path) -> None:
    enclume = Enclume(aio_basic, tmp_path / "home")
    user, password = next(iter(USERS.items()))
    good = {"ENCLUME_USERNAME": user, "ENCLUME_PASSWORD": password}
    created = enclume("node", "create", "--driver", "fake-hardware", "--name", "authn",
                      "-f", "json", env=good).json()
    assert created["name"] == "authn"
    debug = enclume("--debug", "node", "list", env=good)
    assert "GET http://127.0.0.1" in debug.err and "-> 200" in debug.err
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    for text in (debug.out, debug.err):
        assert password not in text and token not in text

    wrong = enclume("--username", user, "--password", "wrong horse", "--debug", "node", "list",
                    code=1)
    assert wrong.err.strip().splitlines()[-1].startswith("Error: ")
    assert wrong.err.strip().endswith("(HTTP 401)") and wrong.out == ""
    assert "wrong horse" not in wrong.err
    anonymous = enclume("node", "show", "authn", code=1)
    assert anonymous.err.strip().endswith("(HTTP 401)")
    # a password in the URL is masked in errors too
    in_url = enclume("--url", f"http://{user}:{SECRET}@127.0.0.1:{free_port()}", "node",
                     "list", url=False, code=1)
    assert "cannot reach" in in_url.err and SECRET not in in_url.err


# -- errors --------------------------------------------------------------------------------------


def test_api_errors_are_shown_as_such(enclume: Enclume, api: httpx.Client) -> None:
    node = make_node(api)
    unknown = enclume("node", "show", "no-such-node", code=1)
    assert unknown.out == ""
    assert unknown.err.strip() == "Error: Node no-such-node could not be found. (HTTP 404)"
    bad_patch = enclume("node", "unset", node["name"], "--label", "room", code=1)
    assert bad_patch.err.startswith("Error: Can't remove ") and "(HTTP 400)" in bad_patch.err
    bad_value = enclume("node", "set", node["name"], "--name", "not a name!", code=1)
    assert "(HTTP 400)" in bad_value.err
    wrong_state = enclume("node", "deploy", node["name"], code=1)
    assert wrong_state.err.strip() == (
        f'Error: The requested action "active" can not be performed on node "{node["uuid"]}" '
        'while it is in state "enroll". (HTTP 400)')
    # one refused node does not stop the others; the exit code says something failed
    other = make_node(api)
    mixed = enclume("node", "manage", "no-such-node", other["name"], code=1)
    assert "Node no-such-node could not be found. (HTTP 404)" in mixed.err
    assert f"{other['name']}: manage requested" in mixed.out
    # usage errors: exit 2, before anything is sent
    assert "Missing argument" in enclume("node", "show", code=2).err
    bad_steps = enclume("node", "clean", node["name"], "--clean-steps", "[oops", code=2)
    assert "--clean-steps" in bad_steps.err and "invalid JSON" in bad_steps.err
    assert "--format" in enclume("node", "list", "-f", "xml", code=2).err
    assert "nothing to set" in enclume("node", "set", node["name"], code=2).err


# -- verbs and --wait ------------------------------------------------------------------------


def test_wait_for_several_nodes_through_their_life(enclume: Enclume, api: httpx.Client,
                                                   tmp_path: Path) -> None:
    names = [make_node(api)["name"] for _ in range(3)]
    managed = enclume("node", "manage", *names, "--wait", "--timeout", "30")
    provided = enclume("node", "provide", *names, "--wait", "--timeout", "30")
    deployed = enclume("node", "deploy", *names, "--wait", "--timeout", "30")
    rebuilt = enclume("node", "rebuild", names[0], "--wait", "--timeout", "30")
    undeployed = enclume("node", "undeploy", *names, "--wait", "--timeout", "30")
    for run, goal in ((managed, "manageable"), (provided, "available"),
                      (deployed, "active"), (undeployed, "available")):
        for name in names:
            assert f"done {name}: {goal} after" in run.out, run.out
        assert run.out.strip().splitlines()[-1] == "3 of 3 node(s) done"
    # the progress lines follow the real transitions (fake steps take 0.3 s)
    assert f"{names[1]}: cleaning -> available" in provided.out
    assert f"{names[2]}: deploying -> active" in deployed.out
    assert f"{names[0]}: deploying -> active" in rebuilt.out
    assert f"{names[0]}: deleting -> available" in undeployed.out \
        or f"{names[0]}: cleaning -> available" in undeployed.out
    assert all(node_of(api, name)["provision_state"] == "available" for name in names)

    # more than 10 nodes are followed through the node list (one request per poll)
    many = [make_node(api)["name"] for _ in range(12)]
    assert enclume("node", "manage", *many, "--wait").out.strip().splitlines()[-1] == \
        "12 of 12 node(s) done"
    assert all(node_of(api, name)["provision_state"] == "manageable" for name in many)

    # inspect, exactly as the lab test runs it, then manual cleaning with steps from a file
    node = make_node(api, inspect_interface="fake")
    move(api, node["name"], "manage", "manageable")
    inspected = enclume("--url", enclume.server.url, "node", "inspect", node["name"], "--wait",
                        url=False)
    assert f"done {node['name']}: manageable" in inspected.out
    assert node_of(api, node["name"])["inspection_finished_at"] is not None
    steps = tmp_path / "steps.yaml"
    steps.write_text("- interface: deploy\n  step: erase_devices_metadata\n")
    cleaned = enclume("node", "clean", node["name"], "--clean-steps", f"@{steps}", "--wait")
    assert f"{node['name']}: cleaning -> manageable" in cleaned.out
    assert f"done {node['name']}: manageable" in cleaned.out
    # without --wait: one line per node, at once
    assert enclume("node", "provide", node["name"]).out.strip() == \
        f"{node['name']}: provide requested"


def test_wait_reports_failure_and_timeout_and_history_shows_them(
        enclume: Enclume, api: httpx.Client, tmp_path: Path) -> None:
    # direct deploy: the node waits for an agent that never comes (wait call-back)
    node = make_node(api, deploy_interface="direct", automated_clean=False, instance_info={
        "image_source": "http://127.0.0.1:9/disk.raw",
        "image_checksum": "0123456789abcdef0123456789abcdef"})
    name = node["name"]
    move(api, name, "manage", "manageable")
    move(api, name, "provide", "available")

    # a failure while waiting: another operator aborts the deploy this one waits for
    with ThreadPoolExecutor(1) as pool:
        waiting_deploy = pool.submit(enclume, "node", "deploy", name, "--wait", code=1)
        deadline = time.monotonic() + 20
        while node_of(api, name)["provision_state"] != "wait call-back":
            assert time.monotonic() < deadline, node_of(api, name)
            time.sleep(0.1)
        enclume("node", "abort", name)
        failed = waiting_deploy.result(timeout=COMMAND_TIMEOUT)
    assert f"FAILED {name}: failed in deploy failed: " in failed.out
    assert "aborted" in failed.out
    assert failed.out.strip().endswith("0 of 1 node(s) done, 1 failed")

    iso = tmp_path / "configdrive.iso"
    iso.write_bytes(b"CD001" + os.urandom(2048))
    steps = [{"interface": "deploy", "step": "write_image", "priority": 80, "args": {}}]
    (tmp_path / "steps.json").write_text(json.dumps(steps))
    started = time.monotonic()
    timed_out = enclume("node", "deploy", name, "--config-drive", str(iso), "--deploy-steps",
                        f"@{tmp_path / 'steps.json'}", "--wait", "--timeout", "1.5", code=1)
    assert time.monotonic() - started < 10
    assert f"{name}: wait call-back -> active" in timed_out.out
    assert f"FAILED {name}: timed out after" in timed_out.out
    assert timed_out.out.strip().endswith("0 of 1 node(s) done, 1 timed out")
    waiting = node_of(api, name)
    assert waiting["provision_state"] == "wait call-back"
    assert waiting["driver_internal_info"]["user_deploy_steps"] == steps
    assert waiting["instance_info"]["configdrive"] == "******"  # sent, and masked

    # `node wait` follows a busy node without acting on it: still waiting for its agent
    still_waiting = enclume("node", "wait", name, "--timeout", "1", code=1)
    assert f"{name}: wait call-back -> active" in still_waiting.out
    assert f"FAILED {name}: timed out after" in still_waiting.out

    aborted = enclume("node", "abort", name, "--wait")
    assert f"done {name}: deploy failed" in aborted.out
    failed_wait, failed_state = enclume.parallel_codes(
        (1, ("node", "wait", name)), (0, ("node", "wait", name, "--state", "deploy failed")))
    assert f"FAILED {name}: failed in deploy failed: " in failed_wait.out
    assert failed_wait.out.strip().endswith("0 of 1 node(s) done, 1 failed")
    assert f"done {name}: deploy failed after" in failed_state.out

    # a config drive Enclume cannot use is refused at once, and the node is left as it was
    refused = enclume("node", "deploy", name, "--config-drive", '{"meta_data": {"a": 1}}',
                      "--wait", code=1)
    assert "A config drive given as JSON is not supported" in refused.err
    assert "(HTTP 400)" in refused.err
    assert node_of(api, name)["provision_state"] == "deploy failed"

    # history: the two aborts, oldest first, in every format
    events = enclume("node", "history", "list", name, "-f", "json").json()
    assert events == api.get(f"/v1/nodes/{name}/history").json()["history"]
    assert [e["severity"] for e in events] == ["ERROR", "ERROR"]
    assert all("aborted" in e["event"] for e in events), events
    long = enclume("node", "history", "list", name, "--long", "-f", "yaml").out
    assert len(yaml.safe_load(long)) == 2 and "event_type" in yaml.safe_load(long)[0]
    assert "Event Type" in enclume("node", "history", "list", name, "--long").out
    event = events[1]["uuid"]
    shown = enclume("node", "history", "show", name, event, "-f", "json").json()
    assert shown == api.get(f"/v1/nodes/{name}/history/{event}").json()
    assert shown["severity"] == "ERROR" and "aborted" in shown["event"]
    assert "aborted" in enclume("node", "history", "show", name, event).out


def test_power_boot_device_maintenance_validate(enclume: Enclume, api: httpx.Client) -> None:
    names = [make_node(api)["name"] for _ in range(2)]
    on = enclume("node", "power", "on", *names, "--power-timeout", "10", "--wait")
    assert on.out.strip().endswith("2 of 2 node(s) done")
    assert all(node_of(api, n)["power_state"] == "power on" for n in names)
    enclume("node", "power", "off", names[0], "--soft", "--wait")
    assert node_of(api, names[0])["power_state"] == "power off"
    assert enclume("node", "power", "reboot", names[1]).out.strip() == \
        f"{names[1]}: rebooting requested"

    enclume("node", "boot", "device", "set", names[0], "pxe", "--persistent")
    device, supported, table, validated = enclume.parallel(
        ("node", "boot", "device", "show", names[0], "-f", "json"),
        ("node", "boot", "device", "show", names[0], "--supported", "-f", "yaml"),
        ("node", "validate", names[0]),
        ("node", "validate", names[0], "-f", "json"))
    assert device.json() == {"boot_device": "pxe", "persistent": True}
    assert "pxe" in yaml.safe_load(supported.out)["supported_boot_devices"]
    assert "Interface" in table.out and "power" in table.out and "not supported" in table.out
    assert validated.json() == api.get(f"/v1/nodes/{names[0]}/validate").json()

    enclume("node", "maintenance", "set", *names, "--reason", "disk swap")
    in_maintenance = enclume("node", "list", "--maintenance", "--fields",
                             "name,maintenance_reason", "-f", "json").json()
    assert {"name": names[0], "maintenance_reason": "disk swap"} in in_maintenance
    enclume("node", "maintenance", "unset", *names)
    assert node_of(api, names[1])["maintenance"] is False


# -- ports ---------------------------------------------------------------------------------------


def test_port_commands(enclume: Enclume, api: httpx.Client) -> None:
    node = make_node(api)
    other = make_node(api)
    mac = "52:54:00:c1:1e:01"
    created = enclume("port", "create", mac.upper(), "--node", node["name"],
                      "--local-link-connection", "switch_id=aa:bb:cc:dd:ee:ff",
                      "--local-link-connection", "port_id=Gi0/1", "--physical-network",
                      "phys1", "--pxe-enabled", "--extra", "slot=2", "-f", "json").json()
    assert created["address"] == mac and created["node_uuid"] == node["uuid"]
    assert created["local_link_connection"] == {"switch_id": "aa:bb:cc:dd:ee:ff",
                                                "port_id": "Gi0/1"}
    assert created["extra"] == {"slot": 2}
    second = enclume("port", "create", "52:54:00:c1:1e:02", "--node", other["uuid"],
                     "--no-pxe-enabled", "-f", "yaml").out
    assert yaml.safe_load(second)["pxe_enabled"] is False

    fields = "uuid,address,node_uuid,pxe_enabled,physical_network"
    api_ports = api.get("/v1/ports", params={"fields": fields}).json()["ports"]
    listed, mine, mine_table, by_mac, by_uuid = enclume.parallel(
        ("port", "list", "-f", "json"),
        ("port", "list", "--node", node["name"], "--long", "-f", "json"),
        ("port", "list", "--node", node["name"]),
        ("port", "show", mac, "-f", "json"),
        ("port", "show", created["uuid"]))
    assert listed.json() == api_ports
    assert [p["uuid"] for p in mine.json()] == [created["uuid"]]
    assert "Physical Network" in mine_table.out and mac in mine_table.out
    assert by_mac.json() == api.get(f"/v1/ports/{created['uuid']}").json()
    assert "phys1" in by_uuid.out

    moved = enclume("port", "set", mac, "--node", other["name"], "--extra", "slot=3",
                    "--no-pxe-enabled", "-f", "json").json()
    assert moved["node_uuid"] == other["uuid"] and moved["extra"] == {"slot": 3}
    unset = enclume("port", "unset", created["uuid"], "--physical-network", "--extra", "slot",
                    "--local-link-connection", "port_id", "-f", "json").json()
    assert unset["physical_network"] is None and unset["extra"] == {}
    assert unset["local_link_connection"] == {"switch_id": "aa:bb:cc:dd:ee:ff"}

    assert enclume("port", "delete", mac).out.strip() == f"Deleted port {mac}"
    gone = enclume("port", "delete", mac, code=1)
    assert gone.err.strip() == f"Error: no port has the MAC address {mac}"
    assert enclume("port", "show", created["uuid"], code=1).err.strip().endswith("(HTTP 404)")


# -- the history API -----------------------------------------------------------------------------


def test_history_api_shape_pages_and_versions(enclume: Enclume, api: httpx.Client) -> None:
    node = make_node(api, deploy_interface="direct", automated_clean=False, instance_info={
        "image_source": "http://127.0.0.1:9/disk.raw",
        "image_checksum": "0123456789abcdef0123456789abcdef"})
    move(api, node["uuid"], "manage", "manageable")
    move(api, node["uuid"], "provide", "available")
    for _ in range(3):  # deploy, wait for the agent, abort: one ERROR event each time
        move(api, node["uuid"], "active", "wait call-back")
        move(api, node["uuid"], "abort", "deploy failed")
    events = api.get(f"/v1/nodes/{node['name']}/history").json()["history"]
    assert len(events) == 3, events
    assert set(events[0]) == {"uuid", "created_at", "severity", "event", "links"}
    assert events[0]["created_at"].endswith("+00:00")
    assert events[0]["links"][0]["href"].endswith(
        f"/v1/nodes/{node['uuid']}/history/{events[0]['uuid']}")
    detail = api.get(f"/v1/nodes/{node['uuid']}/history", params={"detail": "true"}).json()
    assert set(detail["history"][0]) == {"uuid", "created_at", "user", "severity", "event",
                                         "event_type", "conductor", "links", "project",
                                         "state", "target_provision_state",
                                         "duration_seconds"}  # the last four: 1.113, 1.115
    first = api.get(f"/v1/nodes/{node['uuid']}/history", params={"limit": 1}).json()
    assert [e["uuid"] for e in first["history"]] == [events[0]["uuid"]]
    following = httpx.get(first["next"], headers=API_HEADERS).json()
    assert following["history"][0]["uuid"] == events[1]["uuid"]
    # the CLI follows the pages itself
    assert len(enclume("node", "history", "list", node["name"], "-f", "json").json()) == \
        len(events)

    assert api.get(f"/v1/nodes/{node['uuid']}/history/{uuid.uuid4()}").status_code == 404
    assert api.get("/v1/nodes/nope/history").status_code == 404
    assert api.get(f"/v1/nodes/{node['uuid']}/history",
                   params={"fields": "uuid"}).status_code == 400
    old = api.get(f"/v1/nodes/{node['uuid']}/history",
                  headers={"X-OpenStack-Ironic-API-Version": "1.77"})
    assert old.status_code == 404 and "1.78" in old.text



# -- selecting nodes by label, node wait, node inventory ------------------------------------


def selected_line(run: Run) -> str:
    return next(line for line in run.err.splitlines() if line.startswith("Selected "))


def test_a_room_selected_by_label_is_deployed_rebuilt_undeployed_and_deleted(
        enclume: Enclume, api: httpx.Client) -> None:
    room = unique("room")
    # named in the order selections list them (by name)
    a, b, c = (make_node(api, automated_clean=False, name=f"{room}-pc{number}",
                         extra={"labels": {"room": room, "rack": rack}})["name"]
               for number, rack in ((1, "1"), (2, "1"), (3, "2")))
    other = make_node(api, extra={"labels": {"room": unique("room")}})["name"]
    move_all(api, [a, b, c, other], "manage", "manageable")
    move(api, other, "provide", "available")
    by_room = ("--label", f"room={room}")

    provided = enclume("node", "provide", *by_room, "--provision-state", "manageable", "--wait")
    assert selected_line(provided) == \
        f"Selected 3 node(s) with --label room={room} --provision-state manageable: {a}, {b}, {c}"
    assert provided.out.strip().endswith("3 of 3 node(s) done")

    image = {"image_source": "http://127.0.0.1:9/b12.raw",
             "image_checksum": "0123456789abcdef0123456789abcdef"}
    changed = enclume("node", "set", "--match-label", f"room={room}", "--provision-state",
                      "available", *(f"--instance-info={k}={v}" for k, v in image.items()),
                      "-f", "json")
    assert [node["name"] for node in changed.json()] == [a, b, c]
    assert all(node["instance_info"] == image for node in changed.json())
    assert f"Selected 3 node(s) with --match-label room={room} --provision-state available" \
        in changed.err

    deployed = enclume("node", "deploy", *by_room, "--provision-state", "available", "--wait")
    for name in (a, b, c):
        assert f"done {name}: active after" in deployed.out
    assert deployed.out.strip().endswith("3 of 3 node(s) done")
    # rebuild without --wait, then `node wait` follows them until none is busy
    rebuilt = enclume("node", "rebuild", *by_room, "--label", "rack=1")
    assert rebuilt.out.splitlines() == [f"{a}: rebuild requested", f"{b}: rebuild requested"]
    waited = enclume("node", "wait", *by_room)
    for name in (a, b, c):
        assert f"done {name}: active after" in waited.out
    assert waited.out.strip().endswith("3 of 3 node(s) done")

    undeployed = enclume("node", "undeploy", *by_room, "--wait")
    assert undeployed.out.strip().endswith("3 of 3 node(s) done")
    assert {node_of(api, n)["provision_state"] for n in (a, b, c)} == {"available"}
    no_match, both, neither, no_yes, wrong_state, settled_elsewhere, maintenance = \
        enclume.parallel_codes(
        (1, ("node", "deploy", "--label", "room=nowhere", "--wait")),
        (2, ("node", "deploy", a, *by_room)),
        (2, ("node", "power", "on")),
        (2, ("node", "delete", *by_room)),
        (1, ("node", "power", "off", *by_room, "--provision-state", "active")),
        (1, ("node", "wait", a, "--state", "active", "--timeout", "10")),
        (0, ("node", "maintenance", "set", *by_room, "--label", "rack=2", "--reason", "swap")))
    assert no_match.err.strip() == "Error: no node matches --label room=nowhere"
    assert "not both" in both.err and "--label KEY=VALUE" in neither.err
    assert "--yes" in no_yes.err
    assert wrong_state.err.strip() == \
        f"Error: no node matches --label room={room} --provision-state active"
    assert f"FAILED {a}: failed in available" in settled_elsewhere.out
    assert "Selected" not in both.err + neither.err + no_yes.err  # refused before any request
    assert api.get(f"/v1/nodes/{a}").status_code == 200
    assert maintenance.out.strip() == f"{c}: maintenance on"
    assert [node_of(api, n)["maintenance_reason"] for n in (a, b, c)] == [None, None, "swap"]
    # the node of the other room was left alone all along
    untouched = node_of(api, other)
    assert untouched["provision_state"] == "available" and untouched["instance_info"] == {}
    assert untouched["maintenance"] is False

    deleted = enclume("node", "delete", *by_room, "--yes")
    assert deleted.out.splitlines() == [f"Deleted node {n}" for n in (a, b, c)]
    assert all(api.get(f"/v1/nodes/{n}").status_code == 404 for n in (a, b, c))
    assert api.get(f"/v1/nodes/{other}").status_code == 200


def test_selected_nodes_are_acted_on_by_uuid_so_a_rename_cannot_redirect(
        server: Server, api: httpx.Client, capsys: pytest.CaptureFixture[str]) -> None:
    room = unique("room")
    first, second = sorted((make_node(api, extra={"labels": {"room": room}}) for _ in range(2)),
                           key=lambda node: node["name"])  # selected in name order
    with ApiClient(load_config(url=server.url, api_version="1.73")) as client:
        chosen = selection.select(client, selection.selector([f"room={room}"], None))
        assert chosen == [first["uuid"], second["uuid"]]
        assert selection.describe_selection(selection.selector([f"room={room}"], None),
                                            chosen).endswith(
            f": {first['name']}, {second['name']}")
        # Between selecting and acting, the first node is renamed and its old name taken by
        # a node of another room.
        renamed = unique("renamed")
        assert api.patch(f"/v1/nodes/{first['uuid']}", json=[
            {"op": "replace", "path": "/name", "value": renamed}]).status_code == 200
        impostor = make_node(api, name=first["name"], extra={"labels": {"room": "elsewhere"}})
        accepted = put_state(client, chosen, "provision", {"target": "manage"},
                             "manage requested")
    assert accepted == [first["uuid"], second["uuid"]]
    assert capsys.readouterr().out.splitlines() == [
        f"{first['name']}: manage requested", f"{second['name']}: manage requested"]
    deadline = time.monotonic() + 20
    for ident in (renamed, second["name"]):
        while node_of(api, ident)["provision_state"] != "manageable":
            assert time.monotonic() < deadline, node_of(api, ident)
            time.sleep(0.1)
    assert node_of(api, impostor["uuid"])["provision_state"] == "enroll"


INVENTORY_MAC = "52:54:00:e1:00:01"
INVENTORY = {
    "cpu": {"count": 4, "architecture": "x86_64", "model_name": "QEMU Virtual CPU"},
    "memory": {"total_bytes": 8 * 1024**3, "physical_mb": 8192},
    "disks": [{"name": "/dev/sda", "size": 256 * 1024**3, "model": "QEMU HARDDISK"},
              {"name": "/dev/sdb", "size": 512 * 1024**2}],
    "interfaces": [{"name": "enp1s0", "mac_address": INVENTORY_MAC,
                    "ipv4_address": "10.12.0.31"}],
    "system_vendor": {"manufacturer": "QEMU", "product_name": "Standard PC",
                      "serial_number": "B12-31"},
    "boot": {"current_boot_mode": "uefi", "pxe_interface": INVENTORY_MAC},
}


def test_node_inventory_as_inspection_stored_it(enclume: Enclume, api: httpx.Client) -> None:
    """The inventory arrives as a discovery agent posts it (the module's server runs with
    discovery on): the machine is enrolled and its inventory stored as an inspection would."""
    posted = httpx.post(f"{enclume.server.url}/v1/continue_inspection",
                        json={"inventory": INVENTORY})
    assert posted.status_code == 202, posted.text
    assert posted.json()["created"] is True
    named = api.patch(f"/v1/nodes/{posted.json()['uuid']}",
                      json=[{"op": "add", "path": "/name", "value": unique("n")}])
    assert named.status_code == 200, named.text
    node = node_of(api, posted.json()["uuid"])
    bare = make_node(api)

    table, as_json, as_yaml, none_yet, unknown = enclume.parallel_codes(
        (0, ("node", "inventory", node["name"])),
        (0, ("node", "inventory", node["name"], "-f", "json")),
        (0, ("node", "inventory", node["uuid"], "-f", "yaml")),
        (1, ("node", "inventory", bare["name"])),
        (1, ("node", "inventory", "no-such-node")))
    served = api.get(f"/v1/nodes/{node['uuid']}/inventory").json()
    assert as_json.json() == served and yaml.safe_load(as_yaml.out) == served
    assert served["inventory"]["disks"] == INVENTORY["disks"]
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip()
            for line in table.out.splitlines() if line.startswith("│")}
    assert rows == {
        "cpus": "4 x86_64 (QEMU Virtual CPU)", "memory": "8192 MiB",
        "disks": "/dev/sda 256 GiB QEMU HARDDISK; /dev/sdb 512 MiB",
        "interfaces": f"enp1s0 {INVENTORY_MAC} 10.12.0.31",
        "system": "QEMU Standard PC serial B12-31", "boot": f"uefi from {INVENTORY_MAC}"}
    assert none_yet.err.strip() == (
        f"Error: Node {bare['uuid']} inventory could not be found. It has none until it is "
        f"inspected (enclume node inspect {bare['name']}) or discovered. (HTTP 404)")
    assert unknown.err.strip() == "Error: Node no-such-node could not be found. (HTTP 404)"
