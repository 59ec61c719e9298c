"""What a clean or deploy step is as an interface offers it (Ironic's ``@base.clean_step`` and
``@base.deploy_step``), and how an interface runs a step the conductor runs itself (bios,
firmware): the interface's method named as the step, its ``args`` the method's keyword
arguments. services/conductor/step_plan.py plans the steps, flows/step_runner.py runs them."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.common.exceptions import DriverError


@dataclass(frozen=True)
class DriverStep:
    """A clean or deploy step an interface offers."""

    name: str
    priority: int
    agent_command: str | None = None  # the agent runs it (else the conductor does)
    # Ironic's argsinfo: {arg: {"description": ..., "required": bool}}.
    argsinfo: dict[str, dict[str, Any]] | None = None
    requires_ramdisk: bool = True


def conductor_steps(*names_and_args: tuple[str, str | None]) -> dict[str, DriverStep]:
    """Steps of priority 0 that the conductor runs, by name; a description makes the step
    take a required ``settings`` argument (Ironic's argsinfo for its bios/firmware steps)."""
    return {name: DriverStep(name, 0, requires_ramdisk=False, argsinfo=None if settings is None
                             else {"settings": {"description": settings, "required": True}})
            for name, settings in names_and_args}


def run_method_step(interface: object, label: str, task: Any, name: str,
                    args: dict[str, Any]) -> None:
    """Run the step ``name`` of ``interface`` (its ``label``, "bios" ...) by calling the method
    of that name with ``args``; DriverError when it has no such step or the args do not fit."""
    offered = {**getattr(interface, "clean_steps", {}), **getattr(interface, "deploy_steps", {})}
    if name not in offered:
        raise DriverError(f"Step {label}.{name} is not supported by this {label} interface; "
                          f"it supports {', '.join(label + '.' + s for s in offered)}.")
    method: Callable[..., None] = getattr(interface, name)
    try:
        inspect.signature(method).bind(task, **args)
    except TypeError as exc:
        raise DriverError(f"Invalid args for step {label}.{name}: {exc}") from None
    method(task, **args)
