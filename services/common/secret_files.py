"""A random secret kept in a file of the data directory, made once by the first process.

For secrets every process of one host must share without configuration (enclume-aio and its
boot child, API services behind one address): the image tokens' HMAC key, the web page's
cookie key. The file is written under a private name and hard-linked into place, so no process
ever reads it half-written and the first to link it wins.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def host_secret(path: Path) -> str:
    """The secret in ``path``, made (random, mode 0600) when the file does not exist."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(48))
    try:
        os.link(partial, path)
    except FileExistsError:
        pass
    finally:
        partial.unlink()
    return path.read_text().strip()
