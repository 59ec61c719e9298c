"""Describing a YAML parse error without quoting the text that was parsed.

``str()`` of a PyYAML error carries a snippet of the offending line, and that line may hold
a BMC password or a token (``password: "s3cr3t`` with its quote left open). Every message
about a YAML file or value that reaches an operator is built from ``describe_yaml_error``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import yaml


@dataclass(frozen=True)
class YamlProblem:
    line: int | None  # 1-based; None when PyYAML did not say where
    description: str  # PyYAML's context and problem, never the text itself

    def __str__(self) -> str:
        if self.line is None:
            return self.description
        return f"line {self.line}: {self.description}"


def describe_yaml_error(exc: yaml.YAMLError) -> YamlProblem:
    """Where and what, from the error's marks and descriptions only (not its snippet)."""
    import yaml
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = "; ".join(str(part) for part in (exc.context, exc.problem) if part)
        return YamlProblem(line, what or type(exc).__name__)
    return YamlProblem(None, type(exc).__name__)
