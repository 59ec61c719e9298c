"""``--wait``: how a node's state is judged, and what is shown on a pipe and on a terminal."""

from __future__ import annotations

import io
from typing import Any

from services.cli.enclume.progress import (
    FAILED_PROVISION_STATES,
    LineDisplay,
    LiveDisplay,
    Outcome,
    power_judge,
    provision_judge,
    summary,
)
from services.cli.enclume.verbs import VERBS


def node(state: str, target: str | None = None, **more: Any) -> dict[str, Any]:
    return {"uuid": "u1", "name": "n1", "provision_state": state,
            "target_provision_state": target, "power_state": "power off", **more}


def test_provision_judge() -> None:
    judge = provision_judge({"active"}, FAILED_PROVISION_STATES)
    assert judge(node("deploying", "active")) is None
    assert judge(node("wait call-back", "active")) is None
    assert judge(node("active")) is True
    assert judge(node("deploy failed", "active")) is False  # keeps its target, still failed
    # back in a stable state that is not the goal: failed (a manage whose checks failed)
    assert provision_judge({"manageable"}, FAILED_PROVISION_STATES)(node("enroll")) is False


def test_abort_is_done_in_the_failure_state_it_causes() -> None:
    abort = VERBS["abort"]
    judge = provision_judge(abort.done, abort.failed)
    assert judge(node("deploy failed", "active")) is True
    assert judge(node("clean failed", "available")) is True
    assert VERBS["deploy"].target == "active" and VERBS["undeploy"].target == "deleted"


def test_power_judge() -> None:
    judge = power_judge("power on")
    assert judge({"power_state": "power off", "target_power_state": "power on"}) is None
    assert judge({"power_state": "power on", "target_power_state": None}) is True
    assert judge({"power_state": "power off", "target_power_state": None}) is False


def test_outcomes_and_summary() -> None:
    done = Outcome("n1", True, node("active"), 3.25)
    failed = Outcome("n2", False, node("deploy failed", "active", name="n2"), 1.0,
                     error="image checksum mismatch")
    late = Outcome("n3", False, node("deploying", "active", name=None, uuid="u3"), 9.0,
                   timed_out=True)
    assert done.describe() == "n1: active after 3.2 s"
    assert failed.describe() == "n2: failed in deploy failed: image checksum mismatch"
    assert late.describe() == "u3: timed out after 9.0 s in deploying"
    assert summary({"n1": done, "n2": failed, "n3": late}) == \
        "1 of 3 node(s) done, 1 failed, 1 timed out"


def test_line_display_prints_each_change_once() -> None:
    out = io.StringIO()
    display = LineDisplay(out)
    display.update({"n1": node("deploying", "active")}, {}, 0.5)
    display.update({"n1": node("deploying", "active")}, {}, 1.0)  # no change, no line
    finished = node("active", power_state="power on")
    outcome = Outcome("n1", True, finished, 2.0)
    display.update({"n1": finished}, {"n1": outcome}, 2.0)
    display.close({"n1": outcome})
    assert out.getvalue().splitlines() == [
        "[   0.5s] n1: deploying -> active, power off",
        "[   2.0s] n1: active, power on",
        "[   2.0s] done n1: active after 2.0 s",
        "1 of 1 node(s) done",
    ]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_display_draws_a_table_on_a_terminal() -> None:
    out = Terminal()
    display = LiveDisplay(out)
    failed = Outcome("n2", False, node("deploy failed", "active", name="n2"), 1.0,
                     error="no agent")
    display.update({"n1": node("deploying", "active"),
                    "n2": node("deploy failed", "active", name="n2")}, {"n2": failed}, 1.5)
    display.close({"n1": Outcome("n1", True, node("active"), 2.0), "n2": failed})
    text = out.getvalue()
    assert "Provision State" in text and "deploying" in text and "no agent" in text
    assert "FAILED n2: failed in deploy failed: no agent" in text
    assert "1 of 2 node(s) done, 1 failed" in text
