"""The lab's reading of the room page's card states (tests/lab/harness/room_page.py) matches
the words the page writes (services/api/ui/status.py)."""

from __future__ import annotations

import pytest

from services.api.ui.i18n import translator
from services.api.ui.status import PcStatus, state_words
from tests.lab.harness.room_page import percent

ENGLISH = translator("en")


@pytest.mark.parametrize("rate", [None, 2.1, 11.0])  # "restoring 63 %", "… at 2.1 MB/s"
def test_a_restoring_card_gives_its_percentage(rate: float | None) -> None:
    status = PcStatus(uuid="u", name="pc", power="power on", provision="deploying", job="j",
                      kind="restore", step="write", percent=63)
    assert percent(state_words(status, ENGLISH, rate)) == 63


def test_other_cards_give_none() -> None:
    waiting = PcStatus(uuid="u", name="pc", power=None, provision="available", job="j",
                       kind="restore", step="queued")
    active = PcStatus(uuid="u", name="pc", power="power on", provision="active",
                      image="lab-os:v1")
    no_percent = PcStatus(uuid="u", name="pc", power=None, provision="deploying", job="j",
                          kind="restore", step="write")
    for status in (waiting, active, no_percent):
        assert percent(state_words(status, ENGLISH)) is None, state_words(status, ENGLISH)
