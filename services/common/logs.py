"""Logging set-up shared by every service: one format, and every line scrubbed of secrets
(`services.common.secrets.LogScrubber` on the root handlers, which uvicorn's and every
third-party logger reach: the services run uvicorn with ``log_config=None``)."""

from __future__ import annotations

import logging

from services.common.secrets import scrub_logs


def setup(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    scrub_logs()
