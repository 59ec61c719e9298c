"""/v1/nodes/{ident}: a node's states and what changes them (provision, power, boot device,
maintenance) and the validation of its interfaces."""

from __future__ import annotations

from typing import Any

from fastapi import Body, Depends, Request, Response

from services.api import node_rules, runbooks, versions
from services.api.deps import api_version, conductor, database, find_node
from services.api.drivers import RAID_VERSION
from services.api.nodes import NodeRenderer, full_fields
from services.api.routing import api_router
from services.api.versions import Version
from services.api.views import NODE_STATES_FIELDS
from services.common import states, validation
from services.common.db import Database
from services.common.exceptions import Invalid, NotAcceptable
from services.common.hardware_types import BOOT_DEVICES
from services.common.models import Node
from services.conductor.interface import ConductorAPI

DEPLOY_WAIT_ABORT_VERSION: Version = (1, 110)
# disable_ramdisk by target (Ironic's check_allow_disable_ramdisk): 406 below, 400 elsewhere.
DISABLE_RAMDISK_VERSIONS: dict[str, Version] = {"clean": (1, 70), "service": (1, 108)}

router = api_router(prefix="/v1/nodes")
# Targets Ironic answers 406 to below their version (the others: 400).
NOT_ACCEPTABLE_BELOW: dict[str, Version] = {
    target: states.API_TARGET_MIN_VERSION[target] for target in ("unhold", "service")}


# -- states --------------------------------------------------------------------------------


@router.get("/{ident}/states")
def node_states(ident: str, request: Request, version: Version = Depends(api_version),
                db: Database = Depends(database)) -> dict[str, Any]:
    with db.session() as session:
        node = find_node(session, ident, version)
        fields = [f for f in NODE_STATES_FIELDS if f in full_fields(version)]
        return NodeRenderer(request, session, version, fields).one(node)


def _accepted(request: Request, node: Node) -> Response:
    return Response(status_code=202,
                    headers={"Location": f"{request.base_url}v1/nodes/{node.uuid}/states"})


@router.put("/{ident}/states/provision", status_code=202)
def set_provision_state(ident: str, request: Request, body: Any = Body(...),
                        version: Version = Depends(api_version),
                        db: Database = Depends(database),
                        manager: ConductorAPI = Depends(conductor)) -> Response:
    if not isinstance(body, dict) or "target" not in body:
        raise Invalid("Invalid request: a provision state change needs a \"target\".")
    known = {"target", "configdrive", "clean_steps", "deploy_steps", "rescue_password",
             "disable_ramdisk", "runbook", "service_steps"}
    unknown = set(body) - known
    if unknown:
        raise Invalid(f"Unknown attribute(s) for a provision state change: "
                      f"{', '.join(sorted(unknown))}.")
    target = body["target"]
    if isinstance(target, str) and version < NOT_ACCEPTABLE_BELOW.get(target, version):
        raise NotAcceptable("Not Acceptable")  # Ironic's answer to unhold, service below
    if not isinstance(target, str) or target not in states.API_TARGET_EVENTS or (
        version < states.API_TARGET_MIN_VERSION.get(target, (1, 1))
    ):
        raise Invalid(f"The requested provision state target \"{target}\" is not valid at API "
                      f"version {version[0]}.{version[1]}.")
    if body.get("configdrive") is not None and target not in ("active", "deploy", "rebuild"):
        raise Invalid("A config drive can only be given when deploying or rebuilding.")
    if isinstance(body.get("configdrive"), dict) and version < (1, 56):
        raise Invalid("A config drive given as JSON needs API version 1.56 or newer.")
    options = {k: v for k, v in body.items() if k != "target"}
    if not isinstance(options.get("configdrive"), str | dict | None):
        raise Invalid("Invalid configdrive: expected a string or a JSON object.")
    if options.get("deploy_steps") is not None:
        if target not in ("active", "deploy", "rebuild"):  # "deploy": 1.73's name of active
            raise Invalid("\"deploy_steps\" is only valid when setting target provision "
                          "state to active or rebuild")
        options["deploy_steps"] = validation.deploy_steps("deploy_steps",
                                                          options["deploy_steps"])
    if options.get("service_steps") and target != "service":
        raise Invalid("\"service_steps\" is only valid when setting target provision state "
                      "to service")
    if target == "service" and options.get("runbook") is None:
        options["service_steps"] = _service_steps(options.get("service_steps"))
    if options.get("disable_ramdisk") is not None:
        options["disable_ramdisk"] = validation.boolean("disable_ramdisk",
                                                        options["disable_ramdisk"])
    if options.get("rescue_password") is not None:
        options["rescue_password"] = validation.text("rescue_password",
                                                     options["rescue_password"])
    with db.session() as session:
        node = find_node(session, ident, version)
        _check_deploy_wait_abort(node, target, version)
        if options.get("runbook") is not None:
            options = runbooks.provision_options(request, session, node, target, options,
                                                 version)
        options.pop("runbook", None)
    _check_disable_ramdisk(node, target, options.get("disable_ramdisk"), version)
    _check_rescue_password(node, target, options.get("rescue_password"))
    manager.do_provisioning_action(node.uuid, target, options)
    return _accepted(request, node)


