"""Reading a service's ``GET /metrics`` the way Prometheus does: over HTTP, parsed by
prometheus_client's own text parser."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from services.common.metrics_asgi import METRICS_PATH, MetricsEndpoint
from tests.support.asgi import serving


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


class Scrape:
    def __init__(self, text: str) -> None:
        self.samples = [Sample(s.name, dict(s.labels), s.value)
                        for family in text_string_to_metric_families(text)
                        for s in family.samples]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
        return sum(s.value for s in self.samples
                   if s.name == name and labels.items() <= s.labels.items())

    def names(self) -> set[str]:
        return {s.name for s in self.samples}

    def label_values(self, name: str, label: str) -> set[str]:
        return {s.labels[label] for s in self.samples if s.name == name and label in s.labels}


def parse(text: str) -> Scrape:
    return Scrape(text)


def scrape(base_url: str, **request: Any) -> Scrape:
    response = httpx.get(base_url + METRICS_PATH, timeout=10, **request)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


async def _no_route(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@contextmanager
def this_process_endpoint() -> Iterator[str]:
    """``/metrics`` of the test process itself, served on loopback (for services the test
    runs in process without an HTTP side of their own, such as TFTP)."""
    with serving(MetricsEndpoint(_no_route)) as url:
        yield url
