"""A text console for the login prompt: a tty (the PC's screen, a serial line) or a pty in tests.

Line mode (the kernel's line discipline edits the line: backspace works, Enter ends it), echo
off for passwords, whole screens drawn with two ANSI sequences (clear, home) that every Linux
console, serial terminal and terminal emulator knows. Nothing needs a mouse or a library.
"""

from __future__ import annotations

import os
import termios
import unicodedata

CLEAR = "\x1b[2J\x1b[H"
BOLD, PLAIN = "\x1b[1m", "\x1b[0m"
MAX_LINE = 1024


class ConsoleClosed(RuntimeError):
    """The terminal hung up (end of file): nobody can answer the prompt on it."""


def printable(value: object) -> str:
    """``value`` as text without control characters (a label cannot redraw the screen)."""
    return "".join(ch for ch in str(value) if unicodedata.category(ch)[0] != "C")


class Console:
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        try:
            self._saved = termios.tcgetattr(self.fd)
        except termios.error:
            os.close(self.fd)
            raise
        attributes = termios.tcgetattr(self.fd)
        attributes[0] |= termios.ICRNL  # Enter sends CR on a serial line: a line's end
        attributes[1] |= termios.OPOST | termios.ONLCR
        attributes[3] |= termios.ICANON | termios.ECHO | termios.ECHOE
        termios.tcsetattr(self.fd, termios.TCSANOW, attributes)
        termios.tcflush(self.fd, termios.TCIFLUSH)  # keys typed before the prompt: not a login

    def write(self, text: str) -> None:
        data = text.encode("utf-8")
        while data:
            data = data[os.write(self.fd, data):]

    def screen(self, *lines: str) -> None:
        self.write(CLEAR + "\n".join(lines) + "\n")

    def _echo(self, on: bool) -> None:
        attributes = termios.tcgetattr(self.fd)
        attributes[3] = attributes[3] | termios.ECHO if on else attributes[3] & ~termios.ECHO
        termios.tcsetattr(self.fd, termios.TCSANOW, attributes)

    def read_line(self, prompt: str, echo: bool = True) -> str:
        if not echo:  # before the prompt shows: a key typed as soon as it does is not echoed
            self._echo(False)
        try:
            self.write(prompt)
            data = b""
            while not data.endswith(b"\n"):
                chunk = os.read(self.fd, MAX_LINE)
                if not chunk:
                    raise ConsoleClosed("the console hung up")
                data += chunk
                if len(data) > MAX_LINE:
                    data = data[-MAX_LINE:]
        finally:
            if not echo:
                self._echo(True)
                self.write("\n")
        return data.decode("utf-8", errors="replace").strip()

    def close(self) -> None:
        try:
            termios.tcsetattr(self.fd, termios.TCSANOW, self._saved)
        finally:
            os.close(self.fd)
