"""Students' states (issue #20): capture and resume times after 1 %, 5 % and 20 % of a disk
changed, and the image store's size for a room of students after one session.

One image (default 512 MiB: an MBR disk, ext4 65 % full of random files) ingested into an
image store, served by the boot service's capture and range-read routes (uvicorn, in this
process, on loopback). The agent's own code (``image.capture_blocks``, ``restore_blocks``) runs
as a separate process with the ramdisk's Python, on a file-backed disk, page cache dropped
first (when run as root). The capture's authority is a stand-in for the catalogue's: it
computes the state's size (the blocks that differ from the version) as the real one does and
records nothing in a database.

- per change: the disk is the image with N % of its size written as new files (tests/support/
  disk_images.change_disk); the capture sends what the store lacks; the resume is a delta
  restore of that state onto a disk holding the clean image (a PC restored for the next class).
- the room: each student's disk gets the same "practical" change (``--shared``, same seed for
  all: the same package installed) and one of their own (``--own``, seeded per student); every
  state is captured into one store; its growth is compared with the states' summed sizes.

    .venv/bin/python benchmarks/student_states.py [--size-mib 512] [--changes 1,5,20]
        [--students 40] [--shared 3] [--own 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MiB = 1024 * 1024
AGENT_PYTHON = "/usr/bin/python3"  # the ramdisk's Python: no venv, stdlib only
LINK_RATE = 100e6 / 8  # a classroom PC's 100 Mbit port, for the floor column
BASE = "base"


def drop_caches() -> None:
    os.sync()
    with contextlib.suppress(OSError):  # not root: warm caches
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def agent_side(spec: dict[str, Any]) -> None:
    """In the agent's process: one capture or one delta restore, with the agent's own code."""
    from agent.capture_blocks import CaptureRequest, capture_blocks
    from agent.disks import file_disk
    from agent.restore_blocks import RestoreRequest, restore_blocks

    disk = file_disk(str(spec["disk"]))
    started = time.perf_counter()
    if spec["mode"] == "capture":
        result = capture_blocks(CaptureRequest(capture_url=spec["capture_url"], target_disk=None,
                                               size=int(spec["size"])),
                                [disk], "bench-token", 120, lambda done, total: None)
    else:
        result = restore_blocks(RestoreRequest(
            manifest_url=spec["manifest_url"], manifest_sha256=spec["manifest_sha256"],
            disk_url=spec["disk_url"], mode="delta", target_disk=None,
            image_token=spec["image_token"]), [disk], 120, lambda done, total: None)
    print(json.dumps({"seconds": time.perf_counter() - started, "result": result}))


def run_agent(spec: dict[str, Any]) -> dict[str, Any]:
    drop_caches()
    done = subprocess.run([AGENT_PYTHON, str(Path(__file__).resolve()), "--agent-side",
                           json.dumps(spec)], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the agent side failed: {done.stderr}")
    loaded: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


class BenchAuthority:
    """The capture routes' authority for the benchmark: each path's node is one student."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def target(self, node_uuid: str, token: str | None) -> Any:
        from services.classroom.image_capture import CaptureTarget
        return CaptureTarget(session=f"state-{node_uuid}", image="", version="",
                             student={"owner": node_uuid, "image_version": BASE})

    def record(self, target: Any, version_id: str, manifest: Any) -> dict[str, Any]:
        from services.classroom.state_capture import differing
        changed = differing(self.store.manifest(BASE), manifest)
        return {"uuid": version_id, "differing_blocks": len(changed),
                "size_bytes": sum(manifest.block_length(index) for index in changed)}

    def recorded(self, target: Any) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--changes", default="1,5,20", help="percentages, comma-separated")
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--shared", type=float, default=3.0, help="%% of the disk, everyone's")
    parser.add_argument("--own", type=float, default=1.0, help="%% of the disk, each student's")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--agent-side", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.agent_side:
        agent_side(json.loads(args.agent_side))
        return

    import socket

    from starlette.applications import Starlette

    from services.boot.image_blocks import image_block_routes
    from services.boot.image_capture import image_capture_routes
    from services.images import tokens
    from services.images.store import ImageStore
    from tests.integration.test_agent_harness import sha256_of
    from tests.support.asgi import serving
    from tests.support.disk_images import change_disk, make_os_image

    size = args.size_mib * MiB
    workdir = Path(tempfile.mkdtemp(prefix="enclume-states-", dir=args.workdir))
    try:
        image, disk = workdir / "image.img", workdir / "disk.img"
        make_os_image(image, size, fill=0.65)
        print(f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start",
              flush=True)
        store = ImageStore(workdir / "store", max_bytes=1 << 42)
        store.ingest_file(BASE, image, sha256_of(image))
        secret = os.urandom(32)
        app = Starlette(routes=[*image_block_routes(store, secret),
                                *image_capture_routes(store, BenchAuthority(store))])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        with serving(app, sock) as url:
            def capture(student: str) -> dict[str, Any]:
                return run_agent({"mode": "capture", "disk": str(disk), "size": size,
                                  "capture_url": f"{url}/image-captures/{student}"})

            def resume(state_id: str) -> dict[str, Any]:
                shutil.copyfile(image, disk)  # the next PC: restored for the next class
                return run_agent({
                    "mode": "resume", "disk": str(disk),
                    "manifest_url": f"{url}/image-versions/{state_id}/manifest",
                    "manifest_sha256": store.manifest_sha256(state_id),
                    "disk_url": f"{url}/image-versions/{state_id}/disk",
                    "image_token": tokens.issue(secret, state_id, 3600)})

            print("\n| change | state size | capture | sent | resume | fetched | "
                  "link floor (100 Mbit) |")
            print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
            for percent in (float(value) for value in args.changes.split(",")):
                shutil.copyfile(image, disk)
                change_disk(disk, percent / 100, seed=int(percent * 10))
                captured = capture(f"change-{percent:g}")
                state = captured["result"]["version"]
                resumed = resume(state["uuid"])
                sent = int(captured["result"]["sent_bytes"])
                fetched = int(resumed["result"]["fetched_bytes"])
                print(f"| {percent:g} % | {state['size_bytes'] / MiB:.0f} MiB | "
                      f"{captured['seconds']:.1f} s | {sent / MiB:.0f} MiB | "
                      f"{resumed['seconds']:.1f} s | {fetched / MiB:.0f} MiB | "
                      f"{sent / LINK_RATE:.1f} s + {fetched / LINK_RATE:.1f} s |", flush=True)
                store.delete_version(state["uuid"])
            store.gc()

            base_used = store.usage().used_bytes
            sizes, sent_total, started = [], 0, time.perf_counter()
            for student in range(args.students):
                shutil.copyfile(image, disk)
                change_disk(disk, args.shared / 100, seed=1000)  # the class's practical
                change_disk(disk, args.own / 100, seed=2000 + student, tree="own")  # their work
                captured = capture(f"student-{student}")
                sizes.append(int(captured["result"]["version"]["size_bytes"]))
                sent_total += int(captured["result"]["sent_bytes"])
            elapsed = time.perf_counter() - started
        grown = store.usage().used_bytes - base_used
        print(f"\n{args.students} students ({args.shared:g} % shared + {args.own:g} % own of "
              f"a {args.size_mib} MiB disk), {elapsed:.0f} s with the disks' preparation:")
        print(f"- states' summed sizes {sum(sizes) / MiB:.0f} MiB (each "
              f"{min(sizes) / MiB:.0f}-{max(sizes) / MiB:.0f} MiB)")
        print(f"- sent {sent_total / MiB:.0f} MiB; the store grew by {grown / MiB:.0f} MiB "
              f"({100 * grown / max(sum(sizes), 1):.0f} % of the summed sizes); the image "
              f"itself {base_used / MiB:.0f} MiB")
        print(f"load {os.getloadavg()[0]:.1f} at the end")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
