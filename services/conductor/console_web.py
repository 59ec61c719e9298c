"""The web console: a small page and the websocket it talks to, served by the process that
holds the consoles (the conductor's RPC port; enclume-aio mounts it in its API app).

``GET /console/{node}?token=T`` is the page; ``/console/{node}/ws?token=T`` carries the serial
line both ways (binary frames out, text or binary frames in). A wrong token or a console that
is not open is refused (close code 1008). When the console ends (disabled, node deleted, BMC
lost) the websocket closes with code 1000 and the reason.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from services.conductor.consoles import Closed, Consoles

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Console of node {node}</title>
<style>body{{background:#111;color:#ddd;font-family:monospace}}
#screen{{white-space:pre-wrap;word-break:break-all;min-height:90vh;outline:none}}</style>
</head><body><div id="status">connecting...</div><div id="screen" tabindex="0"></div>
<script>
const screen = document.getElementById("screen"), status = document.getElementById("status");
const url = new URL(location.pathname + "/ws" + location.search, location.href);
url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
const ws = new WebSocket(url); ws.binaryType = "arraybuffer";
const decoder = new TextDecoder();
ws.onopen = () => {{ status.textContent = "connected: type here"; screen.focus(); }};
ws.onmessage = (e) => {{
  screen.textContent += decoder.decode(new Uint8Array(e.data), {{stream: true}})
    .replace(/\\x1b\\[[0-9;?]*[A-Za-z]/g, "").replace(/\\r/g, "");
  window.scrollTo(0, document.body.scrollHeight);
}};
ws.onclose = (e) => {{ status.textContent = "closed: " + (e.reason || e.code); }};
screen.addEventListener("keydown", (e) => {{
  const keys = {{Enter: "\\r", Backspace: "\\x7f", Tab: "\\t", Escape: "\\x1b"}};
  let text = keys[e.key] || (e.key.length === 1 ? e.key : "");
  if (e.ctrlKey && e.key.length === 1) text = String.fromCharCode(e.key.toUpperCase()
    .charCodeAt(0) - 64);
  if (text && ws.readyState === 1) {{ ws.send(text); e.preventDefault(); }}
}});
</script></body></html>
"""


def console_routes(consoles: Consoles) -> list[Route | WebSocketRoute]:
    async def page(request: Request) -> Response:
        node = request.path_params["node"]
        if consoles.session(node, request.query_params.get("token", "")) is None:
            return Response("No open console of this node for this token.", status_code=404,
                            media_type="text/plain")
        return HTMLResponse(PAGE.format(node=html.escape(node)),
                            headers={"Cache-Control": "no-store",
                                     "Referrer-Policy": "no-referrer"})

    async def bridge(websocket: WebSocket) -> None:
        node = websocket.path_params["node"]
        session = consoles.session(node, websocket.query_params.get("token", ""))
        if session is None:
            await websocket.close(code=1008, reason="no open console for this token")
            return
        await websocket.accept()
        loop = asyncio.get_running_loop()
        received: asyncio.Queue[bytes | Closed] = asyncio.Queue()

        def deliver(item: bytes | Closed) -> None:
            loop.call_soon_threadsafe(received.put_nowait, item)

        if not session.attach(deliver):
            await websocket.close(code=1000, reason=session.closed.reason
                                  if session.closed else "console closed")
            return
        typing = asyncio.create_task(_typed(websocket, session.write))
        try:
            while True:
                getting = asyncio.create_task(received.get())
                done, _pending = await asyncio.wait({getting, typing},
                                                    return_when=asyncio.FIRST_COMPLETED)
                if getting not in done:
                    getting.cancel()
                    return  # the client went away
                item = getting.result()
                if isinstance(item, Closed):
                    await websocket.close(code=1000, reason=item.reason[:120])
                    return
                if item:
                    await websocket.send_bytes(item)
        finally:
            typing.cancel()
            session.detach(deliver)

    return [Route("/console/{node}", page, methods=["GET"]),
            WebSocketRoute("/console/{node}/ws", bridge)]


async def _typed(websocket: WebSocket, write: Callable[[bytes], None]) -> None:
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes") or (message.get("text") or "").encode()
            if data:
                write(data)
    except WebSocketDisconnect:
        return
