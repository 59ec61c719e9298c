"""``enclume room wake|restore|power-off|status`` and ``job retry`` against a loopback stand-in
of the room actions API (``POST /enclume/v1/rooms/{room}/actions``, ``GET /enclume/v1/jobs/
{uuid}``, ``POST …/jobs/{job}/pcs/{node}/retry``, ``GET /enclume/v1/events?room=R``), whose
server side lands separately.

The stand-in's job moves one step each time it is read: b12-pc01 and b12-pc03 write their image
and succeed, b12-pc02 fails on its second read; its event stream sends two events, or is absent
(404) so that ``status --watch`` falls back to polling. The real ``enclume`` entry point runs
in-process (its stdout is not a terminal: one line per change)."""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from services.cli.enclume import main as cli_main
from services.cli.enclume import room_events
from services.cli.enclume.room_progress import Rates, pc_judge, pc_line
from tests.support.json_http import send_json, serving

JOB = "6f1c2d3e-0000-4000-8000-000000000001"
MIB = 1024 * 1024
TOTAL = 8 * MIB
PCS = [("b12-pc01", "11111111-0000-4000-8000-000000000001"),
       ("b12-pc02", "11111111-0000-4000-8000-000000000002"),
       ("b12-pc03", "11111111-0000-4000-8000-000000000003")]


def fault(message: str) -> dict[str, str]:
    return {"error_message": json.dumps({"faultstring": message, "faultcode": "Client"})}


