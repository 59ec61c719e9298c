"""compose.yaml, the cluster topology, as docker-compose reads it (no Docker engine needed).

``docker-compose config`` validates the file and prints it resolved (anchors merged, paths made
absolute); the tests read that output, so they check what Compose would run, not the YAML text.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "compose.yaml"
SECRETS_DIR = "/run/secrets/"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PASSWD|CREDENTIAL|KEY", re.IGNORECASE)
Service = dict[str, Any]


def docker_compose(*args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("docker-compose")
    if executable is None:
        pytest.fail("docker-compose is not installed; `make test` installs it (its `deps` step "
                    "installs the Debian package docker-compose)", pytrace=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    return subprocess.run([executable, "-f", str(COMPOSE_FILE), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    result = docker_compose("config")
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    loaded: dict[str, Any] = yaml.safe_load(result.stdout)
    return loaded


@pytest.fixture(scope="module")
def services(config: dict[str, Any]) -> dict[str, Service]:
    found: dict[str, Service] = config["services"]
    return found


def program(service: Service) -> str | None:
    command = service.get("command")
    if isinstance(command, str):
        command = command.split()
    return command[0] if command else None


def enclume(services: dict[str, Service], name: str | None = None) -> dict[str, Service]:
    """The services running an Enclume program (``name``, or any)."""
    return {key: service for key, service in services.items()
            if (program(service) or "").startswith("enclume-")
            and (name is None or program(service) == name)}


def env(service: Service) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


def mounted_secrets(service: Service) -> set[str]:
    """The paths at which the service's compose secrets appear."""
    paths = set()
    for secret in service.get("secrets") or []:
        if isinstance(secret, str):
            paths.add(SECRETS_DIR + secret)
        else:
            target = secret.get("target") or secret["source"]
            paths.add(target if target.startswith("/") else SECRETS_DIR + target)
    return paths


def healthcheck_command(service: Service) -> str:
    test = (service.get("healthcheck") or {}).get("test") or []
    return test if isinstance(test, str) else " ".join(test)


def test_compose_file_is_valid() -> None:
    result = docker_compose("config", "-q")
    assert result.returncode == 0, f"docker-compose config -q failed:\n{result.stderr}"


def test_postgres_has_a_health_check_and_a_named_volume(config: dict[str, Any],
                                                        services: dict[str, Service]) -> None:
    postgres = [s for s in services.values() if s.get("image", "").startswith("postgres:15")]
    assert len(postgres) == 1
    assert "pg_isready" in healthcheck_command(postgres[0])
    volume_names = {str(v).split(":")[0] if isinstance(v, str) else v.get("source")
                    for v in postgres[0].get("volumes", [])}
    assert volume_names & set(config.get("volumes") or {}), "PostgreSQL data is not in a volume"


def test_topology(services: dict[str, Service]) -> None:
    counts = Counter(program(s) for s in enclume(services).values())
    assert counts == {"enclume-api": 2, "enclume-conductor": 3, "enclume-dbsync": 1,
                      "enclume-boot": 1}


def test_every_long_running_service_has_a_health_check(services: dict[str, Service]) -> None:
    for name, service in services.items():
        if program(service) == "enclume-dbsync":
            assert str(service.get("restart", "no")) == "no", "dbsync runs once"
            continue
        assert healthcheck_command(service), f"{name} has no health check"
    for name, service in enclume(services, "enclume-api").items():
        port = env(service).get("ENCLUME_API_PORT", "6385")
        assert f"127.0.0.1:{port}/" in healthcheck_command(service), name
    for name, service in enclume(services, "enclume-conductor").items():
        port = env(service).get("ENCLUME_RPC_PORT", "6388")
        assert f"127.0.0.1:{port}/health" in healthcheck_command(service), name
    for name, service in enclume(services, "enclume-boot").items():
        # /health answers 503 while dnsmasq is down, on the address the HTTP server listens on.
        port = env(service).get("ENCLUME_BOOT_HTTP_PORT", "8080")
        command = healthcheck_command(service)
        assert f":{port}/health" in command and "ENCLUME_BOOT_HTTP_HOST" in command, name


def test_services_start_in_order(services: dict[str, Service]) -> None:
    postgres = next(n for n, s in services.items() if s.get("image", "").startswith("postgres"))
    dbsync = next(iter(enclume(services, "enclume-dbsync")))
    assert services[dbsync]["depends_on"][postgres]["condition"] == "service_healthy"
    for name in [*enclume(services, "enclume-api"), *enclume(services, "enclume-conductor"),
                 *enclume(services, "enclume-boot")]:
        depends_on = services[name]["depends_on"]
        assert depends_on[postgres]["condition"] == "service_healthy", name
        assert depends_on[dbsync]["condition"] == "service_completed_successfully", name


def test_entry_point_runs_the_command(services: dict[str, Service]) -> None:
    for name, service in enclume(services).items():
        entrypoint = " ".join(service.get("entrypoint") or [])
        assert re.search(r'exec "\$\$?@"', entrypoint), f"{name} does not run its command"


