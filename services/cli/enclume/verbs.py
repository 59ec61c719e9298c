"""``enclume node manage|provide|inspect|clean|deploy|undeploy|rebuild|abort NODE...``, and
``enclume node wait NODE...``.

Each verb asks the API for a provision state change of every node given (or selected with
``--label``), then with ``--wait`` follows them until all are done (exit 0) or any failed or
timed out (exit 1). ``node wait`` only follows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer

from services.cli.enclume import args, progress, selection
from services.cli.enclume.context import cli
from services.cli.enclume.options import (
    DEFAULT_WAIT_TIMEOUT_S,
    Nodes,
    SelectLabel,
    SelectState,
    Timeout,
    Wait,
)
from services.cli.enclume.requests import change_states
from services.common.states import STABLE_STATES, ProvisionState

app = typer.Typer()

FAILED = progress.FAILED_PROVISION_STATES


@dataclass(frozen=True)
class Verb:
    target: str  # the API's provision state target
    done: frozenset[str]  # where the nodes are when it worked
    failed: frozenset[str] = FAILED


VERBS = {
    "manage": Verb("manage", frozenset({"manageable"})),
    "provide": Verb("provide", frozenset({"available"})),
    "inspect": Verb("inspect", frozenset({"manageable"})),
    "clean": Verb("clean", frozenset({"manageable"})),
    # "active" and "deleted" rather than 1.73's "deploy"/"undeploy": every version has them.
    "deploy": Verb("active", frozenset({"active"})),
    "undeploy": Verb("deleted", frozenset({"available"})),
    "rebuild": Verb("rebuild", frozenset({"active"})),
    # An abort ends in the failure state of what it stopped: that is its goal.
    "abort": Verb("abort", FAILED | {s.value for s in STABLE_STATES}, frozenset()),
}


def targets(ctx: typer.Context, nodes: list[str] | None, label: list[str] | None,
            provision_state: str | None) -> list[str]:
    return selection.resolve(cli(ctx), nodes, label, provision_state)


def run_verb(ctx: typer.Context, verb: str, nodes: list[str], wait: bool, timeout: float,
             body: dict[str, Any] | None = None) -> None:
    """Ask for ``verb`` on each node; report refusals; wait for the accepted ones."""
    spec = VERBS[verb]
    client = cli(ctx).client
    change_states(client, nodes, "provision", {"target": spec.target, **(body or {})},
                  f"{verb} requested",
                  (lambda accepted: progress.wait_for(client, accepted, spec.done, spec.failed,
                                                      timeout)) if wait else None)


@app.command("manage")
def manage(ctx: typer.Context, nodes: Nodes = None, label: SelectLabel = None,
           provision_state: SelectState = None, wait: Wait = False,
           timeout: Timeout = DEFAULT_WAIT_TIMEOUT_S) -> None:
    """enroll/available/failed -> manageable (from enroll: checks the power credentials)."""
    run_verb(ctx, "manage", targets(ctx, nodes, label, provision_state), wait, timeout)


@app.command("provide")
def provide(ctx: typer.Context, nodes: Nodes = None, label: SelectLabel = None,
            provision_state: SelectState = None, wait: Wait = False,
            timeout: Timeout = DEFAULT_WAIT_TIMEOUT_S) -> None:
    """manageable -> available (through automated cleaning)."""
    run_verb(ctx, "provide", targets(ctx, nodes, label, provision_state), wait, timeout)


@app.command("inspect")
def inspect(ctx: typer.Context, nodes: Nodes = None, label: SelectLabel = None,
            provision_state: SelectState = None, wait: Wait = False,
            timeout: Timeout = DEFAULT_WAIT_TIMEOUT_S) -> None:
    """manageable -> inspecting -> manageable, with the node's properties and ports updated."""
    run_verb(ctx, "inspect", targets(ctx, nodes, label, provision_state), wait, timeout)


@app.command("clean")
def clean(
    ctx: typer.Context,
    clean_steps: Annotated[str, typer.Option(
        metavar="JSON|@FILE|-", help="The steps: a JSON list, or @FILE (JSON or YAML), or - "
                                    "(stdin).")],
    disable_ramdisk: Annotated[bool, typer.Option(
        "--disable-ramdisk", help="Run the steps without booting the ramdisk.")] = False,
    nodes: Nodes = None,
    label: SelectLabel = None,
    provision_state: SelectState = None,
    wait: Wait = False,
    timeout: Timeout = DEFAULT_WAIT_TIMEOUT_S,
) -> None:
    """Manual cleaning: manageable -> cleaning -> manageable."""
    body: dict[str, Any] = {"clean_steps": args.steps(clean_steps, "--clean-steps")}
    if disable_ramdisk:
        body["disable_ramdisk"] = True
    run_verb(ctx, "clean", targets(ctx, nodes, label, provision_state), wait, timeout, body)


