"""What a PC's card says (tests/unit/test_web_page.py has the pages): the state words in
English and French, the failure's reason without the node's UUID, the write rate from two looks
at its bytes, and the SSE framing of an HTML card."""

from __future__ import annotations

import time
from dataclasses import replace
from types import SimpleNamespace

from services.api.ui.cookies import COOKIE, SessionCookies, WebSession
from services.api.ui.i18n import translator
from services.api.ui.status import PcStatus, reason_words, state_words, tone
from services.api.ui.stream import CardWatcher, html_event

EN, FR = translator("en"), translator("fr")
IDLE = PcStatus(uuid="u1", name="b12-pc01", power="power on", provision="available")
RESTORING = replace(IDLE, provision="deploying", job="j1", kind="restore", step="deploying",
                    percent=63, bytes_done=630_000_000)


def test_the_state_words_of_each_situation() -> None:
    assert state_words(IDLE, EN) == "ready"
    assert state_words(replace(IDLE, job="j1", kind="restore", step="queued"), EN) \
        == "waiting to start"
    assert state_words(RESTORING, EN) == "restoring 63 %"
    assert state_words(RESTORING, EN, 11.04) == "restoring 63 % at 11 MB/s"
    assert state_words(RESTORING, FR, 2.54) == "restauration 63 % à 2,5 Mo/s"
    assert state_words(replace(IDLE, job="j1", kind="wake", step="power on requested"), EN) \
        == "powering on"
    active = replace(IDLE, provision="active", job="j1", kind="restore", outcome="succeeded",
                     image="debian-12:2026-09")
    assert state_words(active, EN) == "active on debian-12:2026-09"
    assert state_words(active, FR) == "actif sur debian-12:2026-09"
    failed = replace(RESTORING, outcome="failed", provision="deploy failed",
                     error="Deploy failed for node 0b0e0f6c-2f3a-4a5b-8c9d-0e1f2a3b4c5d: "
                           "the disk /dev/sda does not answer")
    assert state_words(failed, EN) == "failed: the disk /dev/sda does not answer"
    assert state_words(failed, FR) == "échec : the disk /dev/sda does not answer"
    assert [tone(s) for s in (IDLE, RESTORING, active, failed)] == \
        ["idle", "busy", "active", "failed"]
    assert state_words(replace(IDLE, provision="manageable"), EN) \
        == "not available (manageable)"
    assert reason_words("The PC is cleaning: only an active PC can be restored.") \
        == "The PC is cleaning: only an active PC can be restored."


def test_the_write_rate_comes_from_two_looks_at_the_bytes_written() -> None:
    now = [100.0]
    watcher = CardWatcher(db=None, room_id=1, render=lambda s, r: "", clock=lambda: now[0])  # type: ignore[arg-type]
    assert watcher._rate(RESTORING) is None  # one look: no rate yet
    now[0] = 102.0
    assert watcher._rate(replace(RESTORING, bytes_done=652_000_000)) == 11.0
    assert watcher._rate(replace(RESTORING, job="j2", bytes_done=1_000)) is None  # a new job
    assert watcher._rate(replace(RESTORING, outcome="succeeded")) is None


def test_an_html_card_is_one_sse_message_of_data_lines() -> None:
    assert html_event("pc-u1", "<div>\n  <span>ready</span>\n</div>\n") == (
        "event: pc-u1\ndata: <div>\ndata:   <span>ready</span>\ndata: </div>\n\n")


def test_a_session_cookie_expires_and_a_tampered_one_is_no_session() -> None:
    cookies = SessionCookies("k" * 40, max_age_s=1)
    value = cookies.serializer.dumps({"user": "alice", "csrf": "t"})
    assert cookies.read(SimpleNamespace(cookies={COOKIE: value})) == WebSession("alice", "t")  # type: ignore[arg-type]
    other = SessionCookies("x" * 40, max_age_s=60)  # another key: a forged signature
    assert other.read(SimpleNamespace(cookies={COOKIE: value})) is None  # type: ignore[arg-type]
    time.sleep(2.1)
    assert cookies.read(SimpleNamespace(cookies={COOKIE: value})) is None  # type: ignore[arg-type]
