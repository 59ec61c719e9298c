#!/usr/bin/env python3
"""The timetable runner's cost with 1,000 rooms and their weekly sessions (issue #16).

In process, on a SQLite file in a temp dir: ``--rooms`` rooms (``--pcs`` fake-hardware PCs each,
Europe/Paris), each with a week of classes as weekly sessions (two a day, Monday to Friday,
08:00-10:00 and 14:00-16:00, 15 weeks; before ``restore-full``, after ``power-off`` for the
afternoon ones), written with SQLAlchemy; their occurrences are created by the runner's own
code (``occurrences.extend``, timed). One conductor is registered and alone on the ring, so its
``TimetableRunner`` owns every room and does all the work (ring look-ups included).

Then one school day is simulated with an injected clock: a runner pass every ``--step``
simulated minutes from 06:00 to 20:00 local time (Monday). Each pass is timed (wall clock and
this process's CPU time, ``time.process_time``). "Checked" is the number of occurrences a pass
looked at (``TimetableReport.checked``: those of its rooms that are planned, claimed or running
and start within the longest lead); a due restore is claimed and its job (one row per PC)
created in the same pass, as in production.

Prints one JSON line: rooms, sessions, occurrences, expansion seconds, passes, occurrences
checked per second (sum of checked / sum of pass wall time), the same over the passes that only
checked (nothing claimed, started, ended or missed), CPU ms per pass (mean, median, max), the
quiet pass (the fewest occurrences to check) and the busiest one.

    .venv/bin/python benchmarks/timetable_cost.py                 # 1,000 rooms, 4 PCs each
    .venv/bin/python benchmarks/timetable_cost.py --rooms 100 --step 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # lab/ is not installed

from fake_nodes import DEFAULT_INTERFACES, DRIVER
from sqlalchemy import func, select

from services.classroom import occurrences
from services.classroom.schedule import weekly_rule
from services.common.classroom_models import (
    ClassSession,
    Image,
    ImageVersion,
    Occurrence,
    Room,
    RoomImage,
    RoomPC,
)
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.membership import Membership
from services.common.models import Conductor, Node
from services.common.states import ProvisionState
from services.conductor.timetable import TimetableRunner

ZONE = "Europe/Paris"
HOST = "bench-conductor"
MONDAY = datetime(2027, 3, 1)  # a Monday; the simulated day is the second week's Monday
SLOTS = ((8, 10, "nothing"), (14, 16, "power-off"))


def build(db: Database, rooms: int, pcs: int, weeks: int) -> dict[str, int]:
    with db.session() as session:
        image = Image(name="debian")
        image.versions = [ImageVersion(version="v1", source="http://images.example/d.img",
                                       checksum="c" * 64, disk_format="raw",
                                       image_type="whole-disk", boot_mode="uefi")]
        session.add(image)
        session.add(Conductor(hostname=HOST, hardware_types=[DRIVER]))
        session.flush()
        version_id = image.versions[0].id
        for number in range(rooms):
            room = Room(name=f"room-{number:04d}", time_zone=ZONE, default_image_id=image.id)
            session.add(room)
            session.flush()
            session.add(RoomImage(room_id=room.id, image_id=image.id))
            nodes = [Node(name=f"r{number:04d}-pc{i:02d}", driver=DRIVER, **DEFAULT_INTERFACES,
                          provision_state=ProvisionState.ACTIVE.value, power_state="power on")
                     for i in range(pcs)]
            session.add_all(nodes)
            session.flush()
            session.add_all(RoomPC(room_id=room.id, node_id=n.id) for n in nodes)
            for day in range(5):
                for start_h, end_h, after in SLOTS:
                    start = MONDAY + timedelta(days=day, hours=start_h)
                    session.add(ClassSession(
                        name=f"class {day}-{start_h}", room_id=room.id,
                        image_version_id=version_id, recurrence="weekly", starts_at=start,
                        ends_at=start.replace(hour=end_h),
                        rrule=weekly_rule(start, None, weeks), before="restore-full",
                        after=after, created_by="bench"))
    with db.session() as session:
        return {"sessions": int(session.scalar(select(func.count(ClassSession.id))) or 0)}


def expand(db: Database, now: datetime, horizon: timedelta) -> float:
    started = time.perf_counter()
    with db.session() as session:
        occurrences.extend_all(session, now, horizon)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", type=int, default=1000)
    parser.add_argument("--pcs", type=int, default=4, help="PCs per room (default 4)")
    parser.add_argument("--weeks", type=int, default=15)
    parser.add_argument("--step", type=float, default=10.0,
                        help="simulated minutes between passes (default 10)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="timetable-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        upgrade_schema(url)
        db = Database(url)
        settings = Settings(
            process={"data_dir": Path(tmp)},
            conductor={"hostname": HOST, "heartbeat_timeout_s": 10 ** 6, "ring_refresh_s": 10 ** 6},
        )
        built_at = time.perf_counter()
        counts = build(db, args.rooms, args.pcs, args.weeks)
        build_s = time.perf_counter() - built_at
        where = ZoneInfo(ZONE)
        day = MONDAY + timedelta(days=7)
        first = day.replace(hour=6, tzinfo=where).astimezone(UTC)
        horizon = timedelta(days=settings.classroom.occurrence_horizon_days)
        expansion_s = expand(db, first, horizon)
        with db.session() as session:
            stored = int(session.scalar(select(func.count(Occurrence.id))) or 0)
        runner = TimetableRunner(db, settings, Membership(db, settings), HOST,
                                 clock=lambda: first)
        passes = []
        now = first
        last = day.replace(hour=20, tzinfo=where).astimezone(UTC)
        while now <= last:
            wall, cpu = time.perf_counter(), time.process_time()
            report = runner.run(now)
            passes.append({"at": now.astimezone(where).strftime("%H:%M"),
                           "wall_s": time.perf_counter() - wall,
                           "cpu_s": time.process_time() - cpu, "checked": report.checked,
                           "claimed": report.claimed, "started": report.started,
                           "ended": report.ended, "missed": report.missed})
            now += timedelta(minutes=args.step)
    cpu_ms = [p["cpu_s"] * 1000 for p in passes]
    checked = sum(p["checked"] for p in passes)
    wall = sum(p["wall_s"] for p in passes)
    # Passes that only checked (nothing claimed, started, ended or missed): the cost of looking.
    looking = [p for p in passes if p["checked"] and not (
        p["claimed"] or p["started"] or p["ended"] or p["missed"])]
    looking_wall = sum(p["wall_s"] for p in looking)
    quiet = min(passes, key=lambda p: (p["checked"], p["wall_s"]))
    busiest = max(passes, key=lambda p: p["cpu_s"])
    print(json.dumps({
        "benchmark": "timetable_cost", "rooms": args.rooms, "pcs_per_room": args.pcs,
        **counts, "occurrences_stored": stored, "build_s": round(build_s, 2),
        "expansion_s": round(expansion_s, 2), "passes": len(passes),
        "step_minutes": args.step, "occurrences_checked": checked,
        "checked_per_s": round(checked / wall) if wall else None,
        "pass_wall_s_total": round(wall, 2),
        "checking_only": {"passes": len(looking),
                          "checked": sum(p["checked"] for p in looking),
                          "checked_per_s": (round(sum(p["checked"] for p in looking)
                                                  / looking_wall) if looking_wall else None),
                          "cpu_ms_per_pass": (round(statistics.mean(
                              p["cpu_s"] * 1000 for p in looking), 1) if looking else None)},
        "cpu_ms_per_pass": {"mean": round(statistics.mean(cpu_ms), 1),
                            "median": round(statistics.median(cpu_ms), 1),
                            "max": round(max(cpu_ms), 1)},
        "claimed": sum(p["claimed"] for p in passes),
        "started": sum(p["started"] for p in passes),
        "ended": sum(p["ended"] for p in passes), "missed": sum(p["missed"] for p in passes),
        "quiet_pass": {k: round(v, 4) if isinstance(v, float) else v
                       for k, v in quiet.items()},
        "busiest_pass": {k: round(v, 4) if isinstance(v, float) else v
                         for k, v in busiest.items()},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
