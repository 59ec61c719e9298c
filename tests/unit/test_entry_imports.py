"""What each console script loads: its entry module imported in a fresh interpreter, and the
heavy modules (BMC clients, web framework, ORM, ...) and Enclume layers that pulled in checked
against what the script may load (docs/architecture.md, "Processes and layers")."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS: dict[str, str] = tomllib.loads(
    (REPO / "pyproject.toml").read_text())["project"]["scripts"]

BMC_CLIENTS = {"pyghmi", "sushy", "netmiko", "paramiko"}
# Loaded only while a timetable is imported (services/classroom/calendar.py).
CALENDARS = {"icalendar", "recurring_ical_events"}
SERVERS = {"fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "iptc", "tftpy"}
LAYERS = {"services.api", "services.boot", "services.conductor", "services.drivers",
          "services.aio"}
# httpx's command-line client's libraries: no Enclume process runs it (services/__init__.py);
# pygments is also what Mako (under alembic's schema upgrade) would highlight errors with.
HTTPX_CLI = {"rich", "pygments"}  # (click stays: uvicorn uses it)
# Loaded when the web page first renders (services/api/ui/web.py).
TEMPLATES = {"jinja2"}
# Loaded when a YAML file is read (users file, discovery rules, switches): ~1 MiB of RSS.
YAML = {"yaml"}
# Loaded when the ldap strategy is configured (services/api/auth.py): ~5 MiB of RSS.
DIRECTORY = {"ldap3", "pyasn1"}
# Loaded when deploy steps are validated, and when a rescue password is hashed: a few MiB.
STEPS = {"jsonschema", "passlib"}
WATCHED = (BMC_CLIENTS | CALENDARS | SERVERS | LAYERS | HTTPX_CLI | TEMPLATES | YAML | DIRECTORY
           | STEPS)
# What no server loads at start: each only when first needed.
ON_DEMAND = CALENDARS | HTTPX_CLI | TEMPLATES | YAML | DIRECTORY | STEPS

# script -> the watched modules it must not load
FORBIDDEN: dict[str, set[str]] = {
    "enclume": WATCHED - {"rich", "yaml"},  # typer draws the CLI's help with rich
    "enclume-agent": WATCHED - YAML,
    "enclume-boot": BMC_CLIENTS | ON_DEMAND | {
        "fastapi", "iptc", "services.api", "services.conductor", "services.drivers",
        "services.aio"},
    "enclume-api": BMC_CLIENTS | ON_DEMAND | {
        "iptc", "tftpy", "services.boot", "services.drivers", "services.aio"},
    # The BMC clients load when a node first uses them (services/drivers/registry.py).
    "enclume-conductor": BMC_CLIENTS | ON_DEMAND | {
        "fastapi", "iptc", "tftpy", "services.api", "services.aio"},
    "enclume-dbsync": BMC_CLIENTS | ON_DEMAND | {
        "fastapi", "iptc", "tftpy", "services.api", "services.aio"},
    "enclume-aio": BMC_CLIENTS | ON_DEMAND | {
        "iptc", "tftpy"},
}


def loaded_by(module: str, then: str = "") -> set[str]:
    """The watched modules importing ``module`` (and running ``then``) loads, in a fresh
    interpreter."""
    code = (f"import importlib, json, sys; importlib.import_module({module!r}); "
            f"{then or 'pass'}; print(json.dumps(sorted(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=120, check=True)
    modules = json.loads(result.stdout.splitlines()[-1])
    return {name for name in WATCHED
            if any(m == name or m.startswith(f"{name}.") for m in modules)}


def test_every_console_script_has_its_allowed_list() -> None:
    assert set(SCRIPTS) == set(FORBIDDEN)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_a_console_script_loads_only_what_it_needs(script: str) -> None:
    module = SCRIPTS[script].split(":")[0]
    loaded = loaded_by(module)
    assert not loaded & FORBIDDEN[script], (
        f"{script} ({module}) loads {sorted(loaded & FORBIDDEN[script])}")


def test_the_check_sees_what_the_all_in_one_loads() -> None:
    """The all-in-one loads the API, the conductor and the drivers: the check can fail."""
    assert {"fastapi", "sqlalchemy", "services.api", "services.conductor",
            "services.drivers"} <= loaded_by(SCRIPTS["enclume-aio"].split(":")[0])


def test_the_all_in_one_once_built_loads_nothing_on_demand(tmp_path: Path) -> None:
    """What the server does before it serves (the schema's upgrade by alembic, whose Mako would
    load pygments, ~4.5 MiB; the app's build) leaves the on-demand modules unloaded too: the
    side-by-side benchmark's memory target (docs/benchmarks.md) depends on it."""
    build = (f"import os; os.environ['ENCLUME_DATA_DIR'] = {str(tmp_path)!r}; "
             "from services.common.config import get_settings; "
             "sys.modules['services.aio'].build(get_settings())")
    loaded = loaded_by(SCRIPTS["enclume-aio"].split(":")[0], then=build)
    assert "alembic" in loaded  # the build did upgrade the schema
    assert not loaded & FORBIDDEN["enclume-aio"], sorted(loaded & FORBIDDEN["enclume-aio"])
