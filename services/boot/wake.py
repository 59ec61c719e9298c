"""``POST /wake``: a conductor has the boot service send Wake-on-LAN magic packets out of its
provisioning interface (ENCLUME_BOOT_INTERFACE), to that network's broadcast address.

The boot service sits on the PCs' own network (it answers their DHCP and PXE); a conductor on
another subnet cannot broadcast there itself. Body: ``{"macs": [...], "password": null or a
SecureOn password, "port": 9}``; answer ``{"sent_to": "10.12.0.255:9 out of eth1", "sent": n}``.
When the cluster has a shared secret (ENCLUME_RPC_SECRET[_FILE]) the caller shows it, as a
conductor's RPC does (401 otherwise). The packets go to the interface's network only: a
caller cannot point them anywhere else.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from services.boot.interfaces import InterfaceError, ipv4_interface
from services.common.config import Settings
from services.common.exceptions import DriverError
from services.common.wake_on_lan import PASSWORD, SECRET_HEADER, magic_packet, send

MAX_MACS = 64
DEFAULT_PORT = 9


def _packets(body: Any) -> tuple[list[bytes], int]:
    if not isinstance(body, dict) or not isinstance(body.get("macs"), list) or not (
            0 < len(body["macs"]) <= MAX_MACS):
        raise ValueError(f"expected {{\"macs\": [1 to {MAX_MACS} MAC addresses], ...}}")
    password, port = body.get("password"), body.get("port", DEFAULT_PORT)
    if password is not None and (not isinstance(password, str)
                                 or not PASSWORD.fullmatch(password.lower())):
        raise ValueError("password must be a SecureOn password such as 01:02:03:04:05:06")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError("port must be a UDP port number")
    try:
        return [magic_packet(str(mac), password) for mac in body["macs"]], port
    except DriverError as exc:
        raise ValueError(str(exc)) from None


def wake_routes(settings: Settings) -> list[Route]:
    async def wake(request: Request) -> Response:
        secret = settings.rpc_shared_secret()
        if secret and not hmac.compare_digest(
                request.headers.get(SECRET_HEADER, "").encode(), secret.encode()):
            return PlainTextResponse("caller not authenticated", status_code=401)
        try:
            packets, port = _packets(json.loads(await request.body()))
        except ValueError as exc:  # JSONDecodeError is one
            return PlainTextResponse(f"invalid request: {exc}", status_code=400)
        interface = settings.boot.interface
        if not interface:
            return PlainTextResponse("this boot service has no ENCLUME_BOOT_INTERFACE to send "
                                     "magic packets out of", status_code=409)
        try:
            broadcast = str(ipv4_interface(interface).network.broadcast_address)
            send(packets, broadcast, port, interface)
        except (InterfaceError, DriverError) as exc:
            return PlainTextResponse(str(exc), status_code=503)
        return JSONResponse({"sent_to": f"{broadcast}:{port} out of {interface}",
                             "sent": len(packets)})

    return [Route("/wake", wake, methods=["POST"])]
