"""Logging set-up shared by every service."""

from __future__ import annotations

import logging


def setup(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
