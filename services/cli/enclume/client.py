"""A small, thread-safe client of the Enclume (Ironic v1) REST API.

Every failure, from the server or from the network, is an ``ApiError`` carrying the HTTP status
(0 when the server could not be reached) and Ironic's ``faultstring``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import httpx_sse

from services.cli.enclume.config import CliConfig
from services.common.secrets import mask

LOG = logging.getLogger(__name__)
VERSION_HEADER = "X-OpenStack-Ironic-API-Version"
USER_AGENT = "enclume-cli"
ENCLUME_PREFIX = "/enclume/v1"


class ApiError(Exception):
    """An API request failed: ``status`` is the HTTP status, 0 when there was no answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def fault_message(response: httpx.Response) -> str:
    """Ironic's ``faultstring`` from an error response, or the best text there is."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase or "request failed"
    if isinstance(body, dict) and "error_message" in body:
        inner = body["error_message"]
        if isinstance(inner, str):
            try:
                inner = json.loads(inner)
            except ValueError:
                return inner
        if isinstance(inner, dict) and inner.get("faultstring"):
            return str(inner["faultstring"])
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return body["detail"]
    return response.text.strip() or response.reason_phrase or "request failed"


class ApiClient:
    def __init__(self, config: CliConfig) -> None:
        self.config = config
        auth = None
        if config.username is not None or config.password is not None:
            password = config.password.get_secret_value() if config.password else ""
            auth = httpx.BasicAuth(config.username or "", password)
        self._http = httpx.Client(base_url=config.url, auth=auth, timeout=config.timeout_s,
                                  headers={"User-Agent": USER_AGENT, "Accept": "application/json"})
        self._version = config.api_version
        self._version_lock = threading.Lock()

    # -- context manager --------------------------------------------------------------------

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- version ------------------------------------------------------------------------------

    @property
    def api_version(self) -> str:
        """The microversion sent: the configured one, else the server's maximum."""
        if self._version is None:
            with self._version_lock:
                if self._version is None:
                    document = self._send("GET", "/v1/", versioned=False)
                    self._version = _max_version(document)
        return self._version

    # -- requests -----------------------------------------------------------------------------

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._send("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> Any:
        return self._send("POST", path, body=body)

    def patch(self, path: str, operations: list[dict[str, Any]]) -> Any:
        return self._send("PATCH", path, body=operations)

    def put(self, path: str, body: Any = None) -> Any:
        return self._send("PUT", path, body=body)

    def delete(self, path: str) -> None:
        self._send("DELETE", path)

    def send_bytes(self, method: str, path: str, chunks: Iterable[bytes],
                   headers: dict[str, str], timeout_s: float | None = None) -> Any:
        """A request whose body is ``chunks`` streamed as they come (an image upload)."""
        return self._send(method, path, raw=chunks, extra_headers=headers,
                          timeout_s=timeout_s)

    def slow_post(self, path: str, timeout_s: float) -> Any:
        """A POST that may take long to answer (an upload's commit hashes the whole image)."""
        return self._send("POST", path, timeout_s=timeout_s)

    def list_all(self, path: str, key: str, params: dict[str, Any] | None = None
                 ) -> list[dict[str, Any]]:
        """Every item of a collection, following its ``next`` links page after page."""
        items: list[dict[str, Any]] = []
        query: dict[str, Any] | None = dict(params or {})
        while True:
            page = self.get(path, params=query)
            items.extend(page.get(key, []))
            next_link = page.get("next")
            if not next_link:
                return items
            # Keep our own base URL: the server's idea of it may differ (proxies).
            query = dict(parse_qsl(urlsplit(next_link).query, keep_blank_values=True))

    def events(self, path: str, params: dict[str, Any], read_timeout_s: float
               ) -> Iterator[str]:
        """The event names of a Server-Sent Events stream, as they come. ApiError when the
        stream is refused or is no stream (an API without it: 404); httpx.ReadTimeout after
        ``read_timeout_s`` without a byte."""
        timeout = httpx.Timeout(self.config.timeout_s, read=read_timeout_s)
        try:
            with httpx_sse.connect_sse(self._http, "GET", path, params=params,
                                       timeout=timeout) as source:
                response = source.response
                if response.status_code >= 400:
                    response.read()
                    raise ApiError(response.status_code, mask(fault_message(response)))
                for event in source.iter_sse():
                    yield event.event
        except httpx_sse.SSEError as exc:
            raise ApiError(404, f"{path} is not an event stream: {exc}") from None
        except httpx.TimeoutException:
            raise
        except httpx.HTTPError as exc:
            raise ApiError(0, f"cannot reach {self._where()}: {mask(str(exc))}") from None

    def _send(self, method: str, path: str, *, params: dict[str, Any] | None = None,
              body: Any = None, versioned: bool = True, raw: Iterable[bytes] | None = None,
              extra_headers: dict[str, str] | None = None,
              timeout_s: float | None = None) -> Any:
        # Enclume's own API (/enclume/v1) has its version in the path: no microversion.
        versioned = versioned and not path.startswith(ENCLUME_PREFIX)
        headers = {VERSION_HEADER: self.api_version} if versioned else {}
        headers.update(extra_headers or {})
        content: str | Iterable[bytes] | None = raw
        if body is not None:
            content = json.dumps(body)
            headers["Content-Type"] = "application/json"
        timeout = self.config.timeout_s if timeout_s is None else timeout_s
        started = time.monotonic()
        try:
            response = self._http.request(method, path, params=params, content=content,
                                          headers=headers, timeout=timeout)
        except httpx.TimeoutException:
            raise ApiError(0, f"no answer from {self._where()} within "
                              f"{timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise ApiError(0, f"cannot reach {self._where()}: {mask(str(exc))}") from None
        LOG.debug("%s %s%s -> %s in %.0f ms", method, self._where(), path,
                  response.status_code, (time.monotonic() - started) * 1000)
        if response.status_code >= 400:
            raise ApiError(response.status_code, mask(fault_message(response)))
        if response.status_code in (202, 204) and not response.content:
            return None
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ApiError(response.status_code,
                           f"{method} {path}: the answer is not JSON") from None

    def _where(self) -> str:
        return str(mask(self.config.url))


def _max_version(document: Any) -> str:
    try:
        version = document["version"]["version"]
    except (TypeError, KeyError):
        raise ApiError(0, "GET /v1/ did not name the server's API version") from None
    return str(version)
