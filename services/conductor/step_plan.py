"""Which deploy (or clean) steps a node runs, in which order, as Ironic plans them
(ironic/conductor/steps.py): the steps its interfaces offer, the user's steps and those of the
deploy templates its instance traits name, validated against what the interfaces offer and
merged by priority. A plan is refused (Invalid, with Ironic's texts) before any state change.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select

from services.common.exceptions import Invalid
from services.common.models import DeployTemplate
from services.common.validation import STEP_INTERFACES
from services.conductor.task import Task
from services.drivers.base import DriverStep

# The interfaces whose steps the conductor runs itself (no ramdisk): a manual cleaning of
# their steps is checked before it starts and may not mix them with the agent's. (The raid
# interface's steps run in the conductor too, checked when the cleaning runs, as Ironic's: a
# node without raid interface fails the cleaning, naming the steps it has.)
CONDUCTOR_INTERFACES = ("bios", "firmware")
# The core step of every deploy interface: it can be disabled (priority 0), never moved.
CORE_STEP = ("deploy", "deploy")
PLANNED_FIELDS = ("interface", "step", "args", "priority")
# Steps the conductor resolves itself on any interface, as Ironic's reserved steps
# (flows/step_runner.py): ``hold`` parks the operation until unhold.
RESERVED_STEPS = ("hold",)


def is_reserved(step: dict[str, Any]) -> bool:
    return step.get("step") in RESERVED_STEPS


_OFFERING = {"service": "clean"}  # which of an interface's step sets a kind draws on


def step_id(step: dict[str, Any]) -> str:
    return f"{step['interface']}.{step['step']}"


def _sort_key(step: dict[str, Any]) -> tuple[int, int]:
    """Highest priority first; on a tie, the interface Ironic ranks higher."""
    return (int(step["priority"]), -STEP_INTERFACES.index(step["interface"]))


def sorted_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(steps, key=_sort_key, reverse=True)


def offered(task: Task, kind: str) -> dict[str, tuple[str, DriverStep]]:
    """The ``kind`` ("deploy" or "clean") steps the node's interfaces offer, by step id.
    Service steps are the clean steps the conductor runs (``requires_ramdisk`` False)."""
    found: dict[str, tuple[str, DriverStep]] = {}
    for interface in STEP_INTERFACES:
        implementation = task.driver.interfaces.get(interface)
        if implementation is None or not implementation.supported:
            continue
        for spec in getattr(implementation, f"{_OFFERING.get(kind, kind)}_steps").values():
            if kind == "service" and spec.requires_ramdisk:
                continue
            found[f"{interface}.{spec.name}"] = (interface, spec)
    return found


def driver_step(interface: str, spec: DriverStep) -> dict[str, Any]:
    """A step as the node shows it (its ``deploy_step``) and a plan holds it."""
    return {"interface": interface, "step": spec.name, "priority": spec.priority,
            "args": {}}


def _step_errors(user: dict[str, Any], interface: str, spec: DriverStep, kind: str,
                 disable_ramdisk: bool) -> list[str]:
    errors = []
    argsinfo = spec.argsinfo or {}
    args = user.get("args") or {}
    if not isinstance(args, dict):
        return [f"{kind} step {user}: its args must be an object"]
    unexpected = set(args) - set(argsinfo)
    if unexpected:
        errors.append(f"{kind} step {user} has these unexpected arguments: "
                      f"{', '.join(sorted(unexpected))}")
    if kind != "deploy" or user["priority"] > 0:
        missing = [name + (f" ({info['description']})" if info.get("description") else "")
                   for name, info in argsinfo.items()
                   if info.get("required") and name not in args]
        if missing:
            errors.append(f"{kind} step {user} is missing these required arguments: "
                          f"{', '.join(missing)}")
        if disable_ramdisk and spec.requires_ramdisk:
            errors.append(f"{kind} step {user} requires booting a ramdisk")
    if kind == "deploy" and user["priority"] > 0:
        if (interface, spec.name) == CORE_STEP:
            errors.append(f"deploy step {spec.name} on interface {interface} is a core step "
                          "and cannot be overridden by user steps. It may be disabled by "
                          "setting the priority to 0")
        core = CORE_STEP[0] + "." + CORE_STEP[1]
        if spec.agent_command and user["priority"] >= 100:
            errors.append(f"deploy step {step_id(user)} runs on the agent, which the core "
                          f"step {core} (priority 100) boots: its priority must be below 100")
    return errors


def validate_user_steps(task: Task, user_steps: list[dict[str, Any]], kind: str,
                        error_prefix: str = "", disable_ramdisk: bool = False
                        ) -> list[dict[str, Any]]:
    """The user's steps checked against what the node offers; Invalid with every error."""
    available = offered(task, kind)
    errors: list[str] = []
    result = []
    for user in user_steps:
        if "priority" not in user and kind != "deploy":
            user = {**user, "priority": 0}
        if is_reserved(user):  # no interface offers it: the conductor resolves it
            result.append({key: user.get(key) for key in PLANNED_FIELDS}
                          | {"args": dict(user.get("args") or {})})
            continue
        found = available.get(step_id(user))
        if found is None:
            errors.append(f"node does not support this {kind} step: {user}")
            continue
        interface, spec = found
        errors += _step_errors(user, interface, spec, kind, disable_ramdisk)
        step = {key: user.get(key) for key in PLANNED_FIELDS}
        step["args"] = dict(user.get("args") or {})
        if kind != "deploy":  # a clean step runs at the driver's priority, in the user's order
            step["priority"] = spec.priority
            step["abortable"] = False
        result.append(step)
    if kind == "deploy":
        duplicates = sorted(k for k, n in Counter(map(step_id, result)).items() if n > 1)
        if duplicates:
            errors.append("deploy steps from all deploy templates matching this node's "
                          "instance traits cannot have the same interface and step. Duplicate "
                          f"deploy steps for {', '.join(duplicates)}")
    if errors:
        raise Invalid(error_prefix + "; ".join(errors))
    return result


