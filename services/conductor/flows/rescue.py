"""Rescue and unrescue (API 1.38), as Ironic's conductor does them (do_node_rescue).

Rescue keeps the password in ``instance_info`` as ``rescue_password`` and, hashed as Ironic
hashes it (sha512-crypt, ``$6$<salt>$...``), ``hashed_rescue_password`` (both masked by the
API), validates the power, rescue and network interfaces (a refusal is 400 "Failed to rescue
instance ... Validation failed: ...", the password gone), then moves the node to ``rescuing``;
the rescue interface finishes in a worker: ``fake`` at once (``rescue``). Unrescue brings the
node back to ``active`` and forgets the password. A failure is ``rescue failed`` or
``unrescue failed`` with Ironic's "Failed to rescue: ..." / "Failed to unrescue: ...".
"""

from __future__ import annotations

from typing import Any

from services.common.exceptions import Invalid
from services.conductor.flows.steps import Step, validate
from services.conductor.task import Task

PASSWORD_KEYS = ("rescue_password", "hashed_rescue_password")
ROUNDS = 5000  # crypt(3)'s default for $6$, as Ironic's crypt_password(password, "$6$" + salt)


def hash_password(password: str) -> str:
    from passlib.hash import sha512_crypt  # here, not at start: only a rescue needs it

    return str(sha512_crypt.using(rounds=ROUNDS).hash(password))


def forget_password(task: Task) -> None:
    info = {k: v for k, v in task.node.instance_info.items() if k not in PASSWORD_KEYS}
    task.node.instance_info = info


def _supported(task: Task) -> None:
    if not task.driver.interfaces["rescue"].supported:
        raise Invalid(f"Driver {task.node.driver} does not support rescue (disabled or not "
                      "implemented).")


def prepare(options: dict[str, Any]) -> Step:
    def prepare(task: Task) -> None:
        node = task.node
        password = str(options.get("rescue_password") or "")
        task.node.instance_info = {**node.instance_info, "rescue_password": password,
                                   "hashed_rescue_password": hash_password(password)}
        try:
            _supported(task)
            validate(task, "power", "rescue", "network")
        except Invalid as exc:
            raise Invalid(f"Failed to rescue instance {node.instance_uuid} for node "
                          f"{node.uuid}: Validation failed: {exc.message}") from exc
        node.last_error = None
        task.process_event("rescue")
        task.commit()

    return prepare


def unrescue_prepare(task: Task) -> None:
    node = task.node
    try:
        validate(task, "power")
    except Invalid as exc:
        raise Invalid(f"Failed to unrescue instance {node.instance_uuid} for node "
                      f"{node.uuid}: Validation failed: {exc.message}") from exc
    _supported(task)
    node.last_error = None
    task.process_event("unrescue")
    task.commit()


def rescue(task: Task) -> None:
    """The rescue interface's work: ``fake`` has the node rescued at once."""
    if task.node.rescue_interface != "fake":
        forget_password(task)
        task.fail("rescue", f"Failed to rescue: the {task.node.rescue_interface} rescue "
                            "interface cannot rescue a node")
        return
    task.process_event("done")


def unrescue(task: Task) -> None:
    forget_password(task)
    if task.node.rescue_interface != "fake":
        task.fail("rescue", f"Failed to unrescue: the {task.node.rescue_interface} rescue "
                            "interface cannot unrescue a node")
        return
    task.process_event("done")
