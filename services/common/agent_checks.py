"""Checks of what an agent sends with its heartbeat, made by the API and by the conductor."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from services.common import validation
from services.common.exceptions import Invalid


def callback_url_problem(url: object) -> str | None:
    """Why ``url`` cannot be an agent's callback URL, or None if it can."""
    if not isinstance(url, str) or not url:
        return "callback_url is required: the URL the agent serves its command API on"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "callback_url must be an http:// or https:// URL with a host"
    if parts.username or parts.password or parts.query or parts.fragment:
        return "callback_url must not carry credentials, a query or a fragment"
    return None


def check_version(agent_version: object) -> str | None:
    if agent_version is not None and not isinstance(agent_version, str):
        raise Invalid("agent_version must be a string.")
    return None if agent_version is None else validation.text("agent_version", agent_version)


def agent_token_matches(expected: object, given: str | None) -> bool:
    """Whether ``given`` is the agent token a node holds (``expected``), in constant time.
    surrogatepass: a lone surrogate in a hostile token is a wrong token, not an error."""
    return isinstance(expected, str) and bool(expected) and isinstance(given, str) and \
        hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))
