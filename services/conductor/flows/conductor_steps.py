"""Clean steps the conductor runs itself, through the node's interface that declares them
(``bios.apply_configuration``, ``bios.factory_reset``, ``firmware.update``): no ramdisk, no
agent. Each step is a
method of its interface named as the step, declared in the interface's ``clean_steps``; its
``args`` are the method's keyword arguments."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from services.conductor import component_caches
from services.conductor.task import Task
from services.drivers.base import BiosInterface, DriverError, FirmwareInterface

# The interfaces whose clean steps the conductor runs, by the name a step gives.
INTERFACES: dict[str, Callable[[Task], BiosInterface | FirmwareInterface]] = {
    "bios": lambda task: task.driver.bios, "firmware": lambda task: task.driver.firmware}


def runs_in_conductor(step: dict[str, Any]) -> bool:
    return step.get("interface") in INTERFACES


def _method(task: Task, step: dict[str, Any]) -> Callable[..., None]:
    name, step_name = str(step["interface"]), str(step["step"])
    interface = INTERFACES[name](task)
    implementation = getattr(task.node, f"{name}_interface", None) or "its default"
    if not interface.supported:
        raise DriverError(f"Clean step {name}.{step_name} cannot run: the node's {name} "
                          f"interface is {implementation}.")
    if step_name not in interface.clean_steps:
        raise DriverError(f"Clean step {name}.{step_name} is not supported by the "
                          f"{implementation} {name} interface; it supports "
                          f"{', '.join(name + '.' + s for s in interface.clean_steps)}.")
    method: Callable[..., None] = getattr(interface, step_name)
    args = step.get("args") or {}
    if not isinstance(args, dict):
        raise DriverError(f"The args of clean step {name}.{step_name} must be an object.")
    try:
        inspect.signature(method).bind(task, **args)
    except TypeError as exc:
        raise DriverError(f"Invalid args for clean step {name}.{step_name}: {exc}") from None
    return method


def check(task: Task, steps: list[dict[str, Any]]) -> list[Callable[..., None]]:
    """The method of each step, or DriverError naming the first the node cannot run."""
    return [_method(task, step) for step in steps]


def run(task: Task, steps: list[dict[str, Any]]) -> None:
    """Run ``steps`` in order; the first that fails raises DriverError naming it. The BIOS
    and firmware caches are refreshed after them, also when one failed."""
    methods = check(task, steps)
    flashed: list[str] = []
    try:
        for step, method in zip(steps, methods, strict=True):
            task.node.clean_step = step
            task.commit()
            label = f"{step['interface']}.{step['step']}"
            try:
                method(task, **(step.get("args") or {}))
            except DriverError as exc:
                raise DriverError(f"clean step {label} failed: {exc}") from None
            task.record("cleaning", f"Clean step {label} done.")
            if label == "firmware.update":
                flashed += [str(s.get("component")) for s in step["args"]["settings"]]
    finally:
        component_caches.refresh(task, "cleaning", flashed)