def test_conductors_are_distinct_and_reachable(services: dict[str, Service]) -> None:
    conductors = enclume(services, "enclume-conductor")
    hostnames = [env(s).get("ENCLUME_CONDUCTOR_HOSTNAME") for s in conductors.values()]
    addresses = [env(s).get("ENCLUME_RPC_ADDRESS") for s in conductors.values()]
    assert None not in hostnames and len(set(hostnames)) == len(conductors)
    assert None not in addresses and len(set(addresses)) == len(conductors)
    for name, service in conductors.items():
        variables = env(service)
        assert variables.get("ENCLUME_RPC_HOST") == "0.0.0.0", name
        port = variables.get("ENCLUME_RPC_PORT", "6388")
        # The APIs reach a conductor by its service name on the compose network.
        assert variables["ENCLUME_RPC_ADDRESS"] == f"http://{name}:{port}", name


def test_apis_listen_off_loopback_with_http_basic(services: dict[str, Service]) -> None:
    apis = enclume(services, "enclume-api")
    published = []
    for name, service in apis.items():
        variables = env(service)
        assert variables.get("ENCLUME_API_HOST") == "0.0.0.0", name
        assert variables.get("ENCLUME_AUTH_STRATEGY") == "http_basic", name
        assert variables.get("ENCLUME_HTPASSWD_FILE") in mounted_secrets(service), name
        published += [str(p["published"]) if isinstance(p, dict) else str(p).split(":")[-2]
                      for p in service.get("ports", [])]
    assert len(published) == len(set(published)) == len(apis)


def published_port(port: str | dict[str, Any]) -> tuple[str, str, str]:
    """(host address, published port, container port) of a ``ports`` entry."""
    if isinstance(port, dict):
        return (str(port.get("host_ip", "0.0.0.0")), str(port["published"]),
                str(port["target"]))
    parts = port.split("/")[0].split(":")
    return ("0.0.0.0", *parts) if len(parts) == 2 else (parts[0], parts[1], parts[2])


def on_host_network(service: Service) -> bool:
    return service.get("network_mode") == "host"


def test_one_shared_database(services: dict[str, Service]) -> None:
    urls = {env(s).get("ENCLUME_DATABASE_URL") for s in enclume(services).values()
            if not on_host_network(s)}
    assert len(urls) == 1
    url = urls.pop()
    assert url and url.startswith("postgresql+psycopg://")
    database = urlsplit(url)
    assert database.hostname in services, "the database host is not a compose service"
    # Services in the host's network namespace reach the same database through the port its
    # service publishes on the host's loopback.
    published = {published_port(p) for p in services[database.hostname].get("ports", [])}
    for name, service in enclume(services).items():
        if on_host_network(service):
            other = urlsplit(env(service)["ENCLUME_DATABASE_URL"])
            assert (other.scheme, other.username, other.path) == (
                database.scheme, database.username, database.path), name
            assert ("127.0.0.1", str(other.port), str(database.port or 5432)) in published, name


def test_boot_service_serves_the_provisioning_network(services: dict[str, Service]) -> None:
    boots = enclume(services, "enclume-boot")
    assert len(boots) == 1
    boot = next(iter(boots.values()))
    variables = env(boot)
    assert on_host_network(boot), "DHCP needs the provisioning network itself"
    assert {"NET_ADMIN", "NET_RAW"} <= set(boot.get("cap_add", []))
    # The image has no dnsmasq, iptables or iPXE binaries: the entry point installs them.
    assert {"dnsmasq-base", "iptables", "ipxe"} <= set(variables["APT_PACKAGES"].split())
    assert "APT_PACKAGES" in " ".join(boot.get("entrypoint") or [])
    assert variables["ENCLUME_BOOT_INTERFACE"]
    assert variables["ENCLUME_BOOT_DHCP_MODE"] in ("full", "proxy")
    # The URL the conductors write into boot configurations is where the boot service listens.
    url = urlsplit(variables["ENCLUME_BOOT_PUBLIC_URL"])
    assert (url.hostname, str(url.port)) == (variables["ENCLUME_BOOT_HTTP_HOST"],
                                             variables["ENCLUME_BOOT_HTTP_PORT"])
    for name, service in enclume(services, "enclume-conductor").items():
        assert env(service)["ENCLUME_BOOT_PUBLIC_URL"] == variables["ENCLUME_BOOT_PUBLIC_URL"], \
            name
    assert variables["ENCLUME_TFTP_HOST"] == variables["ENCLUME_BOOT_HTTP_HOST"]


def test_rpc_secret_comes_from_a_secret_file(services: dict[str, Service]) -> None:
    for kind in ("enclume-api", "enclume-conductor"):
        for name, service in enclume(services, kind).items():
            variables = env(service)
            assert "ENCLUME_RPC_SECRET" not in variables, name
            assert variables.get("ENCLUME_RPC_SECRET_FILE") in mounted_secrets(service), name


def test_no_secret_value_in_the_file(config: dict[str, Any],
                                     services: dict[str, Service]) -> None:
    for name, service in services.items():
        for key, value in env(service).items():
            if SECRET_NAME.search(key):
                assert key.endswith("_FILE"), f"{name}: {key} is given in plain text"
                assert value in mounted_secrets(service), f"{name}: {key} is not a secret file"
            parsed = urlsplit(value)
            assert not (parsed.scheme and parsed.password), f"{name}: {key} has a password"
    for name, secret in (config.get("secrets") or {}).items():
        assert set(secret) == {"file"}, f"secret {name} is not read from a file"
