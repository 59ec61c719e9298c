"""An open serial console, as a console interface's ``open_console`` returns it."""

from __future__ import annotations

from abc import ABC, abstractmethod


class ConsoleStream(ABC):
    """An open serial console: bytes typed go to ``write``; the machine's output and the end
    of the stream go to the callbacks given to ``open_console``."""

    @abstractmethod
    def write(self, data: bytes) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def release(self) -> None:
        """Let go of the console for another conductor that takes the node over: by default
        the same as ``close``; a stream whose close would also end the new owner's session
        (an IPMI SOL payload) only forgets its own."""
        self.close()
