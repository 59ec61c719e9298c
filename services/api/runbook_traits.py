"""/v1/runbooks/{ident}/traits: a runbook's traits (API 1.112, Ironic's RunbookTraitsController;
404 below it, and runbooks' own 404/405 below 1.92). A node may run a runbook when one of its
traits is among the runbook's (``runbooks.provision_options``). Included with the runbooks'
routes (services/api/app.py)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request, Response

from services.api import runbooks
from services.api.deps import api_version, database
from services.api.routing import api_router
from services.api.versions import Version
from services.common import validation
from services.common.db import Database
from services.common.exceptions import Invalid, NotFound

router = api_router(prefix="/v1/runbooks")

ONE_OR_ALL = ("A single runbook trait may be added via PUT /v1/runbooks/<runbook identifier>/"
              "traits/<trait> with no body, or all runbook traits may be replaced via PUT "
              "/v1/runbooks/<runbook identifier>/traits with the list of traits specified in "
              "the request body.")


def _check_version(version: Version, method: str) -> None:
    runbooks.check_version(version, method)
    if version < runbooks.TRAITS_VERSION:
        raise NotFound("The API version does not allow runbook traits")


def checked_traits(values: Any) -> list[str]:
    """Traits (Ironic's TRAITS_SCHEMA each), without duplicates; no limit on their number."""
    if not isinstance(values, list):
        raise Invalid(f"Schema error for traits: {validation.shown(values)} is not of type "
                      "'array'")
    for trait in values:
        validation.traits([trait])
    return list(dict.fromkeys(values))


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return await request.json()
    except ValueError:
        raise Invalid("The request body is not valid JSON.") from None


@router.get("/{ident}/traits")
def get_traits(ident: str, version: Version = Depends(api_version),
               db: Database = Depends(database)) -> dict[str, Any]:
    _check_version(version, "GET")
    with db.session() as session:
        return {"traits": list(runbooks.find_runbook(session, ident).traits)}


@router.put("/{ident}/traits", status_code=204)
async def set_traits(ident: str, request: Request, version: Version = Depends(api_version),
                     db: Database = Depends(database)) -> Response:
    _check_version(version, "PUT")
    body = await _body(request)
    if isinstance(body, dict) and set(body) - {"traits"}:
        raise Invalid("Schema error for body: Additional properties are not allowed ("
                      + ", ".join(repr(k) for k in sorted(set(body) - {"traits"}))
                      + " unexpected)")
    if not isinstance(body, dict) or "traits" not in body:
        raise Invalid(ONE_OR_ALL)
    traits = checked_traits(body["traits"])
    with db.session() as session:
        runbooks.find_runbook(session, ident).traits = traits
    return Response(status_code=204)


@router.put("/{ident}/traits/{trait}", status_code=204)
async def add_trait(ident: str, trait: str, request: Request,
                    version: Version = Depends(api_version),
                    db: Database = Depends(database)) -> Response:
    _check_version(version, "PUT")
    validation.traits([trait])
    body = await _body(request)
    if isinstance(body, dict) and "traits" in body:
        raise Invalid(ONE_OR_ALL)
    if body:
        raise Invalid("No body should be provided when adding a trait")
    with db.session() as session:
        runbook = runbooks.find_runbook(session, ident)
        if trait not in runbook.traits:  # adding one it has is no error, as Ironic
            runbook.traits = [*runbook.traits, trait]
        location = f"{request.base_url}v1/runbooks/{ident}/traits/{trait}"
    return Response(status_code=204, headers={"Location": location})


@router.delete("/{ident}/traits", status_code=204)
def remove_traits(ident: str, version: Version = Depends(api_version),
                  db: Database = Depends(database)) -> Response:
    _check_version(version, "DELETE")
    with db.session() as session:
        runbooks.find_runbook(session, ident).traits = []
    return Response(status_code=204)


@router.delete("/{ident}/traits/{trait}", status_code=204)
def remove_trait(ident: str, trait: str, version: Version = Depends(api_version),
                 db: Database = Depends(database)) -> Response:
    _check_version(version, "DELETE")
    with db.session() as session:
        runbook = runbooks.find_runbook(session, ident)
        # Removing a trait the runbook does not have is no error, as Ironic.
        runbook.traits = [t for t in runbook.traits if t != trait]
    return Response(status_code=204)
