"""A users file of classroom users for API tests, and the checks of the API's answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bcrypt
import httpx
import yaml

from tests.support.api_stack import fault


def write_users_file(directory: Path, users: dict[str, tuple[list[str], list[str]]],
                     password: str) -> Path:
    """``users``: name → (roles, rooms), all with ``password`` (bcrypt at its lowest cost)."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    path = directory / "users.yaml"
    path.write_text(yaml.safe_dump({"users": [
        {"name": name, "password_hash": hashed, "roles": roles, "rooms": rooms}
        for name, (roles, rooms) in users.items()]}))
    return path


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def refused(response: httpx.Response, status: int, fragment: str) -> None:
    """An error answer of ``status`` whose message holds ``fragment``."""
    message = fault(response, status)
    assert fragment in message, message
