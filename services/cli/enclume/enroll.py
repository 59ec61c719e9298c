"""``enclume enroll FILE``: create or update many nodes and their ports from a YAML or CSV
inventory (docs/inventory-format.md).

The whole file is checked first, alone and against the server (drivers, existing nodes and
ports); any problem stops everything before a single write, each problem with its file and
line. Then each node is created, updated with only what differs, or left alone.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer

from services.cli.enclume.client import ApiClient
from services.cli.enclume.context import cli
from services.cli.enclume.inventory import report
from services.cli.enclume.inventory.advance import GOALS, advance
from services.cli.enclume.inventory.apply import apply_changes
from services.cli.enclume.inventory.model import InventoryInvalid, NodeSpec, RawEntry
from services.cli.enclume.inventory.plan import Plan, make_plan
from services.cli.enclume.inventory.read import read_inventory
from services.cli.enclume.inventory.validate import (
    DriverFacts,
    check_entries,
    check_with_server,
)
from services.cli.enclume.options import DEFAULT_WAIT_TIMEOUT_S, Format, Timeout, Wait
from services.cli.enclume.output import DOCUMENT_FORMATS, to_json, to_yaml
from services.cli.enclume.requests import DEFAULT_CONCURRENCY

MAX_CONCURRENCY = 64
# What the plan compares of every port of the server, fetched in one listing.
PORT_FIELDS = ("uuid", "address", "node_uuid", "pxe_enabled", "local_link_connection",
               "physical_network", "extra")


def _check_goal(value: str | None) -> str | None:
    if value is not None and value not in GOALS:
        raise typer.BadParameter(f"expected one of {', '.join(GOALS)}")
    return value


def enroll(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(
        metavar="FILE", help="Inventory: *.yaml, *.yml, *.json or *.csv "
                             "(docs/inventory-format.md).")],
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Check the file and show what would change; write nothing.")] = False,
    then: Annotated[str | None, typer.Option(
        "--then", metavar="manage|inspect|provide", callback=_check_goal,
        help="After enrolling, move the file's nodes on: manage (enroll -> manageable), "
             "inspect or provide (manage first where needed).")] = None,
    wait: Wait = False,
    concurrency: Annotated[int, typer.Option(
        "--concurrency", min=1, max=MAX_CONCURRENCY,
        help="Nodes enrolled at the same time.")] = DEFAULT_CONCURRENCY,
    timeout: Timeout = DEFAULT_WAIT_TIMEOUT_S,
    fmt: Format = None,
) -> None:
    """Create or update nodes and ports from a YAML or CSV inventory, idempotently."""
    if wait and then is None:
        raise typer.BadParameter("--wait waits for --then: give --then too", param_hint="--wait")
    state = cli(ctx)
    output = state.output_format(fmt)
    source = str(file)
    client = state.client
    try:
        specs, plan = _plan(client, read_inventory(file))
    except InventoryInvalid as exc:
        typer.echo(report.problems_text(source, exc.problems), err=True)
        raise typer.Exit(1) from None
    if dry_run:
        if output not in DOCUMENT_FORMATS:
            typer.echo(report.plan_text(source, plan))
            typer.echo("Dry run: nothing was written.")
        else:
            _emit(report.plan_document(source, plan), output)
        return
    started = time.monotonic()
    to_send = [change for change in plan.changes if change.needs_request]
    counter = report.ProgressCounter(len(to_send))
    try:
        results = apply_changes(client, to_send, concurrency, on_result=counter)
    finally:
        counter.close()
    elapsed = time.monotonic() - started
    counts = report.summary_counts(results, unchanged=len(plan.changes) - len(to_send))
    if output not in DOCUMENT_FORMATS:
        typer.echo(report.summary_text(source, counts, elapsed))
    else:
        _emit(report.results_document(source, results, counts, elapsed), output)
    ok = counts["failed"] == 0
    if then is not None:
        failed = {result.name for result in results if result.outcome == "failed"}
        names = [spec.name for spec in specs if spec.name not in failed]
        ok = advance(client, names, then, wait=wait, timeout_s=timeout,
                     concurrency=concurrency, out=sys.stderr if output in DOCUMENT_FORMATS
                     else sys.stdout) and ok
    if not ok:
        raise typer.Exit(1)


def _plan(client: ApiClient, entries: list[RawEntry]) -> tuple[list[NodeSpec], Plan]:
    """Check the entries alone and against the server, and compare them with the server's
    nodes and ports. Every problem is listed, from all checks at once."""
    specs, problems = check_entries(entries)
    specs = [spec for spec in specs if spec.name]  # a node without a valid name is reported
    drivers = driver_facts(client, {spec.driver for spec in specs if spec.driver})
    # All fields: OpenStack Ironic refuses updated_at in ?fields=.
    nodes = client.list_all("/v1/nodes/detail", "nodes")
    ports = client.list_all("/v1/ports", "ports", params={"fields": ",".join(PORT_FIELDS)})
    by_name = {node["name"]: node for node in nodes if node.get("name")}
    problems.extend(check_with_server(specs, drivers, by_name))
    try:
        plan = make_plan(specs, nodes, ports)
    except InventoryInvalid as exc:
        problems.extend(exc.problems)
    if problems:
        raise InventoryInvalid(problems)
    return specs, plan


def driver_facts(client: ApiClient, used: Iterable[str]) -> dict[str, DriverFacts]:
    """Every driver of the server; the properties of those the inventory uses."""
    listed = client.get("/v1/drivers", params={"detail": "true"}).get("drivers", [])
    facts = {}
    for driver in listed:
        name = driver["name"]
        interfaces = {key.removeprefix("enabled_").removesuffix("_interfaces"): list(value)
                      for key, value in driver.items()
                      if key.startswith("enabled_") and key.endswith("_interfaces")}
        properties: dict[str, Any] = {}
        if name in used:
            properties = client.get(f"/v1/drivers/{name}/properties") or {}
        facts[name] = DriverFacts(name, properties, interfaces)
    return facts


def _emit(document: dict[str, Any], output: str) -> None:
    typer.echo(to_json(document) if output == "json" else to_yaml(document))
