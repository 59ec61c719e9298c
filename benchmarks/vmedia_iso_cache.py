#!/usr/bin/env python3
"""What the virtual media ISO cache saves a prepare (``redfish-virtual-media``).

A prepare fetches the deploy kernel and ramdisk (over loopback HTTP here, as from the boot
service), then either builds the ISO (mkfs.fat, mtools, genisoimage: what every prepare did
before the cache) or finds it in the cache and links it as the node's. Measured in process with
``services/drivers/boot/vmedia_cache.py``: the median seconds of a prepare that builds (a new
kernel command line each time) and of one that reuses (another node, the same ISO).

Usage::

    .venv/bin/python benchmarks/vmedia_iso_cache.py [--kernel .cache/ramdisk/vmlinuz]
        [--ramdisk .cache/ramdisk/initramfs.zst] [--repeat 5]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import threading
import time
import uuid
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.common.config import Settings
from services.drivers.boot.vmedia_cache import IsoCache

REPO = Path(__file__).resolve().parents[1]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernel", type=Path, default=REPO / ".cache/ramdisk/vmlinuz")
    parser.add_argument("--ramdisk", type=Path, default=REPO / ".cache/ramdisk/initramfs.zst")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vmedia-bench-") as work_dir:
        work = Path(work_dir)
        inputs = work / "inputs"
        inputs.mkdir()
        (inputs / "kernel").symlink_to(args.kernel.resolve())
        (inputs / "ramdisk").symlink_to(args.ramdisk.resolve())
        server = ThreadingHTTPServer(("127.0.0.1", 0),
                                     functools.partial(QuietHandler, directory=str(inputs)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        files = {"deploy_kernel": f"{base}/kernel", "deploy_ramdisk": f"{base}/ramdisk"}
        cache = IsoCache(Settings(process={"data_dir": work / "data"}))
        built, reused = [], []
        try:
            for run in range(args.repeat):
                params = f"enclume.api_url=http://192.0.2.1:6385 run={run}"
                for timings in (built, reused):
                    started = time.monotonic()
                    published = cache.publish(str(uuid.uuid4()), files, params)
                    timings.append(time.monotonic() - started)
                    assert published.reused == (timings is reused)
        finally:
            server.shutdown()
            server.server_close()
    size = (args.kernel.stat().st_size + args.ramdisk.stat().st_size) / 1024 ** 2
    print(f"vmedia ISO prepare, {size:.1f} MiB kernel + ramdisk, median of {args.repeat}: "
          f"built {statistics.median(built):.2f} s, reused {statistics.median(reused):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
