"""API → conductor calls as JSON over HTTP, and the conductor's side of them.

The client picks the conductor that the hash ring gives the node, posts
``{"kwargs": {...}}`` to ``<rpc_address>/rpc/<method>`` with the shared secret, retries
connection errors, and turns the conductor's error answers back into the exceptions an
in-process conductor raises: the same class (named by the answer's ``kind``), status and
message (`services.common.exceptions.remote_error`).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from typing import Any

import httpx
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from services.common.config import Settings
from services.common.db import Database
from services.common.exceptions import EnclumeError, Invalid, TemporaryFailure, remote_error
from services.common.lifecycle import Service, lifespan_of
from services.common.lookups import (
    node_uuid_of_port,
    node_uuid_of_portgroup,
    node_uuid_of_volume,
    node_value,
)
from services.common.membership import Membership
from services.common.metrics_asgi import MetricsEndpoint, RequestTimer, metrics_bearer
from services.common.models import Allocation, Node
from services.common.volumes import KINDS

LOG = logging.getLogger(__name__)

SECRET_HEADER = "X-Enclume-RPC-Secret"

# The manager methods reachable over RPC; every one takes keyword arguments only.
METHODS = frozenset({
    "do_provisioning_action", "change_power_state", "change_node_boot_mode",
    "change_node_secure_boot", "attach_virtual_media", "detach_virtual_media",
    "get_virtual_media",
    "set_boot_device", "get_boot_device",
    "get_supported_boot_devices", "set_target_raid_config", "validate", "update_node",
    "destroy_node", "update_traits",
    "update_port", "destroy_port", "update_portgroup", "destroy_portgroup", "update_volume",
    "destroy_volume", "process_allocation", "backfill_allocation", "destroy_allocation",
    "issue_agent_token", "heartbeat", "process_discovery",
    "vif_list", "vif_attach", "vif_detach", "set_console_mode", "get_console_information",
    "leave_class_vlan",
})


class NoConductor(Invalid):
    def __init__(self, group: str) -> None:
        super().__init__(f'No valid host was found. Reason: no conductor is alive for conductor '
                         f'group "{group}".')


class RpcClient:
    """The conductor API of a process whose conductors run elsewhere."""

    def __init__(self, db: Database, settings: Settings, membership: Membership) -> None:
        secret = settings.rpc_shared_secret()
        if not secret:
            raise RuntimeError("set ENCLUME_RPC_SECRET or ENCLUME_RPC_SECRET_FILE: the API and "
                               "the conductors authenticate each other with it")
        self.db = db
        self.membership = membership
        self._http = httpx.Client(
            headers={SECRET_HEADER: secret},
            timeout=httpx.Timeout(settings.rpc.timeout_s, connect=5.0),
            transport=httpx.HTTPTransport(retries=settings.rpc.retries),
        )

    def close(self) -> None:
        self._http.close()

    def call(self, route_by: str, method: str, /, **kwargs: Any) -> Any:
        """Call ``method`` on the conductor that owns the node ``route_by``."""
        group: str = node_value(self.db, route_by, Node.conductor_group)
        return self.call_in_group(group, route_by, method, **kwargs)

    def call_in_group(self, group: str, route_by: str, method: str, /, **kwargs: Any) -> Any:
        """Call ``method`` on the conductor of ``group`` the ring gives ``route_by`` (also for
        a node that does not exist yet)."""
        owner = self.membership.owner(group, route_by)
        if owner is None or not owner.rpc_address:
            raise NoConductor(group)
        url = f"{owner.rpc_address.rstrip('/')}/rpc/{method}"
        try:
            response = self._http.post(url, json={"kwargs": kwargs})
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            self.membership.refresh_now()
            raise TemporaryFailure(f"Conductor {owner.hostname} could not be reached "
                                   f"({type(exc).__name__}); please retry.") from exc
        except httpx.TransportError as exc:
            # Sent, but no answer: the conductor may have done it before it went away.
            self.membership.refresh_now()
            raise TemporaryFailure(
                f"Conductor {owner.hostname} stopped answering while handling {method} "
                f"({type(exc).__name__}); it may have been done: check the node's state "
                f"before retrying.") from exc
        body = _json(response)
        if response.status_code >= 400:
            error = body.get("error")
            error = error if isinstance(error, dict) else {}  # a proxy's page, another server
            message = error.get("message")
            message = message if isinstance(message, str) and message else (
                f"Conductor error {response.status_code}")
            kind = error.get("kind")
            raise remote_error(kind if isinstance(kind, str) else None, message,
                               response.status_code)
        return body.get("result")

    # The conductor API: the same signatures as ConductorManager's.
    def do_provisioning_action(self, node_uuid: str, target: str, options: dict[str, Any]
                               ) -> None:
        self.call(node_uuid, "do_provisioning_action", node_uuid=node_uuid, target=target,
                  options=options)

    def change_power_state(self, node_uuid: str, target: str, timeout: int | None = None
                           ) -> None:
        self.call(node_uuid, "change_power_state", node_uuid=node_uuid, target=target,
                  timeout=timeout)

    def change_node_boot_mode(self, node_uuid: str, target: str) -> None:
        self.call(node_uuid, "change_node_boot_mode", node_uuid=node_uuid, target=target)

    def change_node_secure_boot(self, node_uuid: str, target: bool) -> None:
        self.call(node_uuid, "change_node_secure_boot", node_uuid=node_uuid, target=target)

    def attach_virtual_media(self, node_uuid: str, device_type: str, image_url: str,
                             image_download_source: str = "local") -> None:
        self.call(node_uuid, "attach_virtual_media", node_uuid=node_uuid,
                  device_type=device_type, image_url=image_url,
                  image_download_source=image_download_source)

    def detach_virtual_media(self, node_uuid: str, device_types: list[str] | None = None
                             ) -> None:
        self.call(node_uuid, "detach_virtual_media", node_uuid=node_uuid,
                  device_types=device_types)

    def get_virtual_media(self, node_uuid: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call(node_uuid, "get_virtual_media",
                                                 node_uuid=node_uuid)
        return result

    def set_boot_device(self, node_uuid: str, device: str, persistent: bool) -> None:
        self.call(node_uuid, "set_boot_device", node_uuid=node_uuid, device=device,
                  persistent=persistent)

    def set_target_raid_config(self, node_uuid: str, target_raid_config: dict[str, Any]
                               ) -> None:
        self.call(node_uuid, "set_target_raid_config", node_uuid=node_uuid,
                  target_raid_config=target_raid_config)

    def get_boot_device(self, node_uuid: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(node_uuid, "get_boot_device", node_uuid=node_uuid)
        return result

    def get_supported_boot_devices(self, node_uuid: str) -> list[str]:
        result: list[str] = self.call(node_uuid, "get_supported_boot_devices",
                                      node_uuid=node_uuid)
        return result

    def validate(self, node_uuid: str) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = self.call(node_uuid, "validate", node_uuid=node_uuid)
        return result

    def set_console_mode(self, node_uuid: str, enabled: bool) -> None:
        self.call(node_uuid, "set_console_mode", node_uuid=node_uuid, enabled=enabled)

    def get_console_information(self, node_uuid: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self.call(node_uuid, "get_console_information",
                                                  node_uuid=node_uuid)
        return result

    def update_node(self, node_uuid: str, values: dict[str, Any],
                    expected: dict[str, Any] | None = None) -> None:
        self.call(node_uuid, "update_node", node_uuid=node_uuid, values=values,
                  expected=expected)

    def destroy_node(self, node_uuid: str) -> None:
        self.call(node_uuid, "destroy_node", node_uuid=node_uuid)

    def update_traits(self, node_uuid: str, add: list[str] | None = None,
                      remove: list[str] | None = None, replace: list[str] | None = None) -> None:
        self.call(node_uuid, "update_traits", node_uuid=node_uuid, add=add, remove=remove,
                  replace=replace)

    def update_port(self, port_uuid: str, values: dict[str, Any],
                    node_uuid: str | None = None, expected: dict[str, Any] | None = None
                    ) -> None:
        self.call(node_uuid_of_port(self.db, port_uuid), "update_port", port_uuid=port_uuid,
                  values=values, node_uuid=node_uuid, expected=expected)

    def destroy_port(self, port_uuid: str) -> None:
        self.call(node_uuid_of_port(self.db, port_uuid), "destroy_port", port_uuid=port_uuid)

    def update_portgroup(self, portgroup_uuid: str, values: dict[str, Any],
                         node_uuid: str | None = None,
                         expected: dict[str, Any] | None = None) -> None:
        self.call(node_uuid_of_portgroup(self.db, portgroup_uuid), "update_portgroup",
                  portgroup_uuid=portgroup_uuid, values=values, node_uuid=node_uuid,
                  expected=expected)

    def destroy_portgroup(self, portgroup_uuid: str) -> None:
        self.call(node_uuid_of_portgroup(self.db, portgroup_uuid), "destroy_portgroup",
                  portgroup_uuid=portgroup_uuid)

    def update_volume(self, kind: str, volume_uuid: str, values: dict[str, Any],
                      node_uuid: str | None = None,
                      expected: dict[str, Any] | None = None) -> None:
        self.call(self._node_of_volume(kind, volume_uuid), "update_volume", kind=kind,
                  volume_uuid=volume_uuid, values=values, node_uuid=node_uuid,
                  expected=expected)

    def destroy_volume(self, kind: str, volume_uuid: str) -> None:
        self.call(self._node_of_volume(kind, volume_uuid), "destroy_volume", kind=kind,
                  volume_uuid=volume_uuid)

    def process_allocation(self, allocation_uuid: str) -> None:
        self._call_any(allocation_uuid, "process_allocation", allocation_uuid=allocation_uuid)

    def backfill_allocation(self, allocation_uuid: str, node_uuid: str) -> None:
        self.call(node_uuid, "backfill_allocation", allocation_uuid=allocation_uuid,
                  node_uuid=node_uuid)

    def destroy_allocation(self, allocation_uuid: str) -> None:
        with self.db.session() as session:
            node_uuid = session.scalar(select(Node.uuid).join(
                Allocation, Allocation.node_id == Node.id).where(
                Allocation.uuid == allocation_uuid))
        if node_uuid is None:
            self._call_any(allocation_uuid, "destroy_allocation", allocation_uuid=allocation_uuid)
        else:
            self.call(node_uuid, "destroy_allocation", allocation_uuid=allocation_uuid)

    def _call_any(self, route_by: str, method: str, /, **kwargs: Any) -> Any:
        """Call ``method`` on a live conductor of any group (the ring of the first group,
        the default one if it has conductors, for ``route_by``): work tied to no node."""
        groups = sorted({member.conductor_group for member in self.membership.members().values()})
        return self.call_in_group(groups[0] if groups else "", route_by, method, **kwargs)

    def _node_of_volume(self, kind: str, volume_uuid: str) -> str:
        spec = KINDS[kind]
        return node_uuid_of_volume(self.db, spec.model, volume_uuid, spec.title)

    def vif_list(self, node_uuid: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call(node_uuid, "vif_list", node_uuid=node_uuid)
        return result

    def vif_attach(self, node_uuid: str, vif_info: dict[str, Any]) -> None:
        self.call(node_uuid, "vif_attach", node_uuid=node_uuid, vif_info=vif_info)

    def vif_detach(self, node_uuid: str, vif_id: str) -> None:
        self.call(node_uuid, "vif_detach", node_uuid=node_uuid, vif_id=vif_id)

    def leave_class_vlan(self, node_uuid: str, class_ended_at: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(node_uuid, "leave_class_vlan", node_uuid=node_uuid,
                                           class_ended_at=class_ended_at)
        return result

    def issue_agent_token(self, node_uuid: str) -> str | None:
        token: str | None = self.call(node_uuid, "issue_agent_token", node_uuid=node_uuid)
        return token

    def heartbeat(self, node_uuid: str, callback_url: str, agent_token: str | None,
                  agent_version: str | None = None) -> None:
        self.call(node_uuid, "heartbeat", node_uuid=node_uuid, callback_url=callback_url,
                  agent_token=agent_token, agent_version=agent_version)

    def process_discovery(self, node_uuid: str, inventory: dict[str, Any],
                          new_node: dict[str, Any] | None = None, boot_mac: str | None = None,
                          applied_rules: list[str] | None = None) -> dict[str, Any]:
        arguments = {"node_uuid": node_uuid, "inventory": inventory, "new_node": new_node,
                     "boot_mac": boot_mac, "applied_rules": applied_rules}
        if new_node is None:
            result: dict[str, Any] = self.call(node_uuid, "process_discovery", **arguments)
        else:  # no row to read the group from yet: the new node's own
            result = self.call_in_group(str(new_node.get("conductor_group") or ""), node_uuid,
                                        "process_discovery", **arguments)
        return result


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def server_app(manager: Any, secret: str, services: Sequence[Service] = (),
               routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The conductor's RPC endpoint: ``POST /rpc/<method>`` runs the manager's method.

    ``services`` (the manager, its periodic tasks) start and stop with the server; ``routes``
    are served beside (the web consoles, services/conductor/console_web.py).
    """

    async def handle(request: Request) -> JSONResponse:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return _error(401, "RPC caller not authenticated.")
        method = request.path_params["method"]
        if method not in METHODS:
            return _error(404, f"Unknown RPC method {method}.")
        try:
            payload = await request.json()
            kwargs = payload["kwargs"]
            if not isinstance(kwargs, dict):
                raise TypeError("kwargs must be an object")
        except (ValueError, KeyError, TypeError) as exc:
            return _error(400, f"Malformed RPC request: {exc}")
        try:
            result = await run_in_threadpool(getattr(manager, method), **kwargs)
        except EnclumeError as exc:
            return _error(exc.code, exc.message, type(exc).__name__)
        except TypeError as exc:
            return _error(400, f"Malformed RPC request: {exc}")
        except Exception:
            LOG.exception("RPC %s failed", method)
            return _error(500, "The conductor failed unexpectedly; details are in its log.")
        return JSONResponse({"result": result})

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"hostname": manager.host, "alive": True})

    metrics = manager.settings.metrics
    return Starlette(routes=[Route("/rpc/{method}", handle, methods=["POST"]),
                             Route("/health", health, methods=["GET"]), *routes],
                     middleware=[Middleware(RequestTimer), Middleware(
                         MetricsEndpoint, bearer=metrics_bearer(metrics.require_auth, secret))]
                     if metrics.enabled else [],
                     lifespan=lifespan_of(services))


def _error(status: int, message: str, kind: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": status, "message": message, "kind": kind}},
                        status_code=status)
