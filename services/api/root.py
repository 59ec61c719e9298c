"""``GET /`` and ``GET /v1/``: what keystoneauth and the clients use for version discovery."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from services.api.routing import api_router
from services.api.versions import MAX_VERSION, MIN_VERSION, format_version
from services.api.views import base_url

router = api_router()


def _version_document(request: Request) -> dict[str, Any]:
    return {
        "id": "v1",
        "links": [{"href": f"{base_url(request)}/v1/", "rel": "self"}],
        "status": "CURRENT",
        "min_version": format_version(MIN_VERSION),
        "version": format_version(MAX_VERSION),
    }


@router.get("/")
def root(request: Request) -> dict[str, Any]:
    version = _version_document(request)
    return {
        "name": "OpenStack Ironic API",
        "description": "Enclume speaks the Ironic bare metal provisioning API. It provisions "
                       "physical machines: power, network boot, image writing, networks.",
        "versions": [version],
        "default_version": version,
    }


@router.get("/v1")
@router.get("/v1/")
def v1(request: Request) -> dict[str, Any]:
    base = base_url(request)

    def resource(name: str) -> list[dict[str, str]]:
        return [{"href": f"{base}/v1/{name}/", "rel": "self"},
                {"href": f"{base}/{name}/", "rel": "bookmark"}]

    return {
        "id": "v1",
        "links": [{"href": f"{base}/v1/", "rel": "self"},
                  {"href": "https://docs.openstack.org/ironic/latest/contributor/webapi.html",
                   "rel": "describedby", "type": "text/html"}],
        "media_types": [{"base": "application/json",
                         "type": "application/vnd.openstack.ironic.v1+json"}],
        "nodes": resource("nodes"),
        "ports": resource("ports"),
        "drivers": resource("drivers"),
        "conductors": resource("conductors"),
        "allocations": resource("allocations"),
        "deploy_templates": resource("deploy_templates"),
        "version": _version_document(request),
    }
