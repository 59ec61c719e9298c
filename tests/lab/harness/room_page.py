"""The teacher's room page (`/ui/rooms/ROOM`) open in headless chromium while the lab restores
the room: what a teacher watching the page during a real restore sees.

The lab's enclume-aio runs with noauth, so the page has no login: every visitor is an admin
(`RoomPage` checks it was not sent to a login page). Once the page shows the room's PCs, a
small recorder is set in the page's window: every 100 ms it appends each card's state text when
it changed (`seen()`), and `window.sameDocument` marks the document, so a reload (which would
lose both) is noticed. With `ENCLUME_SCREENSHOTS=DIR` (`make lab-screenshots`) the page's
picture is saved there while a PC restores and at the end.
"""

from __future__ import annotations

import re
import time
from contextlib import ExitStack
from typing import Any

from selenium.webdriver import Chrome

from tests.lab.harness.processes import LabError
from tests.support.browser import cards, headless_chromium, screenshot, until

PAGE_TIMEOUT_S = 30.0
RECORD_EVERY_MS = 100
RESTORING = re.compile(r"^restoring (\d+) %")  # "restoring 63 %", "restoring 63 % at 2.1 MB/s"
RECORDER = f"""
window.sameDocument = true;
window.cardsSeen = {{}};
setInterval(() => {{
  for (const card of document.querySelectorAll('.status')) {{
    const state = card.querySelector('.state').textContent.trim();
    const seen = (window.cardsSeen[card.dataset.pc] ||= []);
    if (seen[seen.length - 1] !== state) seen.push(state);
  }}
}}, {RECORD_EVERY_MS});
"""


class RoomPage:
    """`with RoomPage(api_url, room, pcs) as page:` — the room's page, open until the block
    ends (the browser quits however it ends); `poll()` often while the room restores."""

    def __init__(self, api_url: str, room: str, pcs: list[str]) -> None:
        self.url = f"{api_url}/ui/rooms/{room}"
        self.room = room
        self.pcs = sorted(pcs)
        self.opened_in_s = 0.0  # chromium started and the page showing the PCs
        self._stack = ExitStack()
        self._browser: Chrome | None = None
        self._restoring_saved = False

    def __enter__(self) -> RoomPage:
        started = time.monotonic()
        with ExitStack() as stack:
            self._browser = stack.enter_context(headless_chromium())
            self._browser.get(self.url)
            if "/ui/login" in self._browser.current_url:
                raise LabError(f"{self.url} asked for a login: the lab's API should be noauth")
            until(lambda: sorted(cards(self.browser)) == self.pcs, PAGE_TIMEOUT_S,
                  f"the page of {self.room} to show {self.pcs}")
            self._browser.execute_script(RECORDER)
            self._stack = stack.pop_all()
        self.opened_in_s = time.monotonic() - started
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def browser(self) -> Chrome:
        if self._browser is None:
            raise LabError("the room page is not open")
        return self._browser

    def poll(self) -> None:
        """Saves the mid-restore picture the first time a card shows a percentage between 0
        and 100."""
        if not self._restoring_saved and any(
                0 < (percent(state) or 0) < 100 for state in cards(self.browser).values()):
            screenshot(self.browser, "lab-room-restoring.png")
            self._restoring_saved = True

    def seen(self) -> dict[str, list[str]]:
        """Each PC's card states, in the order the page showed them."""
        recorded: dict[str, Any] = self.browser.execute_script("return window.cardsSeen;")
        return {str(pc): [str(state) for state in states] for pc, states in recorded.items()}

    def same_document(self) -> bool:
        return bool(self.browser.execute_script("return window.sameDocument === true;"))

    def wait_for(self, expected: dict[str, str], timeout: float) -> dict[str, str]:
        """The cards once they show `expected` (each PC's state text); the end's picture."""
        try:
            until(lambda: cards(self.browser) == expected, timeout,
                  f"the page to show {expected}")
        except AssertionError as late:
            raise AssertionError(f"{late}; the page shows {cards(self.browser)}") from None
        screenshot(self.browser, "lab-room-restored.png")
        return cards(self.browser)


def percent(state: str) -> int | None:
    """The percentage of a card's "restoring N %" state; None for any other state."""
    restoring = RESTORING.match(state)
    return int(restoring.group(1)) if restoring else None
