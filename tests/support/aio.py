"""Test helpers around a real enclume-aio process."""

from __future__ import annotations

from pathlib import Path

import bcrypt

from lab.local_service import Server, free_port, running_aio

__all__ = ["Server", "free_port", "running_aio", "write_htpasswd"]


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    lines = [f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=5)).decode()}"
             for user, pw in users.items()]
    path.write_text("\n".join(lines) + "\n")
    return path
