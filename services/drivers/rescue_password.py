"""The rescue password in ``instance_info``: kept as given (``rescue_password``) and hashed as
Ironic hashes it (sha512-crypt, ``$6$<salt>$...``: ``hashed_rescue_password``, what the agent
gets), both masked by the API, both forgotten once the rescue is over or failed."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.conductor.task import Task

PASSWORD_KEYS = ("rescue_password", "hashed_rescue_password")
ROUNDS = 5000  # crypt(3)'s default for $6$, as Ironic's crypt_password(password, "$6$" + salt)


def hash_password(password: str) -> str:
    from passlib.hash import sha512_crypt  # here, not at start: only a rescue needs it

    return str(sha512_crypt.using(rounds=ROUNDS).hash(password))


def keep_password(task: Task, password: str) -> None:
    """Keep ``password`` and its hash on the node. Not `secrets.remember`ed: a password such
    as "other" would then be masked in every text of the process; the keys name a password,
    which masks both wherever they are shown (services/common/secrets.py)."""
    task.node.instance_info = {**task.node.instance_info, "rescue_password": password,
                               "hashed_rescue_password": hash_password(password)}


def forget_password(task: Task) -> None:
    info = {k: v for k, v in task.node.instance_info.items() if k not in PASSWORD_KEYS}
    task.node.instance_info = info
