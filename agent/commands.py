"""Commands and their documents: run short ones at once, long ones in a thread, one at a time."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.errors import BadParams, CommandError

LOG = logging.getLogger(__name__)
RUNNING, SUCCEEDED, FAILED = "RUNNING", "SUCCEEDED", "FAILED"
KEPT_COMMANDS = 100


class Busy(RuntimeError):
    """A long command is already running."""


@dataclass
class Progress:
    done_bytes: int = 0
    total_bytes: int | None = None

    def update(self, done: int, total: int | None = None) -> None:
        self.done_bytes = done
        if total is not None:
            self.total_bytes = total


@dataclass
class Command:
    name: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = RUNNING
    result: dict[str, Any] | None = None
    error: str | None = None
    progress: Progress | None = None

    def document(self) -> dict[str, Any]:
        progress = None if self.progress is None else {
            "done_bytes": self.progress.done_bytes, "total_bytes": self.progress.total_bytes}
        return {"id": self.id, "command_name": self.name, "command_status": self.status,
                "command_result": self.result, "command_error": self.error,
                "progress": progress}


Runner = Callable[[Progress], dict[str, Any]]


@dataclass(frozen=True)
class Spec:
    """``prepare(params)`` checks the parameters (BadParams: nothing done) and returns what runs."""
    prepare: Callable[[dict[str, Any]], Runner]
    long: bool = False


class Commands:
    """``on_finished`` is called when a long command ends (succeeded or failed): the agent
    heartbeats then, so that the conductor hears of the end at once, not an interval later
    (as Ironic's agent forces a heartbeat after an asynchronous command)."""

    def __init__(self, specs: dict[str, Spec],
                 on_finished: Callable[[], None] = lambda: None) -> None:
        self.specs = specs
        self.on_finished = on_finished
        self._lock = threading.Lock()
        self._commands: dict[str, Command] = {}
        self._long: Command | None = None

    def start(self, name: str, params: dict[str, Any]) -> Command:
        spec = self.specs.get(name)
        if spec is None:
            raise BadParams(f"unknown command {name!r}; known: {', '.join(sorted(self.specs))}")
        runner = spec.prepare(params)
        command = Command(name=name, progress=Progress() if spec.long else None)
        with self._lock:
            if spec.long:
                if self._long is not None and self._long.status == RUNNING:
                    raise Busy(f"command {self._long.name} ({self._long.id}) is still running")
                self._long = command
            self._remember(command)
        if spec.long:
            threading.Thread(target=self._execute_long, args=(command, runner), name=name,
                             daemon=True).start()
        else:
            self._execute(command, runner)
        return command

    def _remember(self, command: Command) -> None:
        self._commands[command.id] = command
        while len(self._commands) > KEPT_COMMANDS:
            oldest = next(iter(self._commands))
            if self._commands[oldest].status == RUNNING:
                break
            del self._commands[oldest]

    def _execute(self, command: Command, runner: Runner) -> None:
        LOG.info("command %s (%s) started", command.name, command.id)
        try:
            result = runner(command.progress or Progress())
        except CommandError as exc:
            command.error, command.status = str(exc), FAILED
        except Exception as exc:
            LOG.exception("command %s crashed", command.name)
            command.error, command.status = f"{type(exc).__name__}: {exc}", FAILED
        else:
            command.result, command.status = result, SUCCEEDED
        if command.status == FAILED:
            LOG.error("command %s (%s) failed: %s", command.name, command.id, command.error)
        else:
            LOG.info("command %s (%s) succeeded", command.name, command.id)

    def _execute_long(self, command: Command, runner: Runner) -> None:
        self._execute(command, runner)
        self.on_finished()

    def get(self, command_id: str) -> Command | None:
        with self._lock:
            return self._commands.get(command_id)

    def all(self) -> list[Command]:
        with self._lock:
            return list(self._commands.values())
