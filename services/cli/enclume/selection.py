"""Which nodes a command acts on: the names given, or the nodes a label selector finds.

``node list --label`` and every multi-node command (``--label KEY=VALUE``, optionally with
``--provision-state``) find nodes with the same code: ``find_nodes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import typer

from services.cli.enclume import args
from services.cli.enclume.client import ApiClient
from services.cli.enclume.context import Cli, CliError


@dataclass(frozen=True)
class Selector:
    """Nodes whose labels include all of ``labels`` (and in ``provision_state``, if given)."""

    labels: dict[str, str] = field(default_factory=dict)
    provision_state: str | None = None
    label_option: str = "--label"

    def __bool__(self) -> bool:
        return bool(self.labels)

    def __str__(self) -> str:
        parts = [f"{self.label_option} {key}={value}" for key, value in self.labels.items()]
        if self.provision_state is not None:
            parts.append(f"--provision-state {self.provision_state!r}"
                         if " " in self.provision_state
                         else f"--provision-state {self.provision_state}")
        return " ".join(parts)


def find_nodes(client: ApiClient, path: str, params: dict[str, Any],
               labels: dict[str, str]) -> list[dict[str, Any]]:
    """Every node of ``path`` (all pages) the API's ``params`` filter keeps, then only those
    with all ``labels`` (the API has no label filter: labels live in ``extra``; ``params``
    must then fetch ``extra``)."""
    nodes = client.list_all(path, "nodes", params)
    if labels:
        nodes = [node for node in nodes if args.matches_labels(node, labels)]
    return nodes


def selector(labels: Sequence[str] | None, provision_state: str | None,
             label_option: str = "--label") -> Selector:
    """The selector typed on the command line; usage error when it does not make sense."""
    wanted = args.label_filter(labels, label_option)
    if provision_state is not None and not wanted:
        raise typer.BadParameter(f"--provision-state narrows a selection by {label_option}: "
                                 f"give {label_option} KEY=VALUE too",
                                 param_hint="--provision-state")
    return Selector(wanted, provision_state, label_option)


def check_exclusive(names: Sequence[str] | None, chosen: Selector) -> None:
    """Node names or a selector: exactly one of them (a usage error otherwise)."""
    hint = f"NODE / {chosen.label_option}"
    if names and chosen:
        raise typer.BadParameter(f"give node names or {chosen.label_option} KEY=VALUE, not both",
                                 param_hint=hint)
    if not names and not chosen:
        raise typer.BadParameter(f"give node names, or {chosen.label_option} KEY=VALUE to "
                                 "select nodes by label", param_hint=hint)


class NodeRef(str):
    """A selected node: its UUID, which requests use (a rename between selecting and acting
    cannot redirect them to another node), shown to people as its name."""

    display: str

    def __new__(cls, uuid: str, display: str | None = None) -> NodeRef:
        ref = super().__new__(cls, uuid)
        ref.display = display or uuid
        return ref


def shown(ident: str) -> str:
    """How a node identifier is printed: a selected node's name, else the identifier given."""
    return ident.display if isinstance(ident, NodeRef) else ident


def select(client: ApiClient, chosen: Selector) -> list[str]:
    """The nodes ``chosen`` finds, by name (then UUID), as NodeRefs (UUID, shown by name)."""
    params: dict[str, Any] = {"fields": "uuid,name,extra"}
    if chosen.provision_state is not None:
        params["provision_state"] = chosen.provision_state
    nodes = find_nodes(client, "/v1/nodes", params, chosen.labels)
    nodes.sort(key=lambda node: (node.get("name") or "", str(node["uuid"])))
    return [NodeRef(str(node["uuid"]), node.get("name")) for node in nodes]


def describe_selection(chosen: Selector, idents: Sequence[str]) -> str:
    return (f"Selected {len(idents)} node(s) with {chosen}: "
            f"{', '.join(shown(ident) for ident in idents)}")


def resolve(state: Cli, names: Sequence[str] | None, labels: Sequence[str] | None,
            provision_state: str | None, label_option: str = "--label") -> list[str]:
    """The nodes to act on: ``names`` as given, or those the selector finds (announced on
    stderr before anything is done). Usage errors come first, before the configuration is
    read; a selector that finds nothing is an error (exit 1)."""
    chosen = selector(labels, provision_state, label_option)
    check_exclusive(names, chosen)
    if names:
        return list(names)
    found = select(state.client, chosen)
    if not found:
        raise CliError(f"no node matches {chosen}")
    typer.echo(describe_selection(chosen, found), err=True)
    return found
