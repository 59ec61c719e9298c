"""The API application: Ironic v1 routes behind version negotiation, auth and a body limit."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Depends, FastAPI

from services.api import (
    agent_endpoints,
    allocations,
    chassis,
    conductors,
    deploy_templates,
    discovery,
    drivers,
    errors,
    inspection_rules,
    node_bios,
    node_boot_mode,
    node_children,
    node_console,
    node_firmware,
    node_history,
    node_states,
    node_traits,
    node_vifs,
    node_vmedia,
    nodes,
    portgroups,
    ports,
    root,
    runbook_traits,
    runbooks,
    shards,
    versions,
    volumes,
)
from services.api.auth import BasicAuthMiddleware, effective_strategy, identity_source
from services.api.enclume import events as enclume_events
from services.api.enclume import image_capture as enclume_image_capture
from services.api.enclume import image_store as enclume_image_store
from services.api.enclume import image_uploads as enclume_image_uploads
from services.api.enclume import images as enclume_images
from services.api.enclume import jobs as enclume_jobs
from services.api.enclume import pc_login_choice as enclume_pc_login_choice
from services.api.enclume import pc_logins as enclume_pc_logins
from services.api.enclume import rooms as enclume_rooms
from services.api.enclume import root as enclume_root
from services.api.enclume import save_and_log_out as enclume_save_and_log_out
from services.api.enclume import session_service as enclume_session_service
from services.api.enclume import sessions as enclume_sessions
from services.api.enclume import student_states as enclume_student_states
from services.api.json_suffix import JsonSuffixMiddleware
from services.api.limits import BodySizeLimitMiddleware
from services.api.openapi_install import install_openapi
from services.api.policy_gate import enforce_policy
from services.api.request_id import RequestIdMiddleware
from services.api.responses import SafeJSONResponse
from services.api.ui.app import install as install_web_page
from services.api.versions import VersionMiddleware
from services.common.config import Settings
from services.common.db import Database
from services.common.lifecycle import Service, lifespan_of
from services.common.membership import Membership
from services.common.metrics_asgi import MetricsEndpoint, RequestTimer
from services.conductor.interface import ConductorAPI


def _speakable_routers() -> list[APIRouter]:
    """The routers of resources built ahead of the versions Enclume speaks (runbooks 1.92,
    inspection rules 1.96): included once ``MAX_VERSION`` reaches theirs (until then their
    paths are 404 at every version, as unserved resources are)."""
    return [router for since, router in ((runbooks.VERSION, runbooks.router),
                                         (runbooks.VERSION, runbook_traits.router),
                                         (inspection_rules.VERSION, inspection_rules.router))
            if since <= versions.MAX_VERSION]


def create_app(settings: Settings, db: Database, conductor_api: ConductorAPI,
               membership: Membership,
               services: Sequence[Service] = ()) -> FastAPI:
    strategy = effective_strategy(settings)
    source = identity_source(settings, strategy)
    app = FastAPI(title="Enclume", docs_url=None, redoc_url=None,
                  lifespan=lifespan_of(services), default_response_class=SafeJSONResponse)
    app.state.settings = settings
    app.state.db = db
    app.state.conductor_api = conductor_api
    app.state.membership = membership
    app.state.identity_source = source
    app.state.pc_login_limiter = enclume_pc_logins.limiter_for(settings)
    app.state.pc_login_tickets = enclume_pc_login_choice.Tickets(settings)
    app.state.discovery_rules = discovery.load_rules(settings)
    if settings.api.policy_file is not None:  # else Ironic's defaults (policy.rules_of)
        from services.api import policy_file  # YAML and the parser only when a file is set

        app.state.policy_rules = policy_file.load_rules(settings.api.policy_file)
    errors.install(app)
    # Routes with fixed segments (/detail, /ports) come before /{ident}.
    for router in (root.router, ports.router, portgroups.router, chassis.router,
                   allocations.router, deploy_templates.router, *_speakable_routers(),
                   node_history.router, node_bios.router, node_firmware.router,
                   node_console.router, node_children.router,
                   nodes.router, node_states.router, node_boot_mode.router, node_traits.router,
                   node_vifs.router, node_vmedia.router, volumes.router,
                   shards.router, drivers.router, conductors.router, agent_endpoints.router,
                   discovery.router, enclume_root.router, enclume_images.router,
                   enclume_image_uploads.router, enclume_image_store.router,
                   enclume_image_capture.router,
                   enclume_rooms.router, enclume_sessions.router, enclume_jobs.router,
                   enclume_events.router, enclume_session_service.router,
                   enclume_student_states.router, enclume_pc_login_choice.router,
                   enclume_pc_logins.router, enclume_save_and_log_out.router):
        app.include_router(router, dependencies=[Depends(enforce_policy)])
    install_openapi(app)
    install_web_page(app, settings, source)  # /ui/: the teacher web page
    # Starlette runs the last added middleware first: the request id, timer, size limit, auth,
    # versions, then /metrics (behind auth when ENCLUME_METRICS_REQUIRE_AUTH, else public).
    metrics = settings.metrics
    if metrics.enabled:
        app.add_middleware(MetricsEndpoint)
    app.add_middleware(JsonSuffixMiddleware)  # below 1.91: a path's .json suffix dropped
    app.add_middleware(VersionMiddleware)
    public_metrics = metrics.enabled and not metrics.require_auth
    if strategy == "keystone":
        from services.api.keystone_auth import KeystoneAuthMiddleware, KeystoneTokens

        app.add_middleware(KeystoneAuthMiddleware, tokens=KeystoneTokens(settings.keystone),
                           public_metrics=public_metrics)
    elif source is not None:
        app.add_middleware(BasicAuthMiddleware, source=source, public_metrics=public_metrics)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.api.max_request_body_bytes,
                       unlimited=enclume_image_uploads.is_upload_body)
    if metrics.enabled:
        app.add_middleware(RequestTimer)
    app.add_middleware(RequestIdMiddleware)  # first of all: every answer names its request
    return app
