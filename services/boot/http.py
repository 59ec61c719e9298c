"""The boot service's HTTP side: per-node iPXE scripts, deploy kernels and ramdisks, images.

- ``GET /boot.ipxe?mac=<MAC>``: the iPXE script of the node owning a PXE-enabled port with that
  MAC, rendered by ``services.boot.ipxe`` from the node's desired boot as
  ``services.common.bootconfig.entry.boot_entry`` reads it (the DHCP side reads it the same
  way). ``exit`` for MACs without a desired boot; with ENCLUME_BOOT_DISCOVERY, MACs no port
  has get the discovery ramdisk. Without ``mac``: a script that asks again with the boot
  interface's MAC.
- ``GET|HEAD /files/<name>``: a file of the boot files directory (deploy kernels, ramdisks),
  with HTTP Range. Hostile names (``..``, absolute, NUL, links leading out) get 400 or 404.
- ``GET|HEAD /images/<node uuid>``: the image the node is being deployed with
  (``instance_info/image_source``), served from the image cache, with HTTP Range; only while the
  node is ``deploying`` or ``wait call-back``.
- ``/image-versions/<version id>/manifest|disk``: the image store's versions, by HTTP range reads
  (``services.boot.image_blocks``).
- ``/image-captures/<node uuid>/...``: the agent of a node being captured sends its disk's
  blocks into the store (``services.boot.image_capture``).
- ``/multicast-sessions``: multicast sessions streaming a version to a room's agents
  (``services.boot.multicast_routes``).
- ``POST /wake``: a conductor's Wake-on-LAN magic packets, sent out of the provisioning
  interface (``services.boot.wake``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from services.boot import ipxe
from services.boot.image_blocks import image_block_routes
from services.boot.image_capture import image_capture_routes
from services.boot.multicast_routes import multicast_routes
from services.boot.multicast_sender import MulticastSessions
from services.boot.wake import wake_routes
from services.classroom.image_capture import DatabaseCaptures
from services.common.bootconfig.entry import BOOT_KEY, BootEntry, boot_entry
from services.common.bootconfig.files import FILES_PATH, UnsafeName, file_inside, served_url
from services.common.bootconfig.image_cache import (
    DownloadFailed,
    ImageCache,
    ImageError,
    ImageSource,
    ImageTooLarge,
    InvalidImageSource,
    source_of,
)
from services.common.bootconfig.params import UnsafeScriptValue, agent_kernel_params
from services.common.config import AGENT_API_CA_PATH, Settings
from services.common.db import Database
from services.common.lifecycle import Service, lifespan_of
from services.common.macs import parse_mac
from services.common.metrics import BOOT_SCRIPTS
from services.common.metrics_asgi import MetricsEndpoint, RequestTimer, metrics_bearer
from services.common.models import Node, Port
from services.common.states import ProvisionState
from services.images import tokens
from services.images.store import ImageStore

LOG = logging.getLogger(__name__)

# Deploy images are served only while their node is being deployed.
IMAGE_STATES = (ProvisionState.DEPLOYING.value, ProvisionState.DEPLOYWAIT.value)
NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True)
class MacLookup:
    """What the database says about one MAC: no port has it (``node_uuid`` None), or the node
    of its PXE-enabled port and that node's desired boot (``entry`` None: nothing to boot)."""

    node_uuid: str | None
    entry: BootEntry | None = None


def lookup_mac(db: Database, mac: str) -> MacLookup:
    with db.session() as session:
        rows = session.execute(
            select(Node.uuid, Node.driver_internal_info, Port.pxe_enabled)
            .join(Port, Port.node_id == Node.id)
            .where(Port.address == mac)).all()
    if not rows:
        return MacLookup(None)
    node_uuid, info, pxe_enabled = rows[0]
    if not pxe_enabled:
        return MacLookup(str(node_uuid))
    return MacLookup(str(node_uuid), boot_entry(mac, str(node_uuid), (info or {}).get(BOOT_KEY)))


def _image_of_node(db: Database, node_uuid: str) -> ImageSource | None:
    with db.session() as session:
        row = session.execute(select(Node.provision_state, Node.instance_info)
                              .where(Node.uuid == node_uuid)).first()
    if row is None or row.provision_state not in IMAGE_STATES:
        return None
    return source_of(row.instance_info or {})


class _HeldFileResponse(FileResponse):
    """A file response that calls ``release`` once sent, whether or not the client stayed."""

    def __init__(self, path: Path, release: Callable[[], None]) -> None:
        super().__init__(path, media_type="application/octet-stream")
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


