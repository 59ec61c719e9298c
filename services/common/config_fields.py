"""How a settings section reads its ENCLUME_* variables (shared by every section module)."""

from __future__ import annotations

import os
from typing import Any

from pydantic import AliasGenerator, Field
from pydantic_settings import SettingsConfigDict

DelayRange = tuple[float, float]


def section_config(prefix: str) -> SettingsConfigDict:
    """A section's config: its fields read ENCLUME_<prefix><FIELD> unless they name their own."""
    return SettingsConfigDict(
        env_file=os.environ.get("ENCLUME_CONFIG_FILE"),
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
        alias_generator=AliasGenerator(
            validation_alias=lambda field: f"ENCLUME_{prefix}{field.upper()}"),
    )


def env_var(name: str, default: Any = None, **constraints: Any) -> Any:
    """A field read from the variable ENCLUME_<name>, whatever its section's prefix."""
    return Field(default=default, validation_alias=f"ENCLUME_{name}", **constraints)