def _service_steps(steps: Any) -> list[dict[str, Any]]:
    if not steps:
        raise Invalid('"service_steps" is required when setting target provision state to '
                      "service")
    return validation.service_steps("service_steps", steps)


def _check_deploy_wait_abort(node: Node, target: str, version: Version) -> None:
    """Ironic's 406 for an abort in ``wait call-back`` below API 1.110. Enclume aborted a
    deploy there before it spoke 1.110, at every version: it refuses them once it speaks it."""
    if (target == "abort" and node.provision_state == states.ProvisionState.DEPLOYWAIT
            and version < DEPLOY_WAIT_ABORT_VERSION <= versions.MAX_VERSION):
        raise NotAcceptable("Request not acceptable.")


def _check_disable_ramdisk(node: Node, target: str, disable_ramdisk: bool | None,
                           version: Version) -> None:
    """Ironic's, after its check of the node's state (a runbook's value counts: a service
    with a runbook is 406 below 1.108, as in Ironic). Servicing never boots a ramdisk here
    (steps on the agent are refused), so ``disable_ramdisk`` changes nothing in its flow."""
    if disable_ramdisk is None or not states.allows(node.provision_state,
                                                    states.API_TARGET_EVENTS[target]):
        return
    if target not in DISABLE_RAMDISK_VERSIONS:
        raise Invalid("disable_ramdisk is supported only with manual cleaning or servicing")
    if version < DISABLE_RAMDISK_VERSIONS[target]:
        raise NotAcceptable("disable_ramdisk is not acceptable in this API version")


def _check_rescue_password(node: Node, target: str, password: str | None) -> None:
    """Ironic's checks of a rescue password, after its check of the node's state."""
    if not states.allows(node.provision_state, states.API_TARGET_EVENTS[target]):
        return  # the conductor refuses it in Ironic's words
    if password is not None and target != "rescue":
        raise Invalid('"rescue_password" is only valid when setting target provision state '
                      "to rescue")
    if target == "rescue" and not (password or "").strip():
        raise Invalid('A non-empty "rescue_password" is required when setting target '
                      "provision state to rescue")


@router.put("/{ident}/states/power", status_code=202)
def set_power_state(ident: str, request: Request, body: Any = Body(...),
                    version: Version = Depends(api_version), db: Database = Depends(database),
                    manager: ConductorAPI = Depends(conductor)) -> Response:
    if not isinstance(body, dict) or "target" not in body:
        raise Invalid("Invalid request: a power state change needs a \"target\".")
    unknown = set(body) - {"target", "timeout"}
    if unknown:
        raise Invalid(f"Unknown attribute(s) for a power state change: "
                      f"{', '.join(sorted(unknown))}.")
    timeout = body.get("timeout")
    if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool)
                                or timeout < 1):
        raise Invalid("Invalid timeout: expected a positive number of seconds.")
    target = validation.text("target", body["target"])
    with db.session() as session:
        node = find_node(session, ident, version)
    manager.change_power_state(node.uuid, target, timeout)
    return _accepted(request, node)


