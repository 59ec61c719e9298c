"""Settings for tests: section dicts over a test module's defaults, field by field."""

from __future__ import annotations

from typing import Any

from services.common.config import Settings

Sections = dict[str, dict[str, Any]]


def merged_settings(defaults: Sections, **sections: dict[str, Any]) -> Settings:
    """`Settings(api={...}, ...)` where each section's fields in `sections` win over `defaults`."""
    names = defaults.keys() | sections.keys()
    return Settings(**{name: {**defaults.get(name, {}), **sections.get(name, {})}
                       for name in sorted(names)})
