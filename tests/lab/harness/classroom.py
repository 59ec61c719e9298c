"""Classroom pieces of the lab: the event stream of a room, and a throttle on image downloads.

- `EventStream` reads `GET /enclume/v1/events?room=R` (Server-Sent Events) in a thread and keeps
  every event with the monotonic time it arrived: what a teacher's `enclume room status --watch`
  shows.
- `ImageDownloadThrottle` limits what the service host sends to each machine, from the moment
  that machine's deploy ramdisk kernel runs (so the ramdisk itself loads at full speed): the
  32 MiB test image is then written over several agent heartbeats, and the write's progress, which
  the conductor learns on each heartbeat, is seen climbing. (Unthrottled, the image is written in
  about 1.4 s, within one heartbeat.) htb classes with u32 filters on the machines' provisioning
  addresses, on the egress of the service host's tap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

import httpx
import httpx_sse

from tests.lab.harness.netns import TAP_NAME
from tests.lab.harness.processes import LabError
from tests.lab.harness.provisioning import LabMachine, ProvisioningLab

EVENTS_PATH = "/enclume/v1/events"
# On the deploy ramdisk's kernel command line (the test images' OS has no such parameter).
RAMDISK_KERNEL_MARKER = "enclume.api_url="
READ_TIMEOUT_S = 60.0  # the stream sends a comment every 15 s
UNLIMITED = "10gbit"


class EventStream:
    """`with EventStream(api_url, room) as stream:` — `stream.events` is every (time, event,
    data) received so far."""

    def __init__(self, api_url: str, room: str) -> None:
        self.events: list[tuple[float, str, dict[str, Any]]] = []
        self.error: BaseException | None = None
        self._client = httpx.Client(base_url=api_url,
                                    timeout=httpx.Timeout(10.0, read=READ_TIMEOUT_S))
        self._room = room
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._read, name="enclume-events", daemon=True)

    def __enter__(self) -> EventStream:
        self._thread.start()
        if not self._connected.wait(10.0):
            self.close()
            raise LabError(f"the event stream did not open: {self.error}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self) -> None:
        try:
            with httpx_sse.connect_sse(self._client, "GET", EVENTS_PATH,
                                       params={"room": self._room}) as source:
                source.response.raise_for_status()
                self._response = source.response
                self._connected.set()
                for event in source.iter_sse():
                    if self._stop.is_set():
                        return
                    self.events.append((time.monotonic(), event.event, event.json()))
        except Exception as exc:  # kept for the test to show; a closed stream ends here too
            if not self._stop.is_set():
                self.error = exc

    def pc_events(self, job: str) -> list[dict[str, Any]]:
        return [data for _, kind, data in self.events if kind == "pc" and data.get("job") == job]

    def percents(self, job: str) -> dict[str, list[int]]:
        """Per PC (node name), the percentages of the job's `pc` events, in arrival order,
        repeats of the same value dropped."""
        seen: dict[str, list[int]] = {}
        for data in self.pc_events(job):
            percent = data.get("percent")
            values = seen.setdefault(str(data.get("node")), [])
            if isinstance(percent, int) and (not values or values[-1] != percent):
                values.append(percent)
        return seen

    def close(self) -> None:
        self._stop.set()
        if self._response is not None:
            self._response.close()
        self._client.close()
        self._thread.join(timeout=5.0)


class ImageDownloadThrottle:
    """Call `poll()` often while the machines deploy; `close()` removes the limits."""

    def __init__(self, lab: ProvisioningLab, machines: Iterable[LabMachine],
                 rate: str) -> None:
        self.lab = lab
        self.rate = rate
        self.machines = list(machines)
        self.throttled: dict[str, float] = {}  # machine name -> when its limit was set
        # Only what the consoles print from now on counts (the logs hold earlier boots too).
        self._console_from = {m.name: _size(m) for m in self.machines}
        self._tc("qdisc", "add", "dev", TAP_NAME, "root", "handle", "1:", "htb", "default", "1")
        self._tc("class", "add", "dev", TAP_NAME, "parent", "1:", "classid", "1:1", "htb",
                 "rate", UNLIMITED)

    def _tc(self, *args: str) -> None:
        self.lab.service.execute(["tc", *args])

    def poll(self) -> None:
        for index, machine in enumerate(self.machines, start=10):
            if machine.name in self.throttled or RAMDISK_KERNEL_MARKER not in _console_since(
                    machine, self._console_from[machine.name]):
                continue
            address = self.lab.provisioning_lease_of(machine)
            if address is None:
                raise LabError(f"{machine.name} runs the deploy ramdisk without a lease")
            classid = f"1:{index}"
            self._tc("class", "add", "dev", TAP_NAME, "parent", "1:", "classid", classid, "htb",
                     "rate", self.rate, "ceil", self.rate)
            self._tc("filter", "add", "dev", TAP_NAME, "parent", "1:", "protocol", "ip", "prio",
                     "1", "u32", "match", "ip", "dst", f"{address}/32", "flowid", classid)
            self.throttled[machine.name] = time.monotonic()

    def close(self) -> None:
        self.lab.service.execute(["tc", "qdisc", "del", "dev", TAP_NAME, "root"], check=False)


def _size(machine: LabMachine) -> int:
    log = machine.qemu.serial_log
    return log.stat().st_size if log.exists() else 0


def _console_since(machine: LabMachine, offset: int) -> str:
    log = machine.qemu.serial_log
    if not log.exists():
        return ""
    with log.open("rb") as text:
        text.seek(offset)
        return text.read().decode(errors="replace")
