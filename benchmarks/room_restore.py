#!/usr/bin/env python3
"""A whole room restored on this machine, against its link floor (#18): one JSON line per size.

For each room size (``--pcs``, default 10 20 40) a simulated room is built (lab/room_sim.py: one
namespace per PC on one bridge, the real agent on a file-backed disk in each, enclume-aio and
the boot service's HTTP side in the root namespace) and restored through
``POST /enclume/v1/rooms/SIM/actions {"action": "restore"}`` (a full block restore of a
catalogue version: every PC gets the whole image), the job followed to its end; then every disk
is compared with the image.

Links are the real room's scaled by ``--scale`` (default 0.1): a PC's 100 Mbit/s and the
server's 1 Gbit/s uplink (``--real-pc-mbit``, ``--real-uplink-mbit``) become 10 and 100 Mbit/s,
the ratio kept; times scale by 1/scale for the same image (a 1 GB image at full speed takes as
long as a 100 MB one here). The image (``--image-mib``, default 100 MiB) is scaled with the
links, so that the fixed costs (the job's start, the agents' joins, the verification) weigh
against the link floor what they would with a 1 GB image at full speed (84 s floor here, 80 s
there). Figures:

- ``link_floor_s``: one image through one PC's link (image_bytes * 8 / pc_link), the best any
  transfer can do;
- ``uplink_floor_s``: every PC's copy through the server's uplink (pcs * image_bytes * 8 /
  uplink), what unicast cannot beat;
- ``unicast_s`` / ``multicast_s``: the job's ``finished_at`` - ``created_at`` (the room's
  restore as Enclume records it, from the request to the last PC active) with that transfer;
  ``wall_s`` the same seen by the client; ``floor_ratio`` = transfer time / link floor;
- ``server_cpu_s``: CPU seconds of enclume-aio and of the boot service's HTTP process during
  the restore.

``--transfer multicast`` sets the room's transfer mode (PATCH of the room's ``transfer``) before
the restore.
The multicast sender runs at ``--rate-share`` of a PC's link (0.95, as the default 95 Mbit/s
for 100 Mbit/s PCs), uftp with its NAK passes (no FEC); ``fetched_bytes`` is what
the PCs fetched over HTTP (unicast: everything; multicast: the repairs), ``pcs_that_fetched``
how many did, ``pc_port_drops`` the packets the switch's PC ports dropped (a stream faster than
a link); ``stream_start_s`` (request to the sender streaming) and ``stream_s`` (the stream
itself) as seen by polling the last PC's session with the job.
``--lossy N`` drops 5% of what N PCs receive (iptables ``statistic``), as the issue's goal has.

    .venv/bin/python benchmarks/room_restore.py                      # 10, 20, 40 PCs, unicast
    .venv/bin/python benchmarks/room_restore.py --pcs 40 --transfer multicast --lossy 1

Needs root (network namespaces, tc, iptables) and Debian's python3 for the agents.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from restore_room import process_cpu_s

from lab.room_network import run
from lab.room_sim import MiB, RoomSim, RoomSpec, SimPc, TransferUnsupported, room_sim

LOSS = 0.05


def seconds(job: dict[str, Any]) -> float:
    return round((datetime.fromisoformat(job["finished_at"])
                  - datetime.fromisoformat(job["created_at"])).total_seconds(), 2)


def run_room(args: argparse.Namespace, pcs: int) -> dict[str, Any]:
    pc_mbit = args.real_pc_mbit * args.scale
    uplink_mbit = args.real_uplink_mbit * args.scale
    image_bytes = args.image_mib * MiB
    link_floor = image_bytes * 8 / (pc_mbit * 1e6)
    line: dict[str, Any] = {
        "pcs": pcs, "image_bytes": image_bytes, "pc_link_mbit": pc_mbit,
        "uplink_mbit": uplink_mbit, "scale": args.scale,
        "real_pc_link_mbit": args.real_pc_mbit, "real_uplink_mbit": args.real_uplink_mbit,
        "link_floor_s": round(link_floor, 2),
        "uplink_floor_s": round(pcs * image_bytes * 8 / (uplink_mbit * 1e6), 2),
        "lossy_pcs": args.lossy, "transfer": args.transfer,
        "unicast_s": None, "multicast_s": None}
    if args.transfer == "multicast":
        line.update(multicast_rate_mbit=round(pc_mbit * args.rate_share, 3),
                    multicast_tool="uftp", multicast_start_wait_s=args.start_wait)
    spec = RoomSpec(pcs=pcs, pc_mbit=pc_mbit, uplink_mbit=uplink_mbit, image_bytes=image_bytes,
                    heartbeat_s=1.0, lookup_retry_s=1.0, multicast_rate_share=args.rate_share,
                    multicast_start_wait_s=args.start_wait)
    with tempfile.TemporaryDirectory(prefix="room-restore-") as workdir, \
            room_sim(Path(workdir), spec) as room:
        for pc in room.pcs[:args.lossy]:
            room.network.lose(pc.link, LOSS)
        servers = (room.aio.process.pid, room.boot.process.pid)
        cpu = [process_cpu_s(pid) for pid in servers]
        phases = StreamPhases(room.pcs[-1])
        try:
            job = room.restore(None if args.transfer == "unicast" else args.transfer,
                               timeout=args.timeout,
                               during=phases.follow if args.transfer == "multicast" else None)
        except TransferUnsupported as exc:
            return {**line, "note": str(exc)}
        line.update(phases.seen())
        started = re.search(r"starts with (\d+) of (\d+) receivers", room.boot.log_text())
        if started:  # the boot service's log: all joined, or the start wait ran out first
            line["stream_started_with"] = f"{started[1]} of {started[2]}"
        line["server_cpu_s"] = {name: round(process_cpu_s(pid) - before, 2) for name, pid, before
                                in zip(("aio", "boot_http"), servers, cpu, strict=True)}
        line.update(_outcome(room, job))
    took = seconds(job)
    line[f"{args.transfer}_s"] = took
    line["floor_ratio"] = round(took / link_floor, 2)
    return line


class StreamPhases:
    """When the session of ``pc`` (the last PC, a clean one) began sending and ended, seen from
    here (polled with the job): ``stream_start_s`` from the request, ``stream_s`` the stream."""

    def __init__(self, pc: SimPc) -> None:
        self.pc = pc
        self.started = time.monotonic()
        self.sending: float | None = None
        self.ended: float | None = None
        self.session: dict[str, Any] = {}

    def follow(self, room: RoomSim, _job: dict[str, Any]) -> None:
        if self.ended is not None:
            return
        session = room.multicast_session(self.pc)
        if session is None:
            return
        self.session = session
        now = time.monotonic()
        if session["state"] == "sending" and self.sending is None:
            self.sending = now
        elif session["state"] not in ("waiting", "sending"):
            self.ended = now

    def seen(self) -> dict[str, Any]:
        if self.sending is None:
            return {}
        seen = {"stream_start_s": round(self.sending - self.started, 2),
                "session_joined": self.session.get("joined")}
        if self.ended is not None:
            seen["stream_s"] = round(self.ended - self.sending, 2)
        return seen


def _outcome(room: RoomSim, job: dict[str, Any]) -> dict[str, Any]:
    return {"job_state": job["state"], "wall_s": job["wall_s"],
            "succeeded": sum(pc["outcome"] == "succeeded" for pc in job["pcs"]),
            "identical_disks": sum(room.disk_matches(pc) for pc in room.pcs),
            "restore_modes": sorted({str(pc["restore_mode"]) for pc in job["pcs"]}),
            "fetched_bytes": sum(pc["fetched_bytes"] or 0 for pc in job["pcs"]),
            "pcs_that_fetched": sum(bool(pc["fetched_bytes"]) for pc in job["pcs"]),
            "pc_port_drops": sum(_port_drops(room, pc) for pc in room.pcs)}


def _port_drops(room: RoomSim, pc: SimPc) -> int:
    """Packets the switch's port towards ``pc`` dropped (its tbf queue full)."""
    out = run("tc", "-n", room.network.switch_namespace, "-s", "-j", "qdisc", "show", "dev",
              pc.link.switch_port)
    return sum(int(qdisc.get("drops", 0)) for qdisc in json.loads(out or "[]"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pcs", type=int, nargs="+", default=[10, 20, 40])
    parser.add_argument("--image-mib", type=int, default=100,
                        help="the image (default 100 MiB: at 0.1 scale, as 1 GB at full speed)")
    parser.add_argument("--scale", type=float, default=0.1,
                        help="the real links' speeds times this (default 0.1)")
    parser.add_argument("--real-pc-mbit", type=float, default=100.0)
    parser.add_argument("--real-uplink-mbit", type=float, default=1000.0)
    parser.add_argument("--transfer", choices=("unicast", "multicast"), default="unicast")
    parser.add_argument("--lossy", type=int, default=0, help="PCs on a 5%%-lossy link")
    parser.add_argument("--rate-share", type=float, default=0.95,
                        help="multicast: the sender's rate cap, of a PC's link (default 0.95, "
                             "as the setting's 95 Mbit/s for 100 Mbit/s PCs)")
    parser.add_argument("--start-wait", type=float, default=30.0,
                        help="multicast: ENCLUME_MULTICAST_START_WAIT_S (default 30, the "
                             "setting's: the stream starts when every PC joined)")
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()
    for pcs in args.pcs:
        print(json.dumps(run_room(args, pcs)), flush=True)


if __name__ == "__main__":
    main()
