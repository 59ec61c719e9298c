"""One state change asked of many nodes: each refusal is printed and the others go on."""

from __future__ import annotations

from typing import Any

import typer

from services.cli.enclume.client import ApiClient, ApiError
from services.cli.enclume.context import print_error


def put_state(client: ApiClient, nodes: list[str], kind: str, body: dict[str, Any],
              requested: str | None) -> list[str]:
    """PUT ``body`` to ``/v1/nodes/<node>/states/<kind>`` of each node; returns the nodes that
    accepted. ``requested``: the word echoed per accepted node (``<node>: <requested>``), None
    for silence (a progress display follows). A lost connection ends everything at once."""
    accepted: list[str] = []
    for node in nodes:
        try:
            client.put(f"/v1/nodes/{node}/states/{kind}", body)
        except ApiError as exc:
            if exc.status == 0:
                raise
            print_error(exc)
            continue
        accepted.append(node)
        if requested is not None:
            typer.echo(f"{node}: {requested}")
    return accepted
