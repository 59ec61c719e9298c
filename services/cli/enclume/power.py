"""``enclume node power on|off|reboot NODE...`` (or ``--label KEY=VALUE``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from services.cli.enclume import progress, selection
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
from services.common.hardware_types import POWER_OFF, POWER_ON, REBOOT, SOFT_POWER_OFF, SOFT_REBOOT

app = typer.Typer(no_args_is_help=True, help="Power nodes on, off, or reboot them.")

PowerTimeout = Annotated[int | None, typer.Option(
    metavar="SECONDS", min=1, help="How long the conductor waits for the BMC to get there.")]
Soft = Annotated[bool, typer.Option("--soft", help="Ask the OS to shut down (ACPI).")]


def change_power(ctx: typer.Context, nodes: list[str], target: str, expected: str,
                 power_timeout: int | None, wait: bool, timeout: float) -> None:
    client = cli(ctx).client
    body: dict[str, Any] = {"target": target}
    if power_timeout is not None:
        body["timeout"] = power_timeout
    judge = progress.power_judge(expected)
    change_states(client, nodes, "power", body, f"{target} requested",
                  (lambda accepted: progress.watch(client, accepted, judge, timeout))
                  if wait else None)


@app.command("on")
def power_on(ctx: typer.Context, nodes: Nodes = None, label: SelectLabel = None,
             provision_state: SelectState = None, power_timeout: PowerTimeout = None,
             wait: Wait = False, timeout: Timeout = DEFAULT_WAIT_TIMEOUT_S) -> None:
    """Power nodes on."""
    chosen = selection.resolve(cli(ctx), nodes, label, provision_state)
    change_power(ctx, chosen, POWER_ON, POWER_ON, power_timeout, wait, timeout)


@app.command("off")
def power_off(ctx: typer.Context, nodes: Nodes = None, label: SelectLabel = None,
              provision_state: SelectState = None, soft: Soft = False,
              power_timeout: PowerTimeout = None, wait: Wait = False,
              timeout: Timeout = DEFAULT_WAIT_TIMEOUT_S) -> None:
    """Power nodes off (--soft: through the OS)."""
    chosen = selection.resolve(cli(ctx), nodes, label, provision_state)
    change_power(ctx, chosen, SOFT_POWER_OFF if soft else POWER_OFF, POWER_OFF, power_timeout,
                 wait, timeout)


@app.command("reboot")
def reboot(ctx: typer.Context, nodes: Nodes = None, label: SelectLabel = None,
           provision_state: SelectState = None, soft: Soft = False,
           power_timeout: PowerTimeout = None, wait: Wait = False,
           timeout: Timeout = DEFAULT_WAIT_TIMEOUT_S) -> None:
    """Reboot nodes (--soft: through the OS); they end powered on."""
    chosen = selection.resolve(cli(ctx), nodes, label, provision_state)
    change_power(ctx, chosen, SOFT_REBOOT if soft else REBOOT, POWER_ON, power_timeout, wait,
                 timeout)
