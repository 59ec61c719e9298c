"""``enclume-api``: the API service. Until conductors run as their own processes (cluster
mode), it hosts a conductor in process, like ``enclume-aio``, on ENCLUME_DATABASE_URL."""

from __future__ import annotations

import sys

from services.aio import serve
from services.common.config import get_settings


def main() -> None:
    sys.exit(serve(get_settings()))
