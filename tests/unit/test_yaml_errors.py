"""YAML errors are described by where and what, never by the text (it may hold a password)."""

from __future__ import annotations

import pytest
import yaml

from services.common.yaml_errors import YamlProblem, describe_yaml_error

SECRET = "s3cr3t-pass"


@pytest.mark.parametrize(("text", "line", "start"), [
    (f'user: a\npassword: "{SECRET}\n', 3, "while scanning a quoted scalar"),
    (f"a: [{SECRET}\n", 2, "while parsing a flow sequence"),
    (f"a: {SECRET}: b\n", 1, "mapping values are not allowed here"),
    (f"a: !secret {SECRET}\n", 1, "could not determine a constructor"),
])
def test_description_has_the_line_and_no_text(text: str, line: int, start: str) -> None:
    with pytest.raises(yaml.YAMLError) as caught:
        yaml.safe_load(text)
    assert SECRET in str(caught.value)  # what PyYAML itself would have printed
    problem = describe_yaml_error(caught.value)
    assert problem.line == line
    assert problem.description.startswith(start), problem.description
    assert SECRET not in str(problem)
    assert str(problem) == f"line {line}: {problem.description}"


def test_error_without_marks_is_named_by_its_type() -> None:
    problem = describe_yaml_error(yaml.YAMLError(f"bad {SECRET}"))
    assert problem == YamlProblem(None, "YAMLError")
    assert str(problem) == "YAMLError"
