"""One state change asked of many nodes, a bounded number at a time: each refusal is reported
and the others go on."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import typer

from services.cli.enclume.client import ApiClient, ApiError
from services.cli.enclume.context import print_error
from services.cli.enclume.selection import shown

# Requests under way at once: enough to hide the round trips, few enough for one API process.
DEFAULT_CONCURRENCY = 8


def request_states(client: ApiClient, nodes: list[str], kind: str, body: dict[str, Any],
                   concurrency: int = DEFAULT_CONCURRENCY,
                   ) -> Iterator[tuple[str, ApiError | None]]:
    """PUT ``body`` to ``/v1/nodes/<node>/states/<kind>`` of each node, ``concurrency`` at a
    time (the client is shared by the threads); yields ``(node, refusal or None)`` in the
    order of ``nodes``, each as soon as it and those before it are answered.

    A lost connection (status 0) stops the requests not yet sent; the answers of those sent
    are still yielded, then the connection error is raised."""
    lost = threading.Event()

    def one(node: str) -> ApiError | bool | None:
        if lost.is_set():
            return False  # not sent
        try:
            client.put(f"/v1/nodes/{node}/states/{kind}", body)
        except ApiError as exc:
            if exc.status == 0:
                lost.set()
            return exc
        return None

    connection_error: ApiError | None = None
    with ThreadPoolExecutor(max_workers=max(1, concurrency),
                            thread_name_prefix=f"put-{kind}") as pool:
        for node, answer in zip(nodes, pool.map(one, nodes), strict=True):
            if answer is False:
                continue
            if isinstance(answer, ApiError) and answer.status == 0:
                connection_error = connection_error or answer
                continue
            assert answer is None or isinstance(answer, ApiError)
            yield node, answer
    if connection_error is not None:
        raise connection_error


def put_state(client: ApiClient, nodes: list[str], kind: str, body: dict[str, Any],
              requested: str | None, concurrency: int = DEFAULT_CONCURRENCY) -> list[str]:
    """``request_states`` with each refusal printed (``Error: ...`` on stderr); returns the
    nodes that accepted. ``requested``: the word echoed per accepted node (``<node>:
    <requested>``), None for silence (a progress display follows). Output follows the order
    of ``nodes``. A lost connection ends everything."""
    accepted: list[str] = []
    for node, refusal in request_states(client, nodes, kind, body, concurrency):
        if refusal is not None:
            print_error(refusal)
            continue
        accepted.append(node)
        if requested is not None:
            typer.echo(f"{shown(node)}: {requested}")
    return accepted


def each_node(nodes: list[str], call: Callable[[str], object],
              done: Callable[[str], str]) -> None:
    """``call`` each node in turn, echoing ``done(node)`` or the API's refusal; exit 1 at the
    end if any was refused. A lost connection ends everything at once."""
    failed = False
    for node in nodes:
        try:
            call(node)
        except ApiError as exc:
            if exc.status == 0:
                raise
            print_error(exc)
            failed = True
            continue
        typer.echo(done(node))
    if failed:
        raise typer.Exit(1)
