"""One request made of many nodes, a bounded number at a time: each refusal is reported and the
others go on."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import typer

from services.cli.enclume.client import ApiClient, ApiError
from services.cli.enclume.context import print_error
from services.cli.enclume.progress import Outcome
from services.cli.enclume.selection import shown

# Requests under way at once: enough to hide the round trips, few enough for one API process.
DEFAULT_CONCURRENCY = 8


def call_each(nodes: list[str], call: Callable[[str], object], name: str,
              concurrency: int = DEFAULT_CONCURRENCY,
              ) -> Iterator[tuple[str, ApiError | None]]:
    """``call`` each node, ``concurrency`` at a time (the client it uses is shared by the
    threads); yields ``(node, refusal or None)`` in the order of ``nodes``, each as soon as it
    and those before it are answered.

    A lost connection (status 0) stops the calls not yet made; the answers of those made are
    still yielded, then the connection error is raised."""
    lost = threading.Event()

    def one(node: str) -> ApiError | bool | None:
        if lost.is_set():
            return False  # not sent
        try:
            call(node)
        except ApiError as exc:
            if exc.status == 0:
                lost.set()
            return exc
        return None

    connection_error: ApiError | None = None
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix=name) as pool:
        try:
            for node, answer in zip(nodes, pool.map(one, nodes), strict=True):
                if answer is False:
                    continue
                if isinstance(answer, ApiError) and answer.status == 0:
                    connection_error = connection_error or answer
                    continue
                assert answer is None or isinstance(answer, ApiError)
                yield node, answer
        finally:
            lost.set()  # the caller stopped early (an error, a closed pipe): send no more
    if connection_error is not None:
        raise connection_error


def request_states(client: ApiClient, nodes: list[str], kind: str, body: dict[str, Any],
                   concurrency: int = DEFAULT_CONCURRENCY,
                   ) -> Iterator[tuple[str, ApiError | None]]:
    """PUT ``body`` to ``/v1/nodes/<node>/states/<kind>`` of each node (see `call_each`)."""
    return call_each(nodes, lambda node: client.put(f"/v1/nodes/{node}/states/{kind}", body),
                     f"put-{kind}", concurrency)


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


def change_states(client: ApiClient, nodes: list[str], kind: str, body: dict[str, Any],
                  requested: str, wait: Callable[[list[str]], Mapping[str, Outcome]] | None,
                  ) -> None:
    """``put_state``, then with ``wait`` follow the nodes that accepted (``--wait``); exit 1
    if any node refused or, waited for, did not get there."""
    accepted = put_state(client, nodes, kind, body, None if wait else requested)
    failed = len(accepted) < len(nodes)
    if wait is not None and accepted:
        failed = not all(outcome.ok for outcome in wait(accepted).values()) or failed
    if failed:
        raise typer.Exit(1)


def each_node(nodes: list[str], call: Callable[[str], object],
              done: Callable[[str], str]) -> None:
    """``call`` each node (`call_each`), echoing ``done(node)`` or the API's refusal in the
    order of ``nodes``; exit 1 at the end if any was refused. A lost connection ends
    everything."""
    failed = False
    for node, refusal in call_each(nodes, call, "call"):
        if refusal is not None:
            print_error(refusal)
            failed = True
            continue
        typer.echo(done(node))
    if failed:
        raise typer.Exit(1)
