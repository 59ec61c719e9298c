"""Deploy and tear down: validate the request and plan its deploy steps (the interfaces', the
request's and the matching deploy templates'), run them in order (the deploy interface's
``deploy.deploy`` writes the image or boots the ramdisk whose agent the next steps use, on its
heartbeats), then boot the instance on the tenant network; tear down removes it and cleans
the node."""

from __future__ import annotations

from typing import Any

from services.classroom.pc_logins import clear_login
from services.classroom.state_capture import POWER_OFF_AFTER, SAVE_FLAG
from services.common.exceptions import Invalid
from services.common.models import Allocation
from services.conductor import component_caches, step_plan
from services.conductor.flows import clean, step_runner
from services.conductor.flows.steps import Step, advance, after_agent, on_ramdisk, validate
from services.conductor.step_plan import CORE_STEP
from services.conductor.task import Task
from services.drivers.base import POWER_OFF, Resume
from services.drivers.deploy import login_step
from services.drivers.deploy.agent_deploy import AgentDeploy
from services.drivers.deploy.block_restore import forget_written
from services.drivers.deploy.state_resume import STUDENT_STATE
from services.drivers.power_actions import (
    power_off_or_ask,
    power_on_or_reboot,
    reboot_if_kept_on,
    set_power,
)


def prepare(event: str, options: dict[str, Any]) -> Step:
    def prepare(task: Task) -> None:
        instance_info = dict(task.node.instance_info)
        if options.get("configdrive") is not None:
            instance_info["configdrive"] = options["configdrive"]
        if _asks_who_is_there(task):  # the state an earlier login resumed is not this deploy's
            instance_info.pop(STUDENT_STATE, None)
        task.node.instance_info = instance_info
        # With the request's config drive in place: a refusal (400) rolls it back with the rest.
        validate(task, "power", "management", "boot", "deploy", "network")
        requested = options.get("deploy_steps") or []
        plan = step_plan.deploy_plan(task, requested)
        if task.driver.deploy.diskless and plan:
            raise Invalid(f"The {task.node.deploy_interface} deploy interface writes nothing and "
                          f"runs no deploy steps; asked for or enabled: "
                          f"{', '.join(s['interface'] + '.' + s['step'] for s in plan)}.")
        step_runner.start(task, "deploy", plan)
        task.pop_internal_info("user_deploy_steps")
        if requested:
            task.update_internal_info(user_deploy_steps=requested)
        task.node.last_error = None
        forget_written(task)  # what the disk held: unknown until the new image is verified
        # Restored for the next user: nobody is logged in; unless the deploy first saves the
        # student's work (forgotten once saved) or resumes their state (whose owner it checks)
        # without asking who is at the PC.
        if not (instance_info.get(SAVE_FLAG) or instance_info.get(STUDENT_STATE)):
            clear_login(task.node)
        task.process_event(event)
        task.commit()

    return prepare


def _asks_who_is_there(task: Task) -> bool:
    """Whether the deploy's login step asks who is at the PC (login_step.py): then that choice
    alone says whether a state is resumed, and whose."""
    deploy = task.driver.deploy
    return isinstance(deploy, AgentDeploy) and login_step.wanted(task, deploy.settings)


def deploy(task: Task) -> None:
    if task.driver.deploy.diskless:  # the ramdisk deploy: no deploy ramdisk, nothing written
        task.driver.deploy.deploy(task)
        finish(task)
        return
    on_ramdisk(task, task.driver.network.add_provisioning_network, _run_steps, finish)


def _run_steps(task: Task) -> str | None:
    return step_runner.run(task, "deploy")


def _go_on(task: Task, resume: Resume) -> str | None:
    if not step_runner.plan_of(task, "deploy"):
        # A deploy whose steps were not planned (begun by an older conductor): its ramdisk
        # is up, so it goes on with the interfaces' steps after the core step.
        plan = step_plan.interface_plan(task)
        core = [i for i, s in enumerate(plan) if (s["interface"], s["step"]) == CORE_STEP]
        step_runner.start(task, "deploy", plan, core[0] if core else 0)
    return step_runner.go_on(task, "deploy", resume)


def continue_on_heartbeat(task: Task) -> None:
    advance(task, _go_on, after_agent(finish))


def finish(task: Task) -> None:
    """After the image is written: boot the instance on the tenant network."""
    # A session's end that saved a student's work and restored the PC may leave it off: then
    # nobody is logged in and its ports stay on the provisioning (a room's idle) VLAN. A PC
    # with disable_power_off is rebooted instead, on that VLAN.
    off_after = bool(task.node.instance_info.get(POWER_OFF_AFTER))
    task.driver.boot.clean_up_ramdisk(task)
    if not off_after:
        task.driver.network.remove_provisioning_network(task)
        task.driver.network.configure_tenant_networks(task)
    task.driver.boot.prepare_instance(task)
    task.node.conductor_affinity = task.conductor
    if off_after and not task.node.disable_power_off:
        set_power(task, POWER_OFF)
    else:
        power_on_or_reboot(task)  # Ironic's boot_instance
    steps = step_runner.plan_of(task, "deploy")
    if any(step_plan.runs_in_conductor(step) for step in steps):  # bios or firmware changed
        component_caches.refresh(task, "deploying", step_plan.flashed_components(steps))
    step_runner.forget(task, "deploy")
    task.pop_internal_info("user_deploy_steps")
    task.process_event("done")


def tear_down(task: Task) -> None:
    power_off_or_ask(task)
    task.driver.deploy.tear_down(task)
    task.driver.network.unconfigure_tenant_networks(task)
    task.driver.boot.clean_up_instance(task)
    reboot_if_kept_on(task)  # out of the instance: Ironic's AgentBaseMixin.clean_up
    _release_instance(task)
    task.process_event("clean")
    task.commit()
    clean.automated(task)


def _release_instance(task: Task) -> None:
    node = task.node
    if node.allocation_id is not None:
        allocation = task.session.get(Allocation, node.allocation_id)
        if allocation is not None:
            task.session.delete(allocation)
        node.allocation_id = None
    node.instance_uuid = None
    node.instance_name = None
    node.instance_info = {}
