"""Node traits: standard names (os-traits style) or CUSTOM_ ones, at most 50 per node."""

from __future__ import annotations

import re
from typing import Any

from services.common.exceptions import Invalid

TRAIT_RE = re.compile(r"^(CUSTOM_[A-Z0-9_]+|[A-Z][A-Z0-9_]*)$")
MAX_TRAITS = 50


def check_traits(traits: Any) -> list[str]:
    """The traits as a list without duplicates; Invalid naming the first bad one."""
    if not isinstance(traits, list) or not all(isinstance(t, str) for t in traits):
        raise Invalid("Invalid traits: expected a list of strings.")
    for trait in traits:
        if len(trait) > 255 or not TRAIT_RE.match(trait):
            raise Invalid(f"Invalid trait {trait!r}: a trait is a standard trait name or "
                          "CUSTOM_ followed by upper-case letters, digits and underscores.")
    unique = list(dict.fromkeys(traits))
    if len(unique) > MAX_TRAITS:
        raise Invalid(f"A node can have at most {MAX_TRAITS} traits.")
    return unique
