"""What a clean or deploy step is as an interface offers it (Ironic's ``@base.clean_step`` and
``@base.deploy_step``), and how an interface runs a step the conductor runs itself (bios,
firmware, raid): the interface's method named as the step, its ``args`` the method's keyword
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


def _optional(description: str) -> dict[str, Any]:
    return {"description": description, "required": False}


# The raid interface's steps (Ironic's redfish RAID interface's decorators and argsinfo):
# priority 0, run by the conductor; create reads the node's target_raid_config, apply (a deploy
# step) is given the configuration.
_CREATE_ARGS = {
    "create_root_volume": _optional("This specifies whether to create the root volume. "
                                    "Defaults to `True`."),
    "create_nonroot_volumes": _optional("This specifies whether to create the non-root "
                                        "volumes. Defaults to `True`."),
    "delete_existing": _optional("Setting this to `True` indicates to delete existing RAID "
                                 "configuration prior to creating the new configuration. "
                                 "Default value is `False`."),
}
_APPLY_ARGS = {
    "raid_config": {"description": "The RAID configuration to apply.", "required": True},
    "create_root_volume": _optional("Setting this to 'False' indicates not to create root "
                                    "volume that is specified in 'raid_config'. Default value "
                                    "is 'True'."),
    "create_nonroot_volumes": _optional("Setting this to 'False' indicates not to create "
                                        "non-root volumes (all except the root volume) in "
                                        "'raid_config'. Default value is 'True'."),
    "delete_existing": _optional("Setting this to 'True' indicates to delete existing RAID "
                                 "configuration prior to creating the new configuration. "
                                 "Default value is 'True'."),
}
RAID_CLEAN_STEPS = {
    "create_configuration": DriverStep("create_configuration", 0, requires_ramdisk=False,
                                       argsinfo=_CREATE_ARGS),
    "delete_configuration": DriverStep("delete_configuration", 0, requires_ramdisk=False),
}
RAID_DEPLOY_STEPS = {
    "apply_configuration": DriverStep("apply_configuration", 0, requires_ramdisk=False,
                                      argsinfo=_APPLY_ARGS),
    "delete_configuration": DriverStep("delete_configuration", 0, requires_ramdisk=False),
}