@router.put("/{ident}/states/raid", status_code=204)
def set_target_raid_config(ident: str, body: Any = Body(...),
                           version: Version = Depends(api_version),
                           db: Database = Depends(database),
                           manager: ConductorAPI = Depends(conductor)) -> Response:
    """The node's target RAID configuration (1.12), checked by its raid interface against
    Ironic's schema; an empty object unsets it."""
    if not isinstance(body, dict):
        raise Invalid(f"Expected types <class 'dict'> for target_raid_config: {body}")
    with db.session() as session:
        node = find_node(session, ident, version)
    if version < RAID_VERSION:
        raise NotAcceptable("Request not acceptable.")
    manager.set_target_raid_config(node.uuid, body)
    return Response(status_code=204)


# -- management, maintenance, validation ---------------------------------------------------


@router.get("/{ident}/management/boot_device")
def get_boot_device(ident: str, version: Version = Depends(api_version),
                    db: Database = Depends(database),
                    manager: ConductorAPI = Depends(conductor)) -> dict[str, Any]:
    with db.session() as session:
        node = find_node(session, ident, version)
    return manager.get_boot_device(node.uuid)


@router.get("/{ident}/management/boot_device/supported")
def supported_boot_devices(ident: str, version: Version = Depends(api_version),
                           db: Database = Depends(database),
                           manager: ConductorAPI = Depends(conductor)) -> dict[str, Any]:
    with db.session() as session:
        node = find_node(session, ident, version)
    return {"supported_boot_devices": manager.get_supported_boot_devices(node.uuid)}


@router.put("/{ident}/management/boot_device", status_code=204)
def set_boot_device(ident: str, body: Any = Body(...), version: Version = Depends(api_version),
                    db: Database = Depends(database),
                    manager: ConductorAPI = Depends(conductor)) -> Response:
    if not isinstance(body, dict) or not isinstance(body.get("boot_device"), str):
        raise Invalid("Invalid request: expected {\"boot_device\": ..., \"persistent\": ...}.")
    if body["boot_device"] not in BOOT_DEVICES:
        raise Invalid(f"Invalid boot device {body['boot_device']!r}, expected one of "
                      f"{', '.join(BOOT_DEVICES)}.")
    persistent = validation.boolean("persistent", body.get("persistent", False))
    with db.session() as session:
        node = find_node(session, ident, version)
    manager.set_boot_device(node.uuid, body["boot_device"], persistent)
    return Response(status_code=204)


@router.put("/{ident}/maintenance", status_code=202)
def set_maintenance(ident: str, body: Any = Body(None), version: Version = Depends(api_version),
                    db: Database = Depends(database)) -> Response:
    reason = body.get("reason") if isinstance(body, dict) else None
    if reason is not None:
        reason = validation.text("maintenance_reason", reason)
    with db.session() as session:
        node = find_node(session, ident, version)
        node.maintenance = True
        node.maintenance_reason = reason
    return Response(status_code=202)


@router.delete("/{ident}/maintenance", status_code=202)
def unset_maintenance(ident: str, version: Version = Depends(api_version),
                      db: Database = Depends(database)) -> Response:
    with db.session() as session:
        node = find_node(session, ident, version)
        node.maintenance = False
        node.maintenance_reason = None
        node.fault = None
    return Response(status_code=202)


@router.get("/{ident}/validate")
def validate_node(ident: str, version: Version = Depends(api_version),
                  db: Database = Depends(database),
                  manager: ConductorAPI = Depends(conductor)) -> dict[str, Any]:
    with db.session() as session:
        node = find_node(session, ident, version)
    result = manager.validate(node.uuid)
    if version < (1, 40):
        result.pop("bios", None)
    return {k: v for k, v in result.items()
            if node_rules.field_known(f"{k}_interface", version)
            or k in ("power", "deploy", "console", "management")}
