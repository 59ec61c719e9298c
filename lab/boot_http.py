"""The boot service's HTTP side alone (files, iPXE scripts, image cache, the image store's range
reads), from the ``ENCLUME_*`` environment: ``python -m lab.boot_http``.

``enclume-boot`` serves the same app but also starts dnsmasq (DHCP, TFTP) on
``ENCLUME_BOOT_INTERFACE``; a simulated room whose PCs are already running their agent needs
only the HTTP side, and no DHCP server of a test may answer on a shared machine.
"""

from __future__ import annotations

import uvicorn

from services.boot.http import create_boot_app
from services.common import logs
from services.common.config import get_settings
from services.common.db import open_database


def main() -> None:
    settings = get_settings()
    logs.setup("info")  # as enclume-boot: the multicast sessions' start lines among them
    app = create_boot_app(settings, open_database(settings))
    uvicorn.run(app, host=settings.boot.http_host, port=settings.boot.http_port,
                log_level="warning", access_log=False, log_config=None,
                timeout_keep_alive=settings.process.http_keep_alive_s)


if __name__ == "__main__":
    main()