class RoomApi(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), RoomHandler)
        self.reads = 0
        self.actions: list[dict[str, Any]] = []
        self.retried: list[str] = []
        self.in_session = False
        self.stream = True
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def pc(self, name: str, uuid: str) -> dict[str, Any]:
        reads = self.reads
        base = {"node": name, "node_uuid": uuid, "bytes_total": TOTAL, "error": None,
                "outcome": None}
        if reads == 0:
            return {**base, "step": "queued", "percent": None, "bytes_done": None}
        if name == "b12-pc02" and name not in self.retried and reads >= 2:
            return {**base, "step": "deploying", "percent": 12, "bytes_done": MIB,
                    "outcome": "failed", "error": "no answer from the PC after 600 s"}
        done = min(TOTAL, reads * 2 * MIB)
        outcome = "succeeded" if done == TOTAL else None
        return {**base, "step": "active" if outcome else "writing",
                "percent": done * 100 // TOTAL, "bytes_done": done, "outcome": outcome}

    def job(self) -> dict[str, Any]:
        pcs = [self.pc(name, uuid) for name, uuid in PCS]
        finished = all(pc["outcome"] for pc in pcs)
        failed = any(pc["outcome"] == "failed" for pc in pcs)
        state = ("failed-partly" if failed else "done") if finished else "running"
        return {"uuid": JOB, "kind": "restore", "state": state, "room": "B12",
                "image": "debian-12:2026-09", "requested_by": "alice", "pcs": pcs,
                "created_at": "2026-12-05T10:00:00+00:00",
                "updated_at": "2026-12-05T10:00:01+00:00"}


class RoomHandler(BaseHTTPRequestHandler):
    server: RoomApi

    def log_message(self, format: str, *args: object) -> None:
        pass

    def body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else None

    def do_POST(self) -> None:
        path = self.path
        if match := re.fullmatch(r"/enclume/v1/rooms/([^/]+)/actions", path):
            if match.group(1) != "B12":
                return send_json(self, 404, fault(f"Room {match.group(1)} could not be found."))
            body = self.body()
            self.server.actions.append(body)
            if body.get("action") == "restore" and self.server.in_session \
                    and not body.get("force"):
                return send_json(self, 409, fault("Room B12 is in a session until "
                                                  "2026-12-05T16:00:00Z; use force to "
                                                  "restore anyway."))
            with self.server.lock:
                self.server.reads = 0
                document = self.server.job()
            self.send_response(202)
            data = json.dumps(document).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Location", f"/enclume/v1/jobs/{JOB}")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None
        if match := re.fullmatch(rf"/enclume/v1/jobs/{JOB}/pcs/([^/]+)/retry", path):
            with self.server.lock:
                self.server.retried.append(match.group(1))
                self.server.reads = 1
            return send_json(self, 202, None)
        return send_json(self, 404, fault("not here"))

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == f"/enclume/v1/jobs/{JOB}":
            with self.server.lock:
                self.server.reads += 1
                return send_json(self, 200, self.server.job())
        if path == "/enclume/v1/jobs":
            assert "room=B12" in query
            return send_json(self, 200, {"jobs": [self.server.job()]})
        if path == "/enclume/v1/rooms/B12":
            return send_json(self, 200, {"uuid": "r1", "name": "B12", "pcs": [
                {"uuid": uuid, "name": name, "provision_state": "active",
                 "power_state": "power on"} for name, uuid in PCS]})
        if path == "/enclume/v1/events" and self.server.stream:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for number in range(2):
                self.wfile.write(f"event: job\ndata: {{\"n\": {number}}}\n\n".encode())
                self.wfile.flush()
            return None
        return send_json(self, 404, fault(f"{path} could not be found."))


@pytest.fixture
def api() -> Iterator[RoomApi]:
    server = RoomApi()
    with serving(server):
        yield server


@pytest.fixture
def enclume(api: RoomApi, monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> Any:
    """Runs ``enclume ARGS...`` as the console script does: (exit code, stdout, stderr)."""
    monkeypatch.setenv("ENCLUME_URL", api.url)
    monkeypatch.setenv("ENCLUME_CLI_CONFIG", "")
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent")

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["enclume", *args])
        try:
            cli_main.main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_restore_wait_follows_each_pc_and_fails_for_the_pc_that_failed(
        api: RoomApi, enclume: Any) -> None:
    code, out, err = enclume("room", "restore", "B12", "--image", "debian-12:2026-09",
                             "--pc", "b12-pc01", "--pc", "b12-pc02", "--pc", "b12-pc03",
                             "--wait")
    assert code == 1, (out, err)
    assert api.actions == [{"action": "restore", "force": False, "image": "debian-12:2026-09",
                            "pcs": ["b12-pc01", "b12-pc02", "b12-pc03"]}]
    assert f"Job {JOB}: restore of 3 PC(s) in room B12" in err
    lines = out.splitlines()
    # percent, then throughput and time left once bytes were seen growing between two reads
    assert any(re.search(r"b12-pc01: writing 50% \d+\.\d MiB/s ETA \d+s$", line)
               for line in lines), out
    assert any(line.endswith("done b12-pc01: active after " + line.split("after ")[-1])
               for line in lines if "done b12-pc01" in line), out
    assert any("FAILED b12-pc02: failed in deploying: no answer from the PC after 600 s"
               in line for line in lines), out
    assert lines[-1] == "2 of 3 PC(s) done, 1 failed"


def test_wake_without_wait_shows_the_job_and_json_is_the_api_document(
        api: RoomApi, enclume: Any) -> None:
    code, out, _ = enclume("room", "wake", "B12", "-f", "json")
    assert code == 0
    assert json.loads(out)["uuid"] == JOB
    assert api.actions[-1] == {"action": "wake", "force": False}
    code, out, _ = enclume("room", "power-off", "B12", "--pc", "b12-pc03", "-f", "value")
    assert code == 0 and "b12-pc03 queued" in out
    assert api.actions[-1] == {"action": "power-off", "force": False, "pcs": ["b12-pc03"]}
    code, out, _ = enclume("room", "power-off", "B12", "--pc", "b12-pc03", "--discard-unsaved",
                           "-f", "value")
    assert code == 0
    assert api.actions[-1] == {"action": "power-off", "force": False, "pcs": ["b12-pc03"],
                               "discard_unsaved": True}


def test_restore_delta_asks_for_the_restore_delta_action(api: RoomApi, enclume: Any) -> None:
    code, out, err = enclume("room", "restore", "B12", "--delta", "-f", "json")
    assert code == 0, (out, err)
    assert api.actions[-1] == {"action": "restore-delta", "force": False}


def test_refusals_print_the_api_faultstring(api: RoomApi, enclume: Any) -> None:
    api.in_session = True
    code, _, err = enclume("room", "restore", "B12")
    assert code == 1
    assert err.strip() == ("Error: Room B12 is in a session until 2026-12-05T16:00:00Z; use "
                           "force to restore anyway. (HTTP 409)")
    code, _, _ = enclume("room", "restore", "B12", "--force", "-f", "json")
    assert code == 0 and api.actions[-1]["force"] is True
    code, _, err = enclume("room", "wake", "C3")
    assert (code, err.strip()) == (1, "Error: Room C3 could not be found. (HTTP 404)")


def test_retry_follows_only_the_pcs_retried(api: RoomApi, enclume: Any) -> None:
    enclume("room", "restore", "B12", "-f", "json")
    code, out, err = enclume("job", "retry", JOB, "b12-pc02", "--wait")
    assert code == 0, (out, err)
    assert api.retried == ["b12-pc02"]
    assert "done b12-pc02: active" in out
    assert out.splitlines()[-1] == "1 of 1 PC(s) done"


def test_status_shows_each_pc_with_its_step_in_the_latest_job(
        api: RoomApi, enclume: Any) -> None:
    api.reads = 2
    code, out, _ = enclume("room", "status", "B12", "-f", "json")
    assert code == 0
    status = json.loads(out)
    assert status["job"]["uuid"] == JOB
    assert [(row["pc"], row["step"], row["outcome"]) for row in status["pcs"]] == [
        ("b12-pc01", "writing", None), ("b12-pc02", "deploying", "failed"),
        ("b12-pc03", "writing", None)]
    code, out, _ = enclume("room", "status", "B12")
    assert f"Room B12: restore job {JOB} running" in out
    assert "no answer from the PC after 600 s" in out


def test_status_watch_reads_again_on_each_event(api: RoomApi, enclume: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    original = room_events.follow

    def counting(*args: Any, **kwargs: Any) -> None:
        read = args[2]
        args = (*args[:2], lambda: reads.append(1) or read(), *args[3:])
        original(*args, **kwargs)

    monkeypatch.setattr("services.cli.enclume.room_actions.room_events.follow", counting)
    code, out, err = enclume("room", "status", "B12", "--watch", "--timeout", "1")
    assert code == 0, err
    # once at the start, once per event of each stream opened, and after each stream ends
    assert len(reads) >= 4
    assert "No event stream" not in err
    assert "b12-pc01: provision_state=active" in out


def test_status_watch_polls_without_an_event_stream(api: RoomApi, enclume: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    api.stream = False
    monkeypatch.setattr(room_events, "POLL_S", 0.1)
    code, out, err = enclume("room", "status", "B12", "--watch", "--timeout", "1")
    assert code == 0, err
    assert "No event stream" in err and "reading the room every 0.1 s" in err
    assert "Room B12: restore job" in out


def test_pc_judge_line_and_rates() -> None:
    assert pc_judge({"outcome": None, "job_state": "running"}) is None
    assert pc_judge({"outcome": "succeeded"}) is True
    assert pc_judge({"outcome": "skipped"}) is True
    assert pc_judge({"outcome": "failed"}) is False
    assert pc_judge({"outcome": None, "job_state": "cancelled"}) is False
    clock = iter([0.0, 2.0, 3.0])
    rates = Rates(clock=lambda: next(clock))
    assert rates.measure("a", 0, 10 * MIB) == (None, None)
    rate, left = rates.measure("a", 4 * MIB, 10 * MIB)
    assert rate == 2 * MIB and left == 3.0
    rate, left = rates.measure("a", MIB, 10 * MIB)  # started again: a new baseline
    assert (rate, left) == (None, None)
    assert pc_line({"step": "writing", "percent": 40, "rate": 2 * MIB, "eta": 65}) == \
        "writing 40% 2.0 MiB/s ETA 1m05s"
