"""IPMI 2.0 (RMCP+ "lanplus") BMC emulator: many BMCs in one process, one selector loop.

Each BMC is a ``pyghmi.ipmi.bmc.Bmc`` subclass bound to its own UDP port and driving a
``Machine``: ``MemoryMachine`` here, a QEMU-backed one in the lab. Its parts, one job each:

- tests/support/ipmi_machine.py: what a BMC drives (``Machine``, ``BootSetting``,
  ``MemoryMachine``);
- tests/support/ipmi_session.py: the RMCP+ session, with pyghmi's server bugs worked around;
- tests/support/ipmi_protocol.py: one BMC (``EmulatedBmc``): datagrams to sessions, chassis and
  boot-option commands onto its machine;
- tests/support/ipmi_fleet.py: ``BmcFleet``, the BMCs of one process on one thread, and their
  faults;
- this module: the names the tests import, and the fleet as a process of its own (below).

Faults, switchable per BMC while running: ``set_down`` (nothing is answered), ``set_slow``
(every datagram is handled N seconds after it arrived), ``set_password`` (clients with the old
password fail authentication; established sessions are dropped), ``restore``.

Measured here (2 cores, shared): 500 BMCs start in ~20 ms and add ~1 MiB to the process (the
``python -m`` process with 500 BMCs: ~36 MiB RSS, 2 threads); one ``ipmitool`` invocation
(session setup, command, close) ~27 ms; a pyghmi ``get_power`` on an open session ~0.5 ms; 500
pyghmi logins + power status from 8 threads ~2 s. Seen from clients: ``down`` -> ipmitool gives
up after -N x (-R + 1) s (20 s with its defaults), a new pyghmi ``Command`` raises after ~4.5 s,
an open pyghmi session only after ~28 s ("Session no longer connected", and that ``Command``
stays broken). ``slow 0.5`` -> ipmitool ~5.5 s (about 11 exchanges), pyghmi login ~3 s and one
command ~1 s (it retransmits). Wrong password -> ipmitool "RAKP 2 HMAC is invalid" (with -v) at
once, pyghmi "Incorrect password provided" at once (an open pyghmi session whose BMC changed its
password fails after ~10 s: "Session no longer connected"); unknown user -> pyghmi "Unauthorized
name in RAKP2". The pyghmi *client* sometimes stalls 0.5-1 s on one command (its IO thread;
ipmitool against the same fleet never does).

Run as a process (benchmarks, the lab)::

    python -m tests.support.ipmi_bmc --count 500 --base-port 0 --user admin \\
        --password-file pw.txt

prints one JSON line ``{"event": "ready", "host": ..., "ports": [...], ...}`` and serves until
SIGTERM or SIGINT. With ``--control-stdin`` it also reads commands, one per line, and answers each
with one JSON line: ``down PORT``, ``slow PORT SECONDS``, ``password PORT NEW-PASSWORD``,
``restore PORT``, ``power PORT`` (the machine's power state), ``boot PORT`` (its boot override);
end of input stops it (so the fleet also ends when the process that started it goes away).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import signal
import sys
import threading
import time
from typing import Any

from tests.support.ipmi_fleet import BmcFleet, running_fleet
from tests.support.ipmi_machine import (
    POWER_OFF,
    POWER_ON,
    BootSetting,
    Machine,
    MachineStateError,
    MemoryMachine,
)

# The names the tests and the lab import from here, whichever module of the emulator owns them.
__all__ = ["POWER_OFF", "POWER_ON", "BmcFleet", "BootSetting", "Machine", "MachineStateError",
           "MemoryMachine", "control", "main", "running_fleet"]


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _raise_open_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = hard if hard == resource.RLIM_INFINITY else min(hard, max(needed, soft))
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def control(fleet: BmcFleet, words: list[str]) -> dict[str, Any]:
    """One control command (see the module docstring) applied to ``fleet``."""
    if len(words) < 2:
        raise ValueError("expected: COMMAND PORT [ARGUMENT]")
    verb, port = words[0], int(words[1])
    if verb == "down":
        fleet.set_down(port)
    elif verb == "slow" and len(words) == 3:
        fleet.set_slow(port, float(words[2]))
    elif verb == "password" and len(words) == 3:
        fleet.set_password(port, words[2])
    elif verb == "restore":
        fleet.restore(port)
    elif verb == "power":
        return {"ok": True, "power": fleet.machine(port).power_state()}
    elif verb == "boot":
        setting = fleet.machine(port).boot_setting()
        return {"ok": True, "device": setting.device, "persistent": setting.persistent,
                "uefi": setting.uefi}
    else:
        raise ValueError(f"unknown command {verb!r} or wrong number of arguments")
    return {"ok": True}


def _serve_control(fleet: BmcFleet, stop: threading.Event) -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = control(fleet, line.split())
        except (KeyError, ValueError) as error:
            reply = {"ok": False, "error": str(error).strip("'\"")}
        print(json.dumps(reply), flush=True)
    stop.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.ipmi_bmc",
                                     description="Serve N emulated IPMI BMCs on loopback.")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--base-port", type=int, default=0,
                        help="first UDP port (consecutive ports follow); 0: any free ports")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", required=True,
                        help="file whose first line is the password (kept off the command line)")
    parser.add_argument("--power", choices=(POWER_ON, POWER_OFF), default=POWER_OFF)
    parser.add_argument("--control-stdin", action="store_true",
                        help="read fault and inspection commands from standard input")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    with open(args.password_file) as handle:
        password = handle.readline().rstrip("\n")
    if not password:
        parser.error("the password file is empty")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    _raise_open_file_limit(args.count + 64)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    began = time.monotonic()
    fleet = BmcFleet(args.user, password, host=args.host,
                     machine_factory=lambda: MemoryMachine(power=args.power))
    try:
        ports = [port for port, _ in fleet.start(args.count, args.base_port)]
        print(json.dumps({"event": "ready", "host": args.host, "ports": ports,
                          "startup_s": round(time.monotonic() - began, 3),
                          "rss_kib": _rss_kib()}), flush=True)
        if args.control_stdin:
            threading.Thread(target=_serve_control, args=(fleet, stop), daemon=True).start()
        stop.wait()
    finally:
        fleet.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