def matching_templates(task: Task) -> list[DeployTemplate]:
    """The deploy templates named by the node's instance traits (instance_info["traits"]:
    the subset of its traits the flavor or image asked for), as Ironic matches them."""
    traits = task.node.instance_info.get("traits")
    if not traits or not isinstance(traits, list):
        return []
    query = select(DeployTemplate).where(DeployTemplate.name.in_(
        [t for t in traits if isinstance(t, str)])).order_by(DeployTemplate.id)
    return list(task.session.scalars(query))


def deploy_plan(task: Task, requested: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The deploy steps of this deploy in order: the interfaces' enabled steps, overridden by
    the matching templates' steps, overridden by the request's; steps of priority 0 dropped."""
    user = validate_user_steps(
        task, requested or [], "deploy",
        'Validation of deploy steps from "deploy steps" argument failed.')
    templates = matching_templates(task)
    template_steps = validate_user_steps(
        task, [dict(step) for template in templates for step in template.steps], "deploy",
        "Validation of deploy steps from deploy templates matching this node's instance "
        f"traits failed. Matching deploy templates: {','.join(t.name for t in templates)}. "
        "Errors: ")
    chosen = {step_id(s) for s in user}
    user += [s for s in template_steps if step_id(s) not in chosen]
    chosen = {step_id(s) for s in user}
    steps = [s for s in interface_plan(task) if step_id(s) not in chosen]
    steps += [s for s in user if s["priority"] > 0]
    return sorted_steps(steps)


def interface_plan(task: Task) -> list[dict[str, Any]]:
    """The deploy steps the node's interfaces enable by themselves, in order."""
    return sorted_steps([driver_step(interface, spec) for interface, spec
                         in offered(task, "deploy").values() if spec.priority > 0])


def clean_plan(task: Task, requested: list[dict[str, Any]], disable_ramdisk: bool
               ) -> list[dict[str, Any]]:
    """A manual cleaning's steps, in the user's order, checked against what the node offers
    (refused with Ironic's texts and the steps it does offer)."""
    try:
        return validate_user_steps(task, requested, "clean", disable_ramdisk=disable_ramdisk)
    except Invalid as exc:
        known = ", ".join(sorted(offered(task, "clean"))) or "none"
        raise Invalid(f"{exc}; the node's clean steps: {known}"
                      f"{_unsupported(task, requested)}") from None


def requested_steps(options: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """A clean or service request's ``<kind>_steps``: a list of objects naming an interface
    and a step (Invalid otherwise, before anything is locked)."""
    steps = options.get(f"{kind}_steps")
    if not steps or not isinstance(steps, list):
        raise Invalid(f'"{kind}_steps" is required when setting the target provision state '
                      f'to "{kind}".')
    for step in steps:
        if not isinstance(step, dict) or not {"interface", "step"} <= step.keys():
            raise Invalid(f"Invalid {kind} step {step!r}: each step needs \"interface\" and "
                          "\"step\".")
    return steps


def service_plan(task: Task, requested: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A servicing's steps, in the user's order: the clean steps the conductor runs (bios,
    firmware, raid) and hold steps; steps on the agent are refused (no service ramdisk yet)."""
    try:
        return validate_user_steps(task, requested, "service")
    except Invalid as exc:
        known = ", ".join(sorted(offered(task, "service"))) or "none"
        raise Invalid(f"{exc}; the node's service steps (the clean steps the conductor runs, "
                      f"and hold): {known}{_unsupported(task, requested)}") from None


def _unsupported(task: Task, requested: list[dict[str, Any]]) -> str:
    """Why a requested step's interface offers nothing: the node has its ``no-*`` one."""
    said = ""
    for name in sorted({str(step.get("interface")) for step in requested}):
        implementation = task.driver.interfaces.get(name)
        if implementation is not None and not implementation.supported:
            chosen = getattr(task.node, f"{name}_interface", None) or "its default"
            said += f"; the node's {name} interface is {chosen}"
    return said


def runs_in_conductor(step: dict[str, Any]) -> bool:
    return step.get("interface") in CONDUCTOR_INTERFACES


def flashed_components(steps: list[dict[str, Any]]) -> list[str]:
    """The firmware components the ``firmware.update`` steps among ``steps`` flash."""
    return [str(setting.get("component")) for step in steps
            if (step["interface"], step["step"]) == ("firmware", "update")
            for setting in (step.get("args") or {}).get("settings") or []
            if isinstance(setting, dict)]


def needs_ramdisk(task: Task, step: dict[str, Any], kind: str = "clean") -> bool:
    if is_reserved(step):
        return False
    found = offered(task, kind).get(step_id(step))
    return found is None or found[1].requires_ramdisk
