"""The web console page in a real browser (#22): enclume-aio in process, a node whose console is
IPMI Serial-over-LAN from OpenIPMI's ipmi_sim (tests/support/sol_bmc.py). The page from the
node's console_info URL connects its websocket, shows what the machine writes on its serial
line, and the keys typed on the page reach the line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By

from services.aio import build
from services.common.config import Settings
from tests.integration.test_console_sol import enabled_console, enroll
from tests.support.api_stack import HEADERS
from tests.support.asgi import bound_socket, serving
from tests.support.browser import open_page, screenshot, until
from tests.support.polling import eventually
from tests.support.sol_bmc import SerialLine, SolBmc


@pytest.fixture
def api(tmp_path: Path) -> Iterator[httpx.Client]:
    sock = bound_socket()
    settings = Settings(process={"data_dir": tmp_path / "data"},
                        api={"port": sock.getsockname()[1]},
                        conductor={"hostname": "conductor-console-page"}, ipmi={"timeout_s": 10})
    with serving(build(settings), sock=sock) as url, httpx.Client(
            base_url=url, timeout=30, headers=HEADERS) as client:
        yield client


def test_the_console_page_shows_the_line_and_sends_keys(
        tmp_path: Path, api: httpx.Client, chromium: Chrome) -> None:
    line = SerialLine()
    try:
        with SolBmc(tmp_path / "bmc", line.address) as bmc:
            eventually(lambda: line.connected, 30, "ipmi_sim connecting to the serial line")
            uuid = enroll(api, "ipmi", bmc.driver_info(), "ipmitool-shellinabox")
            info = enabled_console(api, uuid)["console_info"]
            open_page(chromium, info["url"])
            status = chromium.find_element(By.ID, "status")
            until(lambda: status.text == "connected: type here", 30,
                  "the page's websocket connected")

            line.send(b"Debian GNU/Linux 13 pc01 ttyS0\r\npc01 login: ")
            screen = chromium.find_element(By.ID, "screen")
            until(lambda: "pc01 login:" in screen.text, 30, "the machine's output on the page")
            assert "Debian GNU/Linux 13 pc01 ttyS0" in screen.text

            screen.send_keys("root\n")
            eventually(lambda: b"root\r" in line.received(), 30,
                       "the keys typed on the page on the serial line")
            screenshot(chromium, "console-page.png")

            assert api.put(f"/v1/nodes/{uuid}/states/console",
                           json={"enabled": False}).status_code == 202
            until(lambda: status.text == "closed: console disabled", 30,
                  "the page saying why its console closed")
    finally:
        line.close()