def _unknown_mac_script(settings: Settings, mac: str) -> str:
    """Exit, or with discovery on, the ramdisk with the default deploy kernel and ramdisk."""
    if not settings.discovery.enabled:
        return ipxe.exit_script(f"no node has a port with MAC {mac}")
    if not (settings.deploy.kernel and settings.deploy.ramdisk):
        LOG.warning("discovery is on but ENCLUME_DEPLOY_KERNEL or ENCLUME_DEPLOY_RAMDISK is "
                    "not set: %s is not answered", mac)
        return ipxe.exit_script(f"no node has a port with MAC {mac}; discovery has no ramdisk")
    base = settings.effective_boot_url
    params = agent_kernel_params(settings.effective_agent_api_url, None,
                                 settings.deploy.kernel_append_params, settings.agent_api_ca_url)
    return ipxe.ramdisk_script(served_url(base, settings.deploy.kernel),
                               served_url(base, settings.deploy.ramdisk), params,
                               f"unknown machine {mac} (discovery)")


def _text(status: int, message: str) -> PlainTextResponse:
    return PlainTextResponse(message + "\n", status_code=status, headers=NO_STORE)


def create_boot_app(settings: Settings, db: Database,
                    services: Sequence[Service] = ()) -> Starlette:
    """The HTTP app of one boot service; ``services`` start and stop with it (TFTP, dnsmasq)."""
    files_dir = settings.effective_boot_files_dir
    files_dir.mkdir(parents=True, exist_ok=True)
    cache = ImageCache(settings.effective_image_cache_dir, settings.images.cache_max_bytes,
                       settings.images.download_timeout_s)
    boot_url = settings.effective_boot_url
    store = ImageStore(settings.effective_image_store_dir, settings.images.store_max_bytes)
    multicast = MulticastSessions(settings.multicast,
                                  settings.multicast.interface or settings.boot.interface
                                  or "eth0", store, cache)
    secret = tokens.load_secret(settings)

    def boot_script(request: Request) -> Response:
        mac = request.query_params.get("mac")
        if mac is None:
            BOOT_SCRIPTS.labels("chain").inc()
            return PlainTextResponse(ipxe.chain_script(boot_url), headers=NO_STORE)
        normalized = parse_mac(mac)
        if normalized is None:
            return _text(400, "mac must be a MAC address such as 52:54:00:12:34:56")
        found = lookup_mac(db, normalized)
        answer = "unknown" if found.node_uuid is None else "node"
        try:
            if found.node_uuid is None:
                script = _unknown_mac_script(settings, normalized)
            else:
                script = ipxe.script_for(found.entry, f"node {found.node_uuid}",
                                         settings.drivers.default_boot_mode)
        except (UnsafeScriptValue, UnsafeName) as exc:
            LOG.error("cannot render the boot script for %s: %s", normalized, exc)
            script = ipxe.exit_script(f"the desired boot of {normalized} is invalid, see the "
                                      f"boot service log")
            answer = "invalid"
        BOOT_SCRIPTS.labels(answer).inc()
        return PlainTextResponse(script, headers=NO_STORE)

    def boot_file(request: Request) -> Response:
        name: str = request.path_params["name"]
        try:
            path = file_inside(files_dir, name)
        except UnsafeName as exc:
            return _text(400, f"invalid file name: {exc}")
        if path is None:
            return _text(404, "no such file")
        return FileResponse(path, media_type="application/octet-stream")

    def agent_api_ca(_request: Request) -> Response:
        """The CA of the API's certificate, for the ramdisk (handed over like its kernel)."""
        if settings.deploy.agent_api_ca_file is None:
            return _text(404, "no CA is configured for the API (ENCLUME_AGENT_API_CA_FILE)")
        return FileResponse(settings.deploy.agent_api_ca_file,
                            media_type="application/x-pem-file", headers=NO_STORE)

    def image(request: Request) -> Response:
        node_uuid: str = request.path_params["node_uuid"]
        try:
            source = _image_of_node(db, node_uuid)
        except InvalidImageSource as exc:
            return _text(409, f"node {node_uuid}: {exc}")
        if source is None:
            return _text(404, f"node {node_uuid} is not being deployed")
        try:
            path = cache.acquire(source)
        except ImageTooLarge as exc:
            return _text(507, str(exc))
        except DownloadFailed as exc:
            return _text(502, str(exc))
        except ImageError as exc:
            return _text(500, str(exc))
        try:
            return _HeldFileResponse(path, lambda: cache.release(source))
        except BaseException:
            cache.release(source)
            raise

    app = Starlette(routes=[
        Route(ipxe.SCRIPT_PATH, boot_script, methods=["GET"]),
        Route(FILES_PATH + "{name:path}", boot_file, methods=["GET", "HEAD"]),
        Route("/images/{node_uuid}", image, methods=["GET", "HEAD"]),
        Route(AGENT_API_CA_PATH, agent_api_ca, methods=["GET"]),
        *image_block_routes(store, secret),
        *multicast_routes(multicast, secret),
        *image_capture_routes(store, DatabaseCaptures(db, store, settings.student_states)),
        *wake_routes(settings),
    ], middleware=[Middleware(RequestTimer), Middleware(MetricsEndpoint, bearer=metrics_bearer(
        settings.metrics.require_auth, settings.rpc_shared_secret()))]
        if settings.metrics.enabled else [],
        lifespan=lifespan_of([cache, multicast, *services]))
    app.state.image_cache = cache
    return app
