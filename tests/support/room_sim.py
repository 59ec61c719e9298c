"""The simulated classroom of lab/room_sim.py as a pytest fixture: ``make_room(spec)`` builds a
room (namespaces, shaped links, enclume-aio, the boot service's HTTP side, one real agent per
PC) that is torn down after the test, also when it fails."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from lab.room_sim import RAMDISK_PYTHON, RoomSim, RoomSpec, room_sim

NEEDED = ("ip", "tc", "iptables")


def require_room_tools() -> None:
    if os.geteuid() != 0:
        pytest.fail("the room simulation needs root (network namespaces, tc, iptables)")
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing or not Path(RAMDISK_PYTHON).exists():
        pytest.fail(f"the room simulation needs {', '.join(missing) or RAMDISK_PYTHON} "
                    "(Debian: iproute2 iptables python3; `make deps`)")


@pytest.fixture(name="make_room")
def make_room_fixture(tmp_path: Path) -> Iterator[Callable[[RoomSpec], RoomSim]]:
    require_room_tools()
    numbers = itertools.count()
    with ExitStack() as stack:
        def make(spec: RoomSpec) -> RoomSim:
            base = tmp_path / f"room-{next(numbers)}"
            return stack.enter_context(room_sim(base, spec))
        yield make
