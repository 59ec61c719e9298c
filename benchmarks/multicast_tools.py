#!/usr/bin/env python3
"""udpcast against uftp on the same simulated room, the tools alone (#18: "measure before
choosing"): one JSON line per tool and room size.

The room is lab/room_network.py's (one namespace per PC on one bridge with IGMP snooping, links
shaped by tbf, ``--lossy`` PCs dropping 5% of what they receive with iptables ``statistic``);
no Enclume service runs: each tool sends one random image file (``--image-mib``) from the root
namespace to a file in every PC's namespace, as Enclume's boot service and agents would run it.

- ``udpcast``: udp-sender with the options Enclume's boot service gives it
  (services/boot/multicast_sender.py ``sender_argv``: async, FEC, rate cap), udp-receiver
  with the agent's (``--ignore-lost-data``, a 4 MiB socket buffer); the stream starts (the
  sender's keystroke) once every receiver said "Connected as". What FEC could not mend is
  left in the PC's file: ``repair_blocks`` counts its 4 MiB blocks that differ from the image,
  which the agent would fetch over HTTP after the stream, at the PC's link speed
  (``repair_s``).
- ``uftp``: uftpd in every PC, writing its file in place (through a symlink, as it would write
  a disk), uftp at a fixed rate (``-R``), NAK-based: a PC that lost packets gets them again in
  later passes; the others are done at the end of the first. Started once every uftpd is up;
  uftp's announce phase (its clients registering) is ``start_s``, not in ``transfer_s``.

Figures: ``link_floor_s`` (the image through one PC's link), ``transfer_s`` (from the stream's
start to the last PC holding the whole image: the last receiver's end, plus ``repair_s`` for
udpcast), ``floor_ratio`` = transfer_s / link_floor_s, ``first_pc_s`` (the first PC done),
``identical_after_stream`` (PCs whose file is the image without a repair; the repair itself
is computed, not run).

    .venv/bin/python benchmarks/multicast_tools.py --pcs 10 40 --lossy 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.room_network import RoomNetwork, room_network
from services.common.config_hardware_sections import MulticastSettings

BLOCK = 4 * 1024 * 1024  # the image store's block: what a PC repairs over HTTP
LOSS = 0.05
PORT_BASE = 9000
GROUP = "239.255.77.1"
UFTP_STATUS = re.compile(r"Host: 0x([0-9A-Fa-f]+)\s+Status: (\w+)\s+time:\s+([\d.]+) seconds")


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def differing_blocks(path: Path, image: bytes) -> int:
    data = path.read_bytes() if path.exists() else b""
    return sum(1 for offset in range(0, len(image), BLOCK)
               if data[offset:offset + BLOCK] != image[offset:offset + BLOCK])


def run_udpcast(net: RoomNetwork, work: Path, image_path: Path, rate_mbit: float,
                fec: str) -> dict[str, Any]:
    receivers: list[subprocess.Popen[bytes]] = []
    logs = []
    for pc in net.pcs:
        log = work / f"udp-{pc.index}.log"
        logs.append(log)
        with log.open("wb") as out:
            receivers.append(subprocess.Popen(pc.exec_argv(
                "udp-receiver", "--file", str(work / f"udp-{pc.index}.disk"), "--interface",
                "eth0", "--portbase", str(PORT_BASE), "--mcast-rdv-address", GROUP, "--nokbd",
                "--ignore-lost-data", "--rcvbuf", str(4 * 1024 * 1024), "--start-timeout",
                "120", "--receive-timeout", "10"), stdout=out, stderr=out))
    sender = subprocess.Popen([
        "udp-sender", "--file", str(image_path), "--interface", net.server_interface,
        "--portbase", str(PORT_BASE), "--mcast-rdv-address", GROUP, "--mcast-data-address",
        GROUP, "--ttl", "1", "--async", "--fec", fec, "--max-bitrate",
        f"{round(rate_mbit * 1000)}k", "--rexmit-hello-interval", "200"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not all(b"Connected as" in log.read_bytes() for log in logs):
            if time.monotonic() > deadline:
                raise RuntimeError("udp-receivers did not connect")
            time.sleep(0.1)
        started = time.monotonic()
        assert sender.stdin is not None
        sender.stdin.write(b"\n")
        sender.stdin.flush()
        ends: dict[int, float] = {}
        while len(ends) < len(receivers):
            for index, receiver in enumerate(receivers):
                if index not in ends and receiver.poll() is not None:
                    ends[index] = time.monotonic() - started
            if time.monotonic() - started > 1800:
                raise RuntimeError("udp-receivers did not finish")
            time.sleep(0.05)
    finally:
        stop([*receivers, sender])
    return {"ends": ends, "files": [work / f"udp-{pc.index}.disk" for pc in net.pcs]}


def run_uftp(net: RoomNetwork, work: Path, image_path: Path, rate_mbit: float
             ) -> dict[str, Any]:
    daemons = []
    files = []
    for pc in net.pcs:
        folder = work / f"uftp-{pc.index}"
        folder.mkdir()
        disk = work / f"uftp-{pc.index}.disk"
        disk.write_bytes(b"")
        (folder / "disk").symlink_to(disk)  # as the agent would point it at /dev/sda
        files.append(disk)
        with (work / f"uftpd-{pc.index}.log").open("wb") as log:
            daemons.append(subprocess.Popen(pc.exec_argv(
                "uftpd", "-d", "-D", str(folder), "-I", "eth0", "-B", str(4 * 1024 * 1024)),
                stdout=log, stderr=log))
    try:
        deadline = time.monotonic() + 60
        while not all(b"Loaded" in (work / f"uftpd-{pc.index}.log").read_bytes()
                      for pc in net.pcs):
            if time.monotonic() > deadline:
                raise RuntimeError("uftpd did not start")
            time.sleep(0.1)
        begun = time.monotonic()
        done = subprocess.run([
            "uftp", "-I", net.server_interface, "-R", str(round(rate_mbit * 1000)), "-t", "1",
            "-B", str(4 * 1024 * 1024), "-D", "disk", str(image_path)],
            capture_output=True, text=True, timeout=1800)
        total = time.monotonic() - begun
    finally:
        stop(daemons)
    times = {int(host, 16): float(seconds) for host, status, seconds
             in UFTP_STATUS.findall(done.stdout + done.stderr) if status == "Completed"}
    by_address = {int.from_bytes(bytes(int(part) for part in pc.address.split(".")), "big"):
                  pc.index for pc in net.pcs}
    ends = {by_address[host]: seconds for host, seconds in times.items() if host in by_address}
    return {"ends": ends, "files": files, "start_s": round(total - max(ends.values(),
                                                                       default=total), 1)}


def measure(tool: str, pcs: int, lossy: int, image_mib: int, pc_mbit: float,
            rate_share: float, fec: str) -> dict[str, Any]:
    image = os.urandom(image_mib * 1024 * 1024)
    floor = len(image) * 8 / (pc_mbit * 1e6)
    with tempfile.TemporaryDirectory(prefix=f"mcast-{tool}-") as folder, \
            room_network(pcs=pcs, pc_mbit=pc_mbit, uplink_mbit=pc_mbit * 10) as net:
        work = Path(folder)
        image_path = work / "image.raw"
        image_path.write_bytes(image)
        for pc in net.pcs[:lossy]:
            net.lose(pc, LOSS)
        if tool == "udpcast":
            run = run_udpcast(net, work, image_path, rate_share * pc_mbit, fec)
        else:
            run = run_uftp(net, work, image_path, rate_share * pc_mbit)
        repair = [differing_blocks(path, image) for path in run["files"]]
        dropped = sum(net.dropped(pc) for pc in net.pcs[:lossy])
    ends = run["ends"]
    done = [ends[index] + repair[index] * BLOCK * 8 / (pc_mbit * 1e6)
            for index in range(pcs) if index in ends]
    transfer = max(done) if len(done) == pcs else None
    return {"tool": tool, "pcs": pcs, "lossy_pcs": lossy, "image_bytes": len(image),
            "pc_link_mbit": pc_mbit, "rate_mbit": round(rate_share * pc_mbit, 2),
            "fec": fec if tool == "udpcast" else None, "link_floor_s": round(floor, 1),
            "start_s": run.get("start_s"), "first_pc_s": round(min(ends.values()), 1),
            "transfer_s": round(transfer, 1) if transfer else None,
            "floor_ratio": round(transfer / floor, 3) if transfer else None,
            "finished_pcs": len(ends), "repair_blocks": sum(repair),
            "repair_s": round(max(repair) * BLOCK * 8 / (pc_mbit * 1e6), 1),
            "identical_after_stream": sum(1 for index in range(pcs)
                                          if index in ends and not repair[index]),
            "lossy_dropped_packets": dropped,
            "image_sha256": hashlib.sha256(image).hexdigest()[:12],
            "load_1min": round(os.getloadavg()[0], 1)}


def main() -> None:
    defaults = MulticastSettings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pcs", type=int, nargs="+", default=[10, 40])
    parser.add_argument("--lossy", type=int, default=1, help="PCs dropping 5%% of what they get")
    parser.add_argument("--image-mib", type=int, default=100)
    parser.add_argument("--pc-mbit", type=float, default=10.0,
                        help="a PC's link (10: the real room's 100 Mbit/s scaled by 0.1)")
    parser.add_argument("--rate-share", type=float, default=0.9,
                        help="the sender's rate cap, a share of a PC's link")
    parser.add_argument("--fec", default=defaults.fec, help="udpcast's --fec")
    parser.add_argument("--tools", nargs="+", default=["udpcast", "uftp"],
                        choices=["udpcast", "uftp"])
    args = parser.parse_args()
    for pcs in args.pcs:
        for tool in args.tools:
            print(json.dumps(measure(tool, pcs, args.lossy, args.image_mib, args.pc_mbit,
                                     args.rate_share, args.fec)), flush=True)


if __name__ == "__main__":
    main()
