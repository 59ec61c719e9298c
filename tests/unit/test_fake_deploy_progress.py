"""A fake deploy reports its image write's progress as the agent path does (the conductor's
``driver_internal_info["agent_command"]``), committed while it runs, so that room jobs and the
web page show percentages on fake hardware too."""

from __future__ import annotations

import itertools
import time
from types import SimpleNamespace
from typing import Any

from services.conductor.room_jobs import _write_progress
from services.conductor.task import Task
from services.drivers import fake
from services.drivers.agent_client import AGENT_COMMAND


class RecordingSession:
    """Stands for the task's database session: what the node held at each commit, and when."""

    def __init__(self, node: SimpleNamespace) -> None:
        self.node = node
        self.commits: list[tuple[float, dict[str, Any]]] = []

    def commit(self) -> None:
        self.commits.append((time.monotonic(), dict(self.node.driver_internal_info)))


def fake_task(driver_info: dict[str, Any]) -> tuple[Task, RecordingSession]:
    node = SimpleNamespace(uuid="6d0f4b52-3d4c-4f4e-9d7e-1b2a3c4d5e6f",
                           driver_info=driver_info, driver_internal_info={})
    session = RecordingSession(node)
    return Task(session, node, None, "c1"), session  # type: ignore[arg-type]


def test_a_fake_deploy_reports_growing_progress_then_clears_it() -> None:
    task, session = fake_task({"fake_image_bytes": 1000})
    started = time.monotonic()
    assert fake.FakeDeploy((2.0, 2.0)).deploy(task) is None
    assert time.monotonic() - started >= 2.0
    reported = [_write_progress(SimpleNamespace(driver_internal_info=info))  # type: ignore[arg-type]
                for _, info in session.commits]
    assert [r["bytes_done"] for r in reported] == [250, 500, 750]
    assert [r["percent"] for r in reported] == [25, 50, 75]
    assert {r["bytes_total"] for r in reported} == {1000}
    times = [when - started for when, _ in session.commits]
    assert all(later - earlier >= 0.49 for earlier, later in itertools.pairwise(times))
    assert AGENT_COMMAND not in task.node.driver_internal_info
    assert task.node.driver_internal_info["fake_deploys"] == 1


def test_a_short_fake_deploy_and_a_broken_disk_leave_no_progress_behind() -> None:
    task, session = fake_task({})
    fake.FakeDeploy((0.2, 0.2)).deploy(task)
    assert session.commits == []
    broken, session = fake_task({"fake_deploy_error": "the disk does not answer"})
    try:
        fake.FakeDeploy((1.0, 1.0)).deploy(broken)
    except fake.DriverError as exc:
        assert str(exc) == "the disk does not answer"
    else:
        raise AssertionError("the broken disk's deploy did not fail")
    assert len(session.commits) == 1
    assert AGENT_COMMAND not in broken.node.driver_internal_info
