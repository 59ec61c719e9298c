"""The ``login.prompt`` command: a user logs in at the PC's console before its disk is restored.

The conductor holds a deploy of a PC whose room takes logins at this command; the agent shows a
full-screen prompt on its console (``enclume.login_console=``, /dev/console by default): user
name, password (not echoed), then the user's choices (start fresh, resume one of their states,
maintenance for teachers). The credentials go to the API's ``/enclume/v1/pc-logins`` over TLS
only (an http API is refused before anything is sent), with the agent's token; the choice goes
to ``/pc-logins/choice`` with the ticket the login answered. The command ends with the accepted
choice; a refusal is shown on the next screen and the prompt starts again.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from agent import api_client
from agent.api_client import ApiError
from agent.console import BOLD, PLAIN, Console, printable
from agent.errors import BadParams, CommandError
from agent.login_texts import LANGUAGES, text

PATH = "/enclume/v1/pc-logins"


@dataclass(frozen=True)
class LoginRequest:
    node: str
    room: str
    language: str


def parse_params(params: dict[str, Any]) -> LoginRequest:
    node, room = params.get("node"), params.get("room", "")
    language = params.get("language", "en")
    if not isinstance(node, str) or not node:
        raise BadParams("node must be the node's UUID")
    if not isinstance(room, str):
        raise BadParams("room must be a room's name")
    if language not in LANGUAGES:
        raise BadParams(f"language must be one of {', '.join(LANGUAGES)}")
    return LoginRequest(node, room, language)


@dataclass(frozen=True)
class LoginApi:
    api_url: str
    node: str
    token: str
    timeout_s: float

    def _post(self, path: str, document: dict[str, Any]) -> dict[str, Any]:
        if not self.api_url.startswith("https://"):
            raise ApiError(f"credentials go to the API over TLS only, not to {self.api_url}",
                           tls_failed=True)
        return api_client.post_json(f"{self.api_url}{path}", {"node": self.node, **document},
                                    {"X-Agent-Token": self.token}, self.timeout_s)

    def login(self, user: str, password: str) -> dict[str, Any]:
        return self._post(PATH, {"user": user, "password": password})

    def choose(self, ticket: str, choice: dict[str, Any]) -> dict[str, Any]:
        document = {"ticket": ticket, "action": choice["action"]}
        if choice["action"] == "resume":
            document["state"] = choice["state"]["uuid"]
        return self._post(f"{PATH}/choice", document)


def refusal(language: str, error: ApiError, choosing: bool = False) -> str:
    """What the user reads about ``error``."""
    if error.tls_failed:
        return text(language, "The connection to the server is not secure: ask your teacher.")
    if error.status is None:
        return text(language, "The Enclume server cannot be reached: ask your teacher.")
    if error.status == 401:
        return text(language, "Your login has expired: log in again." if choosing
                    else "Wrong user name or password.")
    if error.status == 429:
        minutes = max(1, math.ceil((error.retry_after_s or 60) / 60))
        return text(language, "Too many failed attempts: wait {minutes} min and try again.",
                    minutes=minutes)
    if error.status == 503:
        return text(language, "The user directory cannot be reached: try again in a few "
                              "minutes.")
    return text(language, "Refused: {reason}", reason=printable(error.fault or error))


def _size(size_bytes: object) -> str:
    size = float(size_bytes) if isinstance(size_bytes, int | float) else 0.0
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def choice_line(language: str, choice: dict[str, Any], session: dict[str, Any] | None) -> str:
    if choice["action"] == "fresh":
        return text(language, "Start fresh from {image} {version}",
                    image=printable((session or {}).get("image", "")),
                    version=printable((session or {}).get("version", "")))
    if choice["action"] == "resume":
        state = choice["state"]
        return text(language, "Resume \"{label}\" (saved {date}, {size})",
                    label=printable(state.get("label") or state.get("uuid")),
                    date=printable(str(state.get("last_used_at") or "")[:16].replace("T", " ")),
                    size=_size(state.get("size_bytes")))
    return text(language, "Maintenance: the disk starts as it is, nothing restored")


class Prompt:
    def __init__(self, console: Console, api: LoginApi, request: LoginRequest) -> None:
        self.console, self.api, self.request = console, api, request
        self.language = request.language

    def _header(self, message: str | None) -> list[str]:
        lines = [BOLD + text(self.language, "Enclume: log in to use this PC") + PLAIN]
        if self.request.room:
            lines.append(text(self.language, "Room {room}", room=printable(self.request.room)))
        lines.append("")
        if message:
            lines += [BOLD + "!! " + message + PLAIN, ""]
        return lines

    def run(self) -> dict[str, Any]:
        """Until a choice is accepted: its answer (``action``, ``user``, ``state``...)."""
        message: str | None = None
        while True:
            self.console.screen(*self._header(message))
            user = self.console.read_line(text(self.language, "User name: "))
            if not user:
                message = None
                continue
            password = self.console.read_line(text(self.language, "Password (not shown): "),
                                              echo=False)
            self.console.write(text(self.language, "Checking…") + "\n")
            try:
                answer = self.api.login(user, password)
            except ApiError as exc:
                message = refusal(self.language, exc)
                continue
            choice = self._pick(answer)
            if choice is None:
                message = None
                continue
            try:
                accepted = self.api.choose(str(answer.get("ticket")), choice)
            except ApiError as exc:
                message = refusal(self.language, exc, choosing=True)
                continue
            self.console.write(text(self.language, "Starting: {action}. The PC restarts on its "
                                    "own.", action=text(self.language, _ACTION_WORDS[
                                        accepted.get("action", choice["action"])])) + "\n")
            return accepted

    def _pick(self, answer: dict[str, Any]) -> dict[str, Any] | None:
        choices = [c for c in answer.get("choices") or []
                   if isinstance(c, dict) and c.get("action") in _ACTION_WORDS]
        session = answer.get("session")
        user = printable(answer.get("user", ""))
        if session:
            image = printable(f"{session.get('image', '')} {session.get('version', '')}")
            name = printable(session.get("name") or "")
            greeting = text(self.language, "Hello {user}. Class: {session}", user=user,
                            session=f"{name} ({image})" if name else image)
        else:
            greeting = text(self.language, "Hello {user}. No class is on in this room.",
                            user=user)
        message: str | None = None
        while True:
            lines = [*self._header(message), greeting, ""]
            lines += [f"  {number}) {choice_line(self.language, choice, session)}"
                      for number, choice in enumerate(choices, 1)]
            lines += [f"  0) {text(self.language, 'Log out')}", ""]
            self.console.screen(*lines)
            typed = self.console.read_line(text(self.language, "Your choice [1-{last}, 0 to "
                                                "log out]: ", last=len(choices)))
            if typed == "0":
                return None
            if typed.isdigit() and 1 <= int(typed) <= len(choices):
                return choices[int(typed) - 1]
            message = text(self.language, "Type a number from the list.")


_ACTION_WORDS = {"fresh": "fresh start", "resume": "resume", "maintenance": "maintenance"}


def run(request: LoginRequest, api_url: str, token: str | None, console_path: str,
        timeout_s: float) -> dict[str, Any]:
    """The command: the prompt on ``console_path`` until a choice is accepted."""
    if not token:
        raise CommandError("the agent has no token yet: it cannot ask the API for logins")
    console = Console(console_path)
    # The ramdisk logs on its console: only warnings while a user reads and types there.
    logging.disable(logging.INFO)
    try:
        accepted = Prompt(console, LoginApi(api_url, request.node, token, timeout_s),
                          request).run()
    finally:
        logging.disable(logging.NOTSET)
        console.close()
    state = accepted.get("state")
    return {"action": accepted.get("action"), "user": accepted.get("user"),
            "state": state.get("uuid") if isinstance(state, dict) else None,
            "image_version": accepted.get("image_version")}
