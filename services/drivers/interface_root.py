"""The root of every driver interface (services/drivers/base.py declares the contracts that
subclass it): the steps every interface may offer, and the contract check of implementations."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from services.common.exceptions import DriverError
from services.drivers.contract_check import check_class
from services.drivers.step_spec import DriverStep

if TYPE_CHECKING:
    from services.conductor.task import Task

CONTRACTS_MODULE = "services.drivers.base"

# What an interface answers when the operation goes on asynchronously (an agent calls back).
WAIT = "wait"

Resume = Callable[[], None]


class Interface(ABC):
    """What every interface has. Its subclasses in services/drivers/base.py are contracts;
    others are implementations, checked against their contract when they are defined."""

    # False: a ``no-*`` implementation (the node has no such interface; validation says so).
    supported: ClassVar[bool] = True
    # The clean and deploy steps this implementation offers, by name (as Ironic's
    # ``@base.clean_step`` / ``@base.deploy_step``); services/conductor/step_plan.py plans them.
    clean_steps: ClassVar[dict[str, DriverStep]] = {}
    deploy_steps: ClassVar[dict[str, DriverStep]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__module__ not in (__name__, CONTRACTS_MODULE):
            check_class(cls, CONTRACTS_MODULE, Interface)

    @abstractmethod
    def validate(self, task: Task) -> None:
        """Raise DriverError (with a clear reason) if the node cannot use this interface."""

    def execute_step(self, task: Task, name: str, args: dict[str, Any], resume: Resume
                     ) -> str | None:
        """Run this implementation's step ``name`` (one of its ``clean_steps`` or
        ``deploy_steps``; a step with an agent command sends it to the agent): None when it is
        done, WAIT when the agent's heartbeats go on with it (``continue_step``). Before work
        that holds the node for long, call ``resume`` first."""
        raise DriverError(f"{type(self).__name__} has no step {name}")

    def continue_step(self, task: Task, name: str, args: dict[str, Any], resume: Resume
                      ) -> str | None:
        """On an agent's heartbeat, the step ``name`` that answered WAIT: WAIT until it is
        done, then None. The default: the heartbeat was what the step waited for (the ramdisk
        it booted is up)."""
        return None
