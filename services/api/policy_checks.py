"""oslo.policy's check-string language, parsed and answered on Enclume's credentials and targets.

A policy file's rules (services/api/policy_file.py) are check strings: ``role:admin``,
``rule:name``, ``project_id:%(node.owner)s``, ``system_scope:all``, ``@`` (always), ``!``
(never), the empty string (always), ``'literal':%(target.field)s``, joined with ``and``,
``or``, ``not`` and parentheses. This is oslo.policy's grammar and its answers (``_parser``,
``_checks``: whitespace-separated tokens, ``not`` binds tighter than ``and``, ``and`` than
``or``; a ``%(field)s`` the target lacks fails the check; values compare as text), not
oslo.policy itself: its parser imports oslo.context and stevedore into the API, and answers
a check string it cannot parse with "never" after a log line, where Enclume refuses to start.
A parsed check is a tree of frozen dataclasses: equal trees are equal checks, as oslo.policy
compares a file's rule with a deprecated default.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.api.policy import (
    ANY_OBJECT,
    OBJECT_FIELDS,
    SERVICE_PROJECT,
    Check,
    Credentials,
    ObjectNeeded,
    Target,
)


class CheckSyntaxError(ValueError):
    """A check string that does not parse; the message says what and where."""


def caller_values(credentials: Credentials) -> dict[str, Any]:
    """Ironic's RequestContext.to_policy_values, as far as Enclume knows the caller."""
    values: dict[str, Any] = {
        "roles": sorted(credentials.roles),
        "system_scope": "all" if credentials.system else None,
        "project_id": credentials.project_id, "project_name": credentials.project_name,
        "domain_id": credentials.domain_id, "is_public_api": False}
    if credentials.system:
        values["system"] = "all"  # oslo.policy's copy of system_scope
    return values


# The caller's values a generic check can compare: a check of another (user_id, ...) would
# be false for everyone, and true under ``not``.
CALLER_FIELDS = frozenset(caller_values(Credentials(frozenset(), system=True)))


class _AnyObjectValues(dict[str, Any]):
    """ANY_OBJECT's target dict: a field of the object is not known."""

    def __missing__(self, key: str) -> Any:
        if key in OBJECT_FIELDS:
            raise ObjectNeeded(key)
        raise KeyError(key)


class Question:
    """One decision: what the caller and the object are, as Ironic gives them to
    oslo.policy, built once for every check and ``rule:`` reference it answers."""

    def __init__(self, credentials: Credentials, target: Target,
                 rules: Mapping[str, Check]) -> None:
        self.credentials = credentials
        self.target = target
        self.rules = rules  # what ``rule:name`` names
        self.creds = caller_values(credentials)
        # Ironic's target dict: the caller's values, the service project, the object's.
        values = {**self.creds, "config.service_project_name": SERVICE_PROJECT,
                  **target.values()}
        self.target_values = _AnyObjectValues(values) if target is ANY_OBJECT else values


class Node:
    def answer(self, question: Question) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class Constant(Node):
    value: bool  # ``@`` or the empty string: True; ``!``: False

    def answer(self, question: Question) -> bool:
        return self.value


@dataclass(frozen=True)
class RuleRef(Node):
    name: str

    def answer(self, question: Question) -> bool:
        check = question.rules.get(self.name)
        if isinstance(check, FileRule):
            return check.node.answer(question)
        if check is None:
            return False
        if check(question.credentials, question.target):
            return True
        if question.target is ANY_OBJECT:
            raise ObjectNeeded(self.name)  # a default: false with no object, maybe not with one
        return False


@dataclass(frozen=True)
class RoleCheck(Node):
    match: str

    def answer(self, question: Question) -> bool:
        try:
            role = self.match % question.target_values
        except KeyError:
            return False
        return role.lower() in (name.lower() for name in question.creds["roles"])


@dataclass(frozen=True)
class GenericCheck(Node):
    """``kind:match``: the caller's ``kind`` (a dotted path into its values, or a literal
    such as ``True`` or ``'text'``) equals ``match`` with the target's fields put in."""

    kind: str
    match: str
    literal: str | None  # str() of the kind when it is a Python literal

    def answer(self, question: Question) -> bool:
        try:
            match = self.match % question.target_values
        except KeyError:
            return False
        if self.literal is not None:
            return match == self.literal
        return _found(question.creds, self.kind.split("."), match)


@dataclass(frozen=True)
class Not(Node):
    operand: Node

    def answer(self, question: Question) -> bool:
        return not self.operand.answer(question)


@dataclass(frozen=True)
class And(Node):
    operands: tuple[Node, ...]

    def answer(self, question: Question) -> bool:
        return _joined(self.operands, question, decisive=False)


@dataclass(frozen=True)
class Or(Node):
    operands: tuple[Node, ...]

    def answer(self, question: Question) -> bool:
        return _joined(self.operands, question, decisive=True)


def _joined(operands: tuple[Node, ...], question: Question, decisive: bool) -> bool:
    """``decisive`` when an operand answers it (``or``: True, ``and``: False), else the other;
    on ANY_OBJECT an operand the object decides leaves it open unless another is decisive."""
    needed: ObjectNeeded | None = None
    for operand in operands:
        try:
            if operand.answer(question) == decisive:
                return decisive
        except ObjectNeeded as exc:
            needed = exc
    if needed is not None:
        raise needed
    return not decisive