ConfigDrive = Annotated[str | None, typer.Option(
    metavar="FILE|JSON|URL",
    help="A config drive: a JSON object (inline or in FILE), an ISO image FILE (sent gzipped "
         "and base64-encoded), a FILE of base64 text, or a URL.")]
DeploySteps = Annotated[str | None, typer.Option(
    metavar="JSON|@FILE|-", help="Deploy steps: a JSON list, or @FILE, or - (stdin).")]


def _deploy_body(config_drive: str | None, deploy_steps: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    drive = args.config_drive(config_drive)
    if drive is not None:
        body["configdrive"] = drive
    steps = args.steps(deploy_steps, "--deploy-steps")
    if steps is not None:
        body["deploy_steps"] = steps
    return body


@app.command("deploy")
def deploy(ctx: typer.Context, nodes: Nodes = None, label: SelectLabel = None,
           provision_state: SelectState = None, config_drive: ConfigDrive = None,
           deploy_steps: DeploySteps = None, wait: Wait = False,
           timeout: Timeout = DEFAULT_WAIT_TIMEOUT_S) -> None:
    """available -> active: write the image of instance_info to the node's disk."""
    body = _deploy_body(config_drive, deploy_steps)
    run_verb(ctx, "deploy", targets(ctx, nodes, label, provision_state), wait, timeout, body)


@app.command("undeploy")
def undeploy(ctx: typer.Context, nodes: Nodes = None, label: SelectLabel = None,
             provision_state: SelectState = None, wait: Wait = False,
             timeout: Timeout = DEFAULT_WAIT_TIMEOUT_S) -> None:
    """active -> available: tear down, then automated cleaning."""
    run_verb(ctx, "undeploy", targets(ctx, nodes, label, provision_state), wait, timeout)


@app.command("rebuild")
def rebuild(ctx: typer.Context, nodes: Nodes = None, label: SelectLabel = None,
            provision_state: SelectState = None, config_drive: ConfigDrive = None,
            deploy_steps: DeploySteps = None, wait: Wait = False,
            timeout: Timeout = DEFAULT_WAIT_TIMEOUT_S) -> None:
    """active -> active: deploy the image again."""
    body = _deploy_body(config_drive, deploy_steps)
    run_verb(ctx, "rebuild", targets(ctx, nodes, label, provision_state), wait, timeout, body)


@app.command("abort")
def abort(ctx: typer.Context, nodes: Nodes = None, label: SelectLabel = None,
          provision_state: SelectState = None, wait: Wait = False,
          timeout: Timeout = DEFAULT_WAIT_TIMEOUT_S) -> None:
    """Stop what is waiting (clean wait, inspect wait, wait call-back): -> ... failed."""
    run_verb(ctx, "abort", targets(ctx, nodes, label, provision_state), wait, timeout)


def _known_state(value: str | None) -> str | None:
    known = [state.value for state in ProvisionState]
    if value is not None and value not in known:
        raise typer.BadParameter(f"unknown provision state {value!r}; one of: "
                                 f"{', '.join(known)}")
    return value


@app.command("wait")
def wait_nodes(
    ctx: typer.Context,
    nodes: Nodes = None,
    label: SelectLabel = None,
    provision_state: SelectState = None,
    state: Annotated[str | None, typer.Option(
        "--state", metavar="STATE", callback=_known_state, show_default=False,
        help="Wait until each node is in this provision state (default: until none is "
             "busy).")] = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", metavar="SECONDS", min=0, help="Give up after this long (0: no limit).")]
    = DEFAULT_WAIT_TIMEOUT_S,
) -> None:
    """Follow nodes without acting on them, until none is busy or each is in --state.

    Busy: a provision state change is under way (deploying, wait call-back, cleaning ...).
    Exit 1 if any fails, settles in another state than --state, or times out."""
    idents = targets(ctx, nodes, label, provision_state)
    if state is None:
        judge = progress.settled_judge()
    else:
        judge = progress.provision_judge({state}, FAILED - {state})
    outcomes = progress.watch(cli(ctx).client, idents, judge, timeout)
    if not all(outcome.ok for outcome in outcomes.values()):
        raise typer.Exit(1)
