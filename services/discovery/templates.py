"""Templates in discovery rules: ``{name}`` is replaced by a value of the inventory
(services/discovery/facts.py VARIABLES); ``{{`` and ``}}`` are literal braces.

Deliberately not ``str.format``: a template cannot reach attributes or indexes of anything, only
the flat values it names, and every name is checked when the rules file is read.
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


class TemplateError(ValueError):
    pass


def variables_of(template: str, known: frozenset[str]) -> set[str]:
    """The variables ``template`` uses; TemplateError for unknown ones or stray braces."""
    found: set[str] = set()
    for match in _TOKEN.finditer(template):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        name = match.group(1)
        if name is None:
            raise TemplateError(f"a lone {token!r} in {template!r} (write {token * 2} for a "
                                f"literal brace)")
        if name not in known:
            raise TemplateError(f"unknown variable {{{name}}} in {template!r}; known: "
                                f"{', '.join(sorted(known))}")
        found.add(name)
    return found


def variables_in(value: Any, known: frozenset[str]) -> set[str]:
    """The variables used by every string inside ``value`` (dicts and lists, at any depth)."""
    if isinstance(value, str):
        return variables_of(value, known)
    if isinstance(value, dict):
        return set().union(*(variables_in(v, known) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(variables_in(v, known) for v in value))
    return set()


def render(template: str, values: dict[str, str | None]) -> str:
    """``template`` with its variables replaced (checked templates, every value present)."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        value = values.get(match.group(1) or "")
        if value is None:
            raise TemplateError(f"no value for {token}")
        return value

    return _TOKEN.sub(replace, template)


def render_all(value: Any, values: dict[str, str | None]) -> Any:
    """A copy of ``value`` with every string inside it rendered."""
    if isinstance(value, str):
        return render(value, values)
    if isinstance(value, dict):
        return {key: render_all(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [render_all(item, values) for item in value]
    return value