def _found(value: Any, path: list[str], match: str) -> bool:
    """oslo.policy's GenericCheck._find_in_dict: a list matches when one of its items does."""
    if not path:
        return match == str(value)
    try:
        value = value[path[0]]
    except (KeyError, TypeError, IndexError):
        return False
    if isinstance(value, list):
        return any(_found(item, path[1:], match) for item in value)
    return _found(value, path[1:], match)


def _leaves(node: Node) -> Iterator[Node]:
    if isinstance(node, Not):
        yield from _leaves(node.operand)
    elif isinstance(node, And | Or):
        for operand in node.operands:
            yield from _leaves(operand)
    else:
        yield node


def caller_fields(node: Node) -> set[str]:
    """The caller's fields a check compares (the first name of each generic check's path)."""
    return {leaf.kind.split(".")[0] for leaf in _leaves(node)
            if isinstance(leaf, GenericCheck) and leaf.literal is None}


def referenced_rules(node: Node) -> set[str]:
    """The rules a check names with ``rule:``."""
    return {leaf.name for leaf in _leaves(node) if isinstance(leaf, RuleRef)}


@dataclass(frozen=True)
class FileRule:
    """A policy file's rule as services/api/policy.py's table holds it; ``rules``: the table
    itself. A ``rule:`` reference to another file rule answers the same Question."""

    node: Node
    rules: Mapping[str, Check] = field(compare=False, repr=False)

    def __call__(self, credentials: Credentials, target: Target) -> bool:
        return self.node.answer(Question(credentials, target, self.rules))


class _AnyField(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


_AND, _OR, _NOT, _OPEN, _CLOSE = "and", "or", "not", "(", ")"
_UNSUPPORTED_KINDS = ("http", "https")  # oslo.policy's remote checks: a call per question


def parse(text: str) -> Node:
    """A check string's tree; CheckSyntaxError when oslo.policy would not understand it."""
    if not text:
        return Constant(True)
    tokens = list(_tokens(text))
    if not tokens:
        raise CheckSyntaxError("a check string of blanks only (the empty string allows anyone)")
    node, position = _or(tokens, 0)
    if position != len(tokens):
        raise CheckSyntaxError(f"unexpected {_shown(tokens[position])} after a complete check")
    return node


def _tokens(text: str) -> list[str | Node]:
    """oslo.policy's _parse_tokenize: words apart, the parentheses at their ends apart."""
    tokens: list[str | Node] = []
    for word in re.split(r"\s+", text):
        stripped = word.lstrip("(")
        tokens += [_OPEN] * (len(word) - len(stripped))
        core = stripped.rstrip(")")
        if core.lower() in (_AND, _OR, _NOT):
            tokens.append(core.lower())
        elif core:
            tokens.append(_check(core))
        tokens += [_CLOSE] * (len(stripped) - len(core))
    return tokens


def _check(word: str) -> Node:
    if word == "!":
        return Constant(False)
    if word == "@":
        return Constant(True)
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
        raise CheckSyntaxError(f"{word} is a quoted string, not a check (kind:match)")
    kind, colon, match = word.partition(":")
    if not colon:
        raise CheckSyntaxError(f"{word!r} is not a check: kind:match, rule:name, role:name, "
                               "@ or !")
    if kind in _UNSUPPORTED_KINDS:
        raise CheckSyntaxError(f"{word!r}: oslo.policy's remote {kind} checks are not "
                               "supported")
    try:
        match % _AnyField()
    except (ValueError, TypeError) as exc:
        raise CheckSyntaxError(f"{word!r}: {match!r} is not a %(field)s template ({exc})"
                               ) from None
    if kind == "rule":
        return RuleRef(match)
    if kind == "role":
        return RoleCheck(match)
    try:
        literal: str | None = str(ast.literal_eval(kind))
    except ValueError:
        literal = None
    except SyntaxError:
        raise CheckSyntaxError(f"{word!r}: {kind!r} is neither a field nor a literal"
                               ) from None
    return GenericCheck(kind, match, literal)


def _or(tokens: list[str | Node], position: int) -> tuple[Node, int]:
    return _chain(tokens, position, _OR, _and, Or)


def _and(tokens: list[str | Node], position: int) -> tuple[Node, int]:
    return _chain(tokens, position, _AND, _unary, And)


def _chain(tokens: list[str | Node], position: int, operator: str,
           operand: Callable[[list[str | Node], int], tuple[Node, int]],
           joined: Callable[[tuple[Node, ...]], Node]) -> tuple[Node, int]:
    """Operands joined by ``operator`` (one operand: itself, as oslo.policy builds it)."""
    operands = []
    while True:
        node, position = operand(tokens, position)
        operands.append(node)
        if position < len(tokens) and tokens[position] == operator:
            position += 1
            continue
        return (operands[0] if len(operands) == 1 else joined(tuple(operands))), position


def _unary(tokens: list[str | Node], position: int) -> tuple[Node, int]:
    if position == len(tokens):
        raise CheckSyntaxError("the check string ends where a check was expected")
    token = tokens[position]
    if token == _NOT:
        operand, position = _unary(tokens, position + 1)
        return Not(operand), position
    if token == _OPEN:
        node, position = _or(tokens, position + 1)
        if position == len(tokens) or tokens[position] != _CLOSE:
            raise CheckSyntaxError("a parenthesis is not closed")
        return node, position + 1
    if isinstance(token, Node):
        return token, position + 1
    raise CheckSyntaxError(f"unexpected {_shown(token)} where a check was expected")


def _shown(token: str | Node) -> str:
    return repr(token) if isinstance(token, str) else "check"
