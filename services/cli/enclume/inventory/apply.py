"""Carrying out an enrollment plan through the API, a bounded number of nodes at a time.

Worker threads share one ApiClient (one keep-alive connection pool). A node that fails is
reported and the others go on; a node created whose ports failed is complete on the next run.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Literal

from services.cli.enclume.client import ApiClient, ApiError
from services.cli.enclume.context import error_detail
from services.cli.enclume.inventory.plan import NodeChange

Outcome = Literal["created", "updated", "unchanged", "failed"]
# The detail of an unchanged node whose secrets were sent for the API to compare.
SECRETS_RESENT = "secrets re-sent (unchanged unless they differ)"


@dataclass
class Result:
    name: str
    outcome: Outcome
    node_uuid: str | None
    detail: str = ""  # the error of a failure; what changed otherwise


def apply_changes(client: ApiClient, changes: list[NodeChange], concurrency: int,
                  on_result: Callable[[Result], None] | None = None) -> list[Result]:
    """Apply every change, ``concurrency`` nodes at a time; one Result per change, in the
    order of ``changes``."""
    results: dict[int, Result] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="enroll")
    try:
        futures = {pool.submit(apply_change, client, change): index
                   for index, change in enumerate(changes)}
        for future in as_completed(futures):
            result = future.result()
            results[futures[future]] = result
            if on_result is not None:
                on_result(result)
    except BaseException:
        # Ctrl-C: nodes not started yet are not started; requests under way finish.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return [results[index] for index in range(len(changes))]


def apply_change(client: ApiClient, change: NodeChange) -> Result:
    try:
        if change.kind == "create":
            return _create(client, change)
        return _update(client, change)
    except _PartlyDone as exc:
        return Result(change.name, "failed", exc.node_uuid, exc.message)
    except ApiError as exc:
        return Result(change.name, "failed", change.node_uuid, error_detail(exc))


class _PartlyDone(Exception):
    def __init__(self, node_uuid: str | None, message: str) -> None:
        super().__init__(message)
        self.node_uuid = node_uuid
        self.message = message


def _create(client: ApiClient, change: NodeChange) -> Result:
    node = client.post("/v1/nodes", change.spec.create_body())
    node_uuid = node["uuid"]
    _port_requests(client, change, node_uuid, done="created")
    return Result(change.name, "created", node_uuid, ", ".join(change.changed))


def _update(client: ApiClient, change: NodeChange) -> Result:
    assert change.node_uuid is not None
    if change.node_ops or change.secret_ops:
        client.patch(f"/v1/nodes/{change.node_uuid}", change.node_ops + change.secret_ops)
    _port_requests(client, change, change.node_uuid, done="updated")
    if change.kind == "update":
        return Result(change.name, "updated", change.node_uuid, ", ".join(change.changed))
    # Only secrets were sent: the API writes those that differ and never says whether it did
    # (a moved updated_at proves nothing: power syncs and heartbeats move it too).
    return Result(change.name, "unchanged", change.node_uuid,
                  SECRETS_RESENT if change.secret_ops else "")


def _port_requests(client: ApiClient, change: NodeChange, node_uuid: str, done: str) -> None:
    """Deletes first (a MAC may move between the node's ports), then updates, then creates."""
    step = ""
    try:
        for port_uuid, address in change.port_deletes:
            step = f"deleting port {address}"
            client.delete(f"/v1/ports/{port_uuid}")
        for update in change.port_updates:
            step = f"updating port {update.address}"
            client.patch(f"/v1/ports/{update.uuid}", update.ops)
        for body in change.port_creates:
            step = f"creating port {body['address']}"
            client.post("/v1/ports", {**body, "node_uuid": node_uuid})
    except ApiError as exc:
        raise _PartlyDone(node_uuid,
                          f"node {done}, but {step} failed: {error_detail(exc)}") from None
