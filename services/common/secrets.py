"""Masking secrets (BMC passwords, keys, tokens, config drives) in what leaves the service."""

from __future__ import annotations

import re
from typing import Any

MASK = "******"
_SECRET_KEY = re.compile(
    r"password|passwd|pswd|secret|token|passphrase|private_key|kg_key|encrypted_key|configdrive",
    re.IGNORECASE,
)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


# scheme://user:password@host...: the password part of a URL (an image_source, a deploy kernel).
_URL_PASSWORD = re.compile(r"\b([a-z][a-z0-9+.-]*://[^/:@\s]*:)[^/@\s]+(@)", re.IGNORECASE)


def mask(value: Any) -> Any:
    """A copy of ``value`` whose secret-named entries, at any depth, read ``******``, and
    whose URLs have their password replaced by ``******``."""
    if isinstance(value, dict):
        return {k: (MASK if is_secret_key(str(k)) and v not in (None, "") else mask(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [mask(item) for item in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(rf"\g<1>{MASK}\g<2>", value)
    return value
