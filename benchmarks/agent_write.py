"""Agent image write throughput versus `curl | dd`, on one machine, over loopback HTTP.

Two images of 1 GiB are served by a small sendfile() HTTP server (its own process):
- `random`: incompressible data, no zeros: raw streaming throughput, checksum (sha256) verified;
- `sparse`: 75 % zeros (in every 4 MiB, 1 MiB of data then 3 MiB of zeros, like a file system
  with free space): sparse-aware writing.
Each is written onto a fresh file-backed disk on the same file system, by the real agent
(`python3 -m agent.main`, Debian's python3 as in the ramdisk, `standby.write_image` with its
sha256) and by `curl -s URL | dd of=DISK bs=8M conv=notrunc,fsync` (plain, and `conv=sparse`),
each run three times after one untimed warm-up write each; the median is reported, with the CPU
seconds of the agent process and of curl + dd. Both end with the data flushed (fsync).

    .venv/bin/python benchmarks/agent_write.py [--size-mib 1024] [--runs 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.test_agent_harness import FakeApi, running_agent  # noqa: E402

MiB = 1024 * 1024
SERVER = r'''
import os, socket, sys, threading
root = sys.argv[1]
listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
def serve(conn):
    with conn:
        request = b""
        while b"\r\n\r\n" not in request:
            data = conn.recv(4096)
            if not data:
                return
            request += data
        name = request.split()[1].decode().lstrip("/")
        path = os.path.join(root, name)
        size = os.path.getsize(path)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % size)
        with open(path, "rb") as handle:
            conn.sendfile(handle)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
'''


def make_images(directory: Path, size: int) -> dict[str, tuple[Path, str]]:
    images = {}
    for kind in ("random", "sparse"):
        path = directory / f"{kind}.raw"
        digest = hashlib.sha256()
        with path.open("wb") as handle:
            for offset in range(0, size, 4 * MiB):
                block = os.urandom(4 * MiB) if kind == "random" else (
                    os.urandom(MiB) + bytes(3 * MiB))
                block = block[:size - offset]
                handle.write(block)
                digest.update(block)
        images[kind] = (path, digest.hexdigest())
    return images


def fresh_disk(path: Path, size: int) -> Path:
    path.unlink(missing_ok=True)
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def drop_dirty() -> None:
    os.sync()


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def curl_dd(url: str, disk: Path, sparse: bool) -> tuple[float, float]:
    """Wall-clock seconds and CPU seconds (curl + dd) of one `curl | dd`."""
    conv = "notrunc,fsync" + (",sparse" if sparse else "")
    drop_dirty()
    cpu = children_cpu()
    start = time.perf_counter()
    subprocess.run(f"curl -sf {url} | dd of={disk} bs=8M iflag=fullblock conv={conv} "
                   "status=none", shell=True, check=True)
    return time.perf_counter() - start, children_cpu() - cpu


def agent_write(agent, url: str,  # type: ignore[no-untyped-def]
                digest: str) -> tuple[float, float, dict]:
    """Wall-clock seconds, the agent's CPU seconds and the command result of one write."""
    drop_dirty()
    cpu = process_cpu(agent.process.pid)
    start = time.perf_counter()
    status, document = agent.command("standby.write_image", {
        "image_url": url, "image_os_hash_algo": "sha256", "image_os_hash_value": digest,
        "image_disk_format": "raw", "image_type": "whole-disk"})
    assert status == 200, document
    while document["command_status"] == "RUNNING":
        time.sleep(0.01)
        _, document = agent.request("GET", f"/v1/commands/{document['id']}")
    elapsed = time.perf_counter() - start
    assert document["command_status"] == "SUCCEEDED", document
    return elapsed, process_cpu(agent.process.pid) - cpu, document["command_result"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where images and disks go (default /tmp)")
    args = parser.parse_args()
    size = args.size_mib * MiB
    load_before = os.getloadavg()
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="enclume-agent-bench-") as tmp:
        work = Path(tmp)
        (work / "images").mkdir()
        images = make_images(work / "images", size)
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(work / "images")],
                                  stdout=subprocess.PIPE, text=True)
        api = FakeApi()
        try:
            port = int(server.stdout.readline())  # type: ignore[union-attr]
            base = f"http://127.0.0.1:{port}"
            disk = fresh_disk(work / "disk.img", size + 64 * MiB)
            with running_agent(api, work, [disk]) as agent:
                for kind, (path, digest) in images.items():
                    url = f"{base}/{path.name}"
                    times = results.setdefault(kind, {})
                    fresh_disk(disk, size + 64 * MiB)  # one untimed write of each: warm-up
                    agent_write(agent, url, digest)
                    fresh_disk(disk, size + 64 * MiB)
                    curl_dd(url, disk, False)
                    for _ in range(args.runs):
                        fresh_disk(disk, size + 64 * MiB)
                        elapsed, cpu, result = agent_write(agent, url, digest)
                        times.setdefault("agent", []).append(elapsed)
                        times.setdefault("agent_cpu_s", []).append(cpu)
                        times.setdefault("agent_skipped_mib", []).append(
                            result["skipped_zero_bytes"] / MiB)
                        fresh_disk(disk, size + 64 * MiB)
                        elapsed, cpu = curl_dd(url, disk, False)
                        times.setdefault("curl|dd", []).append(elapsed)
                        times.setdefault("curl|dd_cpu_s", []).append(cpu)
                        fresh_disk(disk, size + 64 * MiB)
                        times.setdefault("curl|dd conv=sparse", []).append(
                            curl_dd(url, disk, True)[0])
        finally:
            api.close()
            server.terminate()
            server.wait()
    report: dict[str, dict[str, object]] = {}
    for kind, times in results.items():
        entry: dict[str, object] = {}
        for name, values in times.items():
            entry[name] = {"median": round(statistics.median(values), 3),
                           "runs": [round(v, 3) for v in values]}
        agent_s = statistics.median(times["agent"])
        dd_s = statistics.median(times["curl|dd"])
        entry["agent_MBps"] = round(size / agent_s / 1e6)
        entry["curl|dd_MBps"] = round(size / dd_s / 1e6)
        entry["agent_throughput_vs_curl|dd"] = round(dd_s / agent_s, 2)
        entry["agent_speedup_vs_curl|dd_sparse"] = round(
            statistics.median(times["curl|dd conv=sparse"]) / agent_s, 2)
        report[kind] = entry
    print(json.dumps({"size_mib": args.size_mib, "runs": args.runs, "cores": os.cpu_count(),
                      "dir": args.dir or tempfile.gettempdir(),
                      "load_average_before_after": [load_before[0], os.getloadavg()[0]],
                      "results": report}, indent=2))
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    socket.setdefaulttimeout(120)
    sys.exit(main())
