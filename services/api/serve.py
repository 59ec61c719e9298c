"""Serving an API app with uvicorn: the services it starts first, then HTTP (``enclume-api``
and ``enclume-aio``). A service that cannot start stops the process with its message."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from services.common.config import Settings
from services.common.lifecycle import StartedFirst
from services.common.logs import setup as setup_logging
from services.common.memory import release_free_heap
from services.common.uvicorn_options import uvicorn_options

LOG = logging.getLogger("enclume.api")


def serve(app_factory: Callable[[Settings], FastAPI], settings: Settings) -> int:
    setup_logging(settings.process.log_level)
    if (settings.api.tls_cert_file is None) != (settings.api.tls_key_file is None):
        LOG.error("refusing to start: ENCLUME_API_TLS_CERT_FILE and ENCLUME_API_TLS_KEY_FILE "
                  "go together")
        return 2
    started_first: StartedFirst | None = None
    try:
        app = app_factory(settings)
        started_first = getattr(app.state, "started_first", None)
        if started_first is not None:
            started_first.start_now()
    except RuntimeError as exc:  # AuthConfigError, the boot child's StartError ...
        LOG.error("refusing to start: %s", exc)
        return 2
    # What was built so far (modules, app, settings) lives as long as the process: moved out of
    # the collector's reach, the full collections under load stop walking it again and again.
    gc.collect()  # the import's and the app's build garbage first, so its memory can be reused
    gc.freeze()
    release_free_heap()
    tls = settings.api.tls_cert_file is not None and settings.api.tls_key_file is not None
    LOG.info("serving the Ironic API on %s://%s:%d", "https" if tls else "http",
             settings.api.host, settings.api.port)
    try:
        uvicorn.run(app, host=settings.api.host, port=settings.api.port,
                    ssl_certfile=settings.api.tls_cert_file if tls else None,
                    ssl_keyfile=settings.api.tls_key_file if tls else None,
                    **uvicorn_options(settings.process))
    finally:
        if started_first is not None:
            started_first.stop()  # when uvicorn could not serve (its lifespan stops it otherwise)
    return 0
