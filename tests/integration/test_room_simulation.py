"""A classroom of 8 PCs restored through the real services (lab/room_sim.py): every PC runs the
real agent in its own network namespace on one bridge, with its own MAC and a file-backed disk;
PC links and the server's uplink are shaped apart (8 Mbit/s and 80 Mbit/s: a 100 Mbit/1 Gbit
room scaled by 0.08); ``POST /enclume/v1/rooms/SIM/actions {"action": "restore"}`` is followed
to the job's end. Unicast (HTTP block restore), the transfer the services have today."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from lab.room_network import room_network
from lab.room_sim import MiB, RoomSim, RoomSpec, SimPc, room_sim
from tests.support.room_sim import make_room_fixture, require_room_tools  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PCS = 8
PC_MBIT, UPLINK_MBIT = 8.0, 80.0
IMAGE_BYTES = 4 * MiB
LINK_FLOOR_S = IMAGE_BYTES * 8 / (PC_MBIT * 1e6)  # one image through one PC's link
LOSSY, POWER_CUT = 3, 6
CUT_AFTER_S = 1.0
CALLBACK_TIMEOUT_S = 15.0  # a PC silent this long fails (heartbeats every 0.3 s; a loaded
# machine delays some by seconds)
SPEC = RoomSpec(pcs=PCS, pc_mbit=PC_MBIT, uplink_mbit=UPLINK_MBIT, image_bytes=IMAGE_BYTES,
                heartbeat_s=0.3, lookup_retry_s=0.3)
MakeRoom = Callable[[RoomSpec], RoomSim]


def outcomes(job: dict[str, Any]) -> dict[str, str | None]:
    return {pc["node_uuid"]: pc["outcome"] for pc in job["pcs"]}


def server_seconds(job: dict[str, Any]) -> float:
    return (datetime.fromisoformat(job["finished_at"])
            - datetime.fromisoformat(job["created_at"])).total_seconds()


def test_a_room_of_8_pcs_is_restored_and_every_disk_is_the_image(make_room: MakeRoom) -> None:
    room = make_room(SPEC)
    assert not any(room.disk_matches(pc) for pc in room.pcs)
    job = room.restore(timeout=120)
    assert job["state"] == "done", (job["pcs"], room.diagnostics())
    assert set(outcomes(job).values()) == {"succeeded"}
    assert {pc["restore_mode"] for pc in job["pcs"]} == {"full"}
    assert all(pc["fetched_bytes"] == IMAGE_BYTES for pc in job["pcs"]), job["pcs"]
    assert [room.disk_matches(pc) for pc in room.pcs] == [True] * PCS
    # The links are shaped: no PC can have its image faster than its link carries it.
    assert server_seconds(job) >= LINK_FLOOR_S * 0.95, (server_seconds(job), LINK_FLOOR_S)


def test_a_pc_cut_off_mid_restore_fails_alone_and_a_lossy_pc_still_finishes(
        make_room: MakeRoom) -> None:
    room = make_room(replace(SPEC, callback_timeout_s=CALLBACK_TIMEOUT_S))
    lossy, cut = room.pcs[LOSSY], room.pcs[POWER_CUT]
    room.network.lose(lossy.link, 0.05)
    writing_since: list[float] = []
    cut_at: dict[str, Any] = {}

    def cut_power_mid_write(sim: RoomSim, job: dict[str, Any]) -> None:
        """A second after its agent reported the restore's size (the image takes the link
        floor, 4.2 s, to arrive), while the PC has no outcome yet."""
        mine = next(pc for pc in job["pcs"] if pc["node_uuid"] == cut.uuid)
        if cut_at or mine["outcome"] is not None or mine["bytes_total"] is None:
            return
        if not writing_since:
            writing_since.append(time.monotonic())
        elif time.monotonic() - writing_since[0] >= CUT_AFTER_S:
            sim.cut_power(cut)
            cut_at.update(mine)

    job = room.restore(timeout=180, during=cut_power_mid_write)
    assert cut_at, "the PC was never seen writing: it could not be cut off mid-restore"
    assert job["state"] == "failed-partly", (job["pcs"], room.diagnostics())
    ended = outcomes(job)
    assert ended.pop(cut.uuid) == "failed"
    assert set(ended.values()) == {"succeeded"}, job["pcs"]
    failed = next(pc for pc in job["pcs"] if pc["node_uuid"] == cut.uuid)
    assert "Timeout reached while waiting for callback" in (failed["error"] or ""), failed
    others: list[SimPc] = [pc for pc in room.pcs if pc is not cut]
    assert [room.disk_matches(pc) for pc in others] == [True] * (PCS - 1)
    assert not room.disk_matches(cut)
    assert room.network.dropped(lossy.link) > 0  # the lossy link did lose packets


def test_a_failing_body_leaves_no_process_and_no_namespace(tmp_path: Path) -> None:
    require_room_tools()
    seen: dict[str, Any] = {}
    with pytest.raises(RuntimeError, match="the test failed here"), \
            room_sim(tmp_path, replace(SPEC, pcs=2)) as room:
        seen["pids"] = [pc.agent.pid for pc in room.pcs if pc.agent is not None]
        seen["pids"] += [room.aio.process.pid, room.boot.process.pid]
        seen["namespaces"] = [pc.link.namespace for pc in room.pcs]
        seen["namespaces"].append(room.network.switch_namespace)
        raise RuntimeError("the test failed here")
    assert len(seen["pids"]) == 4
    assert not [pid for pid in seen["pids"] if Path(f"/proc/{pid}").exists()]
    remaining = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not [name for name in seen["namespaces"] if name in remaining], remaining


MULTICAST_RECEIVER = """
import socket, struct
group = ("239.255.18.1", 9018)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(group)
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
             struct.pack("4s4s", socket.inet_aton(group[0]), socket.inet_aton("0.0.0.0")))
print("joined", flush=True)
s.settimeout(3)
received = 0
try:
    while True:
        s.recv(2048)
        received += 1
except socket.timeout:
    print(received, flush=True)
"""


def test_the_room_network_carries_the_servers_multicast_to_every_pc() -> None:
    """What a multicast transfer needs of the harness: a datagram the server sends once to a
    group (TTL 1, from its address) reaches every PC that joined it, through the bridge."""
    require_room_tools()
    with room_network(3, PC_MBIT, UPLINK_MBIT) as net:
        receivers = [subprocess.Popen(pc.exec_argv("/usr/bin/python3", "-c", MULTICAST_RECEIVER),
                                      stdout=subprocess.PIPE, text=True) for pc in net.pcs]
        try:
            assert [r.stdout.readline().strip() for r in receivers if r.stdout] == ["joined"] * 3
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                  socket.inet_aton(net.server_address))
                sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
                for _ in range(300):  # 300 x 1400 bytes at ~3 Mbit/s, under the PC links
                    sender.sendto(b"m" * 1400, ("239.255.18.1", 9018))
                    time.sleep(0.003)
            counts = [int(r.communicate(timeout=30)[0].strip()) for r in receivers]
        finally:
            for receiver in receivers:
                if receiver.poll() is None:
                    receiver.kill()
                    receiver.wait()
    assert all(count >= 270 for count in counts), counts
