"""The login step of a deploy (#20): a PC of a room waits for a user at its console.

When its room asks for logins (the room's ``pc_logins``, else ``ENCLUME_PC_LOGIN_AT_BOOT``:
services/classroom/login_policy.py), a deploy of a room's PC starts with the agent's
``login.prompt`` (agent/login_prompt.py): the user logs in at the PC's console and chooses;
the API records the accepted choice on the node (``pc_logins.record_login``) before the agent's
command ends. Then the deploy does what was chosen:

| choice      | the deploy                                                                   |
|-------------|------------------------------------------------------------------------------|
| fresh       | restores the class's image version by delta                                  |
| resume      | the same, with ``instance_info["student_state"]``: the state on top          |
| maintenance | writes nothing: the disk boots as it is                                      |

and ends as every deploy does, the PC's switch ports on the tenant VLAN (a room PC's class
VLAN). Who is logged in is forgotten (``clear_login``) when the next deploy starts or the PC is
powered off; a class's end that does neither moves the ports back to the idle VLAN and ends
the login (``leave_class_vlan``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from services.classroom.image_versions import instance_info
from services.classroom.login_policy import login_policy
from services.classroom.pc_logins import clear_login, end_login, login_of
from services.classroom.state_capture import POWER_OFF_AFTER
from services.classroom.times import as_utc
from services.common import states
from services.common.classroom_models import ImageVersion
from services.common.config import Settings
from services.drivers.agent_client import AGENT_COMMAND
from services.drivers.base import WAIT, DriverError
from services.drivers.deploy import steps
from services.drivers.deploy.state_resume import STUDENT_STATE

if TYPE_CHECKING:
    from services.conductor.task import Task

LOGIN_PROMPT = "login.prompt"
MAINTENANCE = "maintenance"


def wanted(task: Task, settings: Settings) -> bool:
    """A room's PC with logins at boot, unless the deploy ends with the PC off (a session's
    end that saves the student's work and powers the PC off: nobody is there to log in)."""
    if (task.node.instance_info or {}).get(POWER_OFF_AFTER):
        return False
    policy = login_policy(task.session, task.node.id, settings)
    return policy is not None and policy.at_boot


def _prompting(task: Task) -> bool:
    current = task.node.driver_internal_info.get(AGENT_COMMAND)
    return login_of(task.node) is None or (
        isinstance(current, dict) and current.get("name") == LOGIN_PROMPT)


def advance(task: Task, settings: Settings) -> str | None:
    """WAIT while nobody has chosen; then the chosen action (instance_info set for it)."""
    node = task.node
    if _prompting(task):
        policy = login_policy(task.session, node.id, settings)
        params = {"node": node.uuid, "room": policy.room if policy else "",
                  "language": policy.language if policy else settings.pc_login.language}
        if steps.advance(task, LOGIN_PROMPT, lambda: params,
                         settings.deploy.agent_command_timeout_s) is None:
            return WAIT
        _apply(task)
    login = login_of(node)
    assert login is not None  # _apply checked it
    return str(login["action"])


def _apply(task: Task) -> None:
    login = login_of(task.node)
    if login is None:
        raise DriverError("the agent's login prompt ended but no login was recorded for the "
                          "node")
    action, user = login.get("action"), login.get("user")
    info = {k: v for k, v in (task.node.instance_info or {}).items() if k != STUDENT_STATE}
    if action != MAINTENANCE:
        version = task.session.scalar(select(ImageVersion).where(
            ImageVersion.uuid == login.get("image_version")))
        if version is None:
            raise DriverError(f"{user} chose {action} but the class's image version "
                              f"{login.get('image_version')} does not exist")
        info.update(instance_info(version), image_restore="delta")
        if action == "resume":
            info[STUDENT_STATE] = login.get("state")
    task.node.instance_info = info
    what = {"fresh": "a fresh start", "resume": f"to resume state {login.get('state')}",
            MAINTENANCE: "maintenance (nothing is restored)"}.get(str(action), str(action))
    task.record("deploying", f"{user} logged in at the PC and chose {what}.")


def log_out(task: Task) -> None:
    """The PC of a logged-in user was powered off: forget the user, its ports back to the
    idle VLAN (the provisioning VLAN of a room's PC) until the next login."""
    login = login_of(task.node)
    if login is None:
        return
    clear_login(task.node)
    _back_to_idle_vlan(task, f"The switch ports of the PC {login.get('user')} had logged in at")


def leave_class_vlan(task: Task, now: datetime, class_ended_at: datetime) -> dict[str, Any]:
    """A class's end that neither restores nor powers the PC off (a ``log-out`` room job): an
    ``active`` PC's ports back to the idle VLAN, whether the PC is on or off (switch work
    only), and its login ended (``end_login``: work not yet saved stays recorded for the next
    restore). A PC in another state is not on the class VLAN: nothing to do. When the switch
    fails, the login is kept (the PC is still on the class network) and ``error`` says why.
    A PC provisioned since ``class_ended_at`` (busy at the class's end, then restored for the
    next class) belongs to that use: nothing to do."""
    state = task.node.provision_state
    if state != states.S.ACTIVE.value or _provisioned_since(task.node, class_ended_at):
        return {"moved": False, "state": state, "error": None}
    error = _back_to_idle_vlan(task, "Leaving the class VLAN, the PC's switch ports")
    if error is None:
        end_login(task.node, now)
    return {"moved": error is None, "state": state, "error": error}


def _provisioned_since(node: Any, moment: datetime) -> bool:
    changed = node.provision_updated_at
    return changed is not None and as_utc(changed) > as_utc(moment)


def _back_to_idle_vlan(task: Task, subject: str) -> str | None:
    """The node's ports back on its provisioning VLAN (a room PC's idle VLAN); the failure,
    recorded on the node, or None."""
    try:
        task.driver.network.unconfigure_tenant_networks(task)
    except DriverError as exc:
        message = f"{subject} could not go back to the idle VLAN: {exc}"
        task.record("network", message, severity="ERROR")
        return message
    return None
