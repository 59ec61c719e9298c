"""Masking secrets (BMC passwords, keys, tokens, config drives) in what leaves the service.

The one scrubber of outward text: documents (`mask`), and every string that leaves (`scrub`:
API errors, ``last_error``, node history, validate reasons, log lines through `LogScrubber`).
A string is scrubbed of
- URL credentials: ``scheme://user:******@host`` (a password holding ``@`` is masked up to the
  last ``@`` before the host);
- ``key=value`` / ``"key": value`` pairs whose key names a secret (a password in an error's
  ``{...}`` dump, sushy's debug lines of a session's body);
- the secret values this process has seen (`remember`: every node's driver_info secrets when
  it is loaded or assigned), whatever their type and wherever they appear.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

MASK = "******"
_SECRET_WORDS = (r"password|passwd|pswd|secret|token|passphrase|private_key|kg_key|encrypted_key"
                 r"|configdrive|snmp_auth_key|snmp_priv_key")  # the last two: Ironic's _mask_fields
_SECRET_KEY = re.compile(_SECRET_WORDS, re.IGNORECASE)
# Values shorter than this are masked by key only: scrubbing "1" from every text would hide
# everything else and protect nothing.
MIN_KNOWN_LENGTH = 4
# Longer values (a config drive, a certificate) are masked by key only: they are not passwords
# a message would quote, and would make the pattern of known values huge.
MAX_KNOWN_LENGTH = 512


@functools.lru_cache(maxsize=4096)  # keys repeat: every document renders the same few
def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


# scheme://user:password@host...: the password part of a URL (an image_source, a BMC address).
# Greedy up to the last "@" before the path, so a password holding "@" is masked whole.
_URL_PASSWORD = re.compile(r"\b([a-z][a-z0-9+.-]*://[^/:@\s]*:)([^/\s]*)(@)", re.IGNORECASE)
# "ipmi_password": "x", 'redfish_password': 12, password=x, X-Auth-Token: x (quotes kept).
_KEY_VALUE = re.compile(
    rf"""(["']?[\w-]*(?:{_SECRET_WORDS})[\w-]*["']?\s*[:=]\s*)"""
    r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,;&}\]'"]+)""",
    re.IGNORECASE)


def _masked_pair(match: re.Match[str]) -> str:
    value = match.group(2)
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group(1)}{quote}{MASK}{quote}"


def mask(value: Any) -> Any:
    """A copy of ``value`` whose secret-named entries, at any depth, read ``******``, and
    whose strings are scrubbed (`scrub`)."""
    if isinstance(value, dict):
        return {k: (MASK if is_secret_key(str(k)) and v not in (None, "") else mask(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [mask(item) for item in value]
    if isinstance(value, str):
        return scrub(value)
    return value


def scrub(text: str) -> str:
    """``text`` without URL passwords, secret-named values, or any secret value seen."""
    # Each pattern only where it can match: _KEY_VALUE is slow on text without a secret word,
    # and every log line and every string of a document passes here.
    if "://" in text:
        text = _URL_PASSWORD.sub(rf"\g<1>{MASK}\g<3>", text)
    if _SECRET_KEY.search(text):
        text = _KEY_VALUE.sub(_masked_pair, text)
    return _KNOWN.scrub(text)


# -- secret values seen --------------------------------------------------------------------


def secret_values(value: Any, secret: bool = False) -> set[str]:
    """Every form a secret inside ``value`` may take in a message: the text of each value under
    a secret-named key, and of each of its items (a number, a list, a dict)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            found |= secret_values(item, secret or is_secret_key(str(key)))
    elif isinstance(value, list | tuple):
        for item in value:
            found |= secret_values(item, secret)
    elif isinstance(value, str):  # a password inside a URL (a redfish_address)
        found |= {match.group(2) for match in _URL_PASSWORD.finditer(value)}
    if secret and value not in (None, "") and not isinstance(value, bool):
        found |= {str(value), repr(value)} if not isinstance(value, str) else {value}
    return {text for text in found if MIN_KNOWN_LENGTH <= len(text) <= MAX_KNOWN_LENGTH}


class _KnownSecrets:
    """The secret values this process has seen, as one regular expression (longest first)."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._guard = threading.Lock()

    def add(self, values: Iterable[str]) -> None:
        new = set(values) - self._values  # the set is replaced, never changed in place
        if new:
            with self._guard:
                self._values = self._values | new
                self._pattern = None

    def scrub(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None:
            with self._guard:
                if not self._values:
                    return text
                ordered = sorted(self._values, key=len, reverse=True)
                pattern = self._pattern = re.compile("|".join(map(re.escape, ordered)))
        return pattern.sub(MASK, text)


_KNOWN = _KnownSecrets()


def remember(value: Any) -> None:
    """Scrub the secrets inside ``value`` (a driver_info) from every text from now on."""
    if value:
        _KNOWN.add(secret_values(value))


# -- logs ----------------------------------------------------------------------------------


class LogScrubber(logging.Filter):
    """Renders each record's message scrubbed, so no handler (and no third-party logger:
    sushy's debug lines, urllib3) writes a secret. Installed on the root handlers."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format: leave it to the handler to report
            return True
        record.msg, record.args = scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def scrub_logs(handlers: Iterable[logging.Handler] | None = None) -> None:
    """Install `LogScrubber` on ``handlers`` (default: the root logger's), once each."""
    for handler in handlers if handlers is not None else logging.getLogger().handlers:
        if not any(isinstance(f, LogScrubber) for f in handler.filters):
            handler.addFilter(LogScrubber())
