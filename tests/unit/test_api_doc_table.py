"""docs/api.md's tables of served and unserved Ironic resources are exactly the app's routes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI

from services.api import openapi
from services.api.app import create_app
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.membership import Membership
from services.conductor.manager import ConductorManager
from services.drivers.registry import Drivers

DOC = Path(__file__).parents[2] / "docs" / "api.md"
CODE = re.compile(r"`([^`]+)`")
PLACEHOLDER = re.compile(r"\{[^}]*\}")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    directory = tmp_path_factory.mktemp("doc-table")
    url = f"sqlite:///{directory / 'doc.sqlite'}"
    upgrade_schema(url)
    db = Database(url)
    settings = Settings(process={"data_dir": directory}, conductor={"hostname": "c1"})
    membership = Membership(db, settings)
    return create_app(settings, db, ConductorManager(db, settings, Drivers(settings), membership),
                      membership)


def shape(path: str) -> str:
    """A path with every {placeholder} alike, without a trailing slash."""
    return PLACEHOLDER.sub("{}", path).rstrip("/") or "/"


def table_rows(heading: str) -> list[tuple[str, str]]:
    """The (first cell, other cells) of the table under ``## heading``."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 2 and cells[0].startswith("`/"):
            rows.append((cells[0], " | ".join(cells[1:])))
    return rows


def documented_paths(heading: str) -> set[str]:
    """Each row's resource, and the paths its other cells name (``/detail``, ``/{id}``: under
    the row's resource; ``/v1/...``: as written)."""
    paths = set()
    for first, rest in table_rows(heading):
        base = shape(CODE.findall(first)[0])
        paths.add(base)
        for code in (shape(code).split(" ")[0] for code in CODE.findall(rest)):
            if code.startswith("/v1/"):
                paths.add(code)
            elif code.startswith("/"):
                paths.add(shape(base + code))
    return paths


def served_paths(app: FastAPI) -> set[str]:
    """The /v1 paths the app routes (openapi.build reads them from the app itself and fails
    if they differ from its table)."""
    return {shape(path) for path in openapi.build(app)["paths"]
            if path.startswith("/v1/") and path != "/v1/"}  # /v1/: under "Versions"


def test_the_served_table_is_exactly_the_routes(app: FastAPI) -> None:
    served = served_paths(app)
    documented = documented_paths("Served resources")
    assert sorted(served - documented) == [], "served but not in docs/api.md"
    assert sorted(documented - served) == [], "in docs/api.md but not served"


def test_the_unserved_table_names_no_route(app: FastAPI) -> None:
    unserved = documented_paths("Not served")
    assert unserved, "docs/api.md lists what is not served"
    assert sorted(unserved & served_paths(app)) == []
