"""The options every service's HTTP server (uvicorn) runs with."""

from __future__ import annotations

from typing import Any

from services.common.config_service_sections import ProcessSettings


def uvicorn_options(process: ProcessSettings, *, access_log: bool | None = None) -> dict[str, Any]:
    """uvicorn's logging through ours (the scrubbing handlers of services.common.logs) at the
    process's level, and its idle connections kept ``process.http_keep_alive_s``."""
    return {"log_level": process.log_level.lower(),
            "access_log": process.access_log if access_log is None else access_log,
            "log_config": None,
            "timeout_keep_alive": process.http_keep_alive_s}
