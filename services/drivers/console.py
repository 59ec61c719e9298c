"""The ``fake`` and ``no-console`` console interfaces.

``fake`` is a machine whose serial line echoes what is typed, after a greeting naming the node:
the whole console path (the conductor's sessions, the web and TCP endpoints, the API) works
without a BMC, for tests and development.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from services.drivers.base import ConsoleInterface, ConsoleStream, DriverError

if TYPE_CHECKING:
    from services.conductor.task import Task


class _EchoLine(ConsoleStream):
    def __init__(self, on_output: Callable[[bytes], None],
                 on_lost: Callable[[str], None]) -> None:
        self._on_output = on_output
        self._on_lost = on_lost
        self._open = True

    def write(self, data: bytes) -> None:
        if self._open:
            self._on_output(data)

    def close(self) -> None:
        self._open = False


class FakeConsole(ConsoleInterface):
    console_type = "fake"

    def validate(self, task: Task) -> None:
        return None

    def open_console(self, task: Task, on_output: Callable[[bytes], None],
                     on_lost: Callable[[str], None]) -> ConsoleStream:
        line = _EchoLine(on_output, on_lost)
        on_output(f"fake console of node {task.node.uuid}\r\n".encode())
        return line


class NoConsole(ConsoleInterface):
    """``no-console``: the node has no console (the conductor refuses before calling)."""

    supported = False

    def validate(self, task: Task) -> None:
        return None

    def open_console(self, task: Task, on_output: Callable[[bytes], None],
                     on_lost: Callable[[str], None]) -> ConsoleStream:
        raise DriverError("the no-console interface has no console")
