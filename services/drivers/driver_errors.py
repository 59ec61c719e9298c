"""The errors a driver raises besides DriverError itself (services/common/exceptions.py):
re-exported by services/drivers/base.py, where the drivers import them from."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from services.common.exceptions import DriverError

if TYPE_CHECKING:
    from services.conductor.task import Task

LOG = logging.getLogger("services.drivers.base")


class MissingParameters(DriverError):
    pass


class ManualActionRequired(DriverError):
    """The interface cannot do this on this machine now; a person has to (WoL power off)."""


class UnsupportedDriverExtension(DriverError):
    """The implementation has no such optional method (Ironic's exception of that name)."""


def unsupported(task: Task, extension: str) -> DriverError:
    return UnsupportedDriverExtension(
        f"Driver {task.node.driver} does not support {extension} (disabled or not "
        "implemented).")


def unexpected_error(protocol: str, what: str, where: str, error: BaseException) -> DriverError:
    """An exception of a type a BMC library is not documented to raise (its bug, or an answer
    it could not parse): logged with its traceback (scrubbed, as every log line), shown as
    Ironic's "<protocol> call failed" without the raw text, which may quote anything."""
    LOG.warning("%s %s at %s raised %s", protocol, what, where, type(error).__name__,
                exc_info=error)
    return DriverError(f"{protocol} call failed: {what} at {where} (unexpected "
                       f"{type(error).__name__}; the details are in the conductor's log).")
