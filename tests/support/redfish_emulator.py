"""A real Redfish peer: ``sushy-emulator`` with its fake driver, one process per emulator.

``RedfishEmulator`` starts ``.venv/bin/sushy-emulator --config FILE --fake`` on a free loopback
port with a fresh config file and state directory, HTTP basic authentication (bcrypt htpasswd,
``SUSHY_EMULATOR_AUTH_FILE``) and optionally TLS with a server certificate signed by a throw-away
CA made for the emulator (``ca_file``). It waits until the service answers and stops the process
by its PID. ``stop()``/``start()`` make the endpoint refuse connections and come back on the same
port with the same state; ``freeze()``/``thaw()`` (SIGSTOP/SIGCONT) make it accept connections
and answer nothing, like a hung BMC.

Measured with sushy-tools 2.2.0 (sushy 5.14 as client), see tests/integration/test_peers.py:

- It serves exactly the systems listed in ``SUSHY_EMULATOR_FAKE_SYSTEMS`` (one system,
  ``27946b59-9e44-4fa7-8e91-f3527a1ef094`` "fake", when unset); 500 are fine (``fake_systems``).
  Their state lives in ``STATE_DIR/fakedriver.sqlite`` and survives a restart.
- Power changes are not immediate: ``On``, ``ForceOff``, ``GracefulShutdown`` land at
  ``int(now) + randint(1, 11)``, i.e. 0-11 s after the request (seen: 0.2-10.9 s). A
  ``ForceRestart``/``GracefulRestart`` reads ``Off`` at once and ``On`` when it lands. A request
  for the state the system is already in changes nothing. ``Nmi`` is listed as allowed but
  answers HTTP 501; ``PushPowerButton`` is not offered.
- Boot override: ``BootSourceOverrideEnabled`` always reads ``Continuous`` (a ``Once`` request is
  accepted and forgotten); targets offered are ``Pxe``, ``Cd``, ``Hdd``, ``UefiHttp`` (no
  ``BiosSetup``); the default target is ``Hdd`` and the default mode ``UEFI``.
- TLS is TLS 1.2 only (``ssl.PROTOCOL_TLSv1_2`` in sushy-emulator).
- ``/redfish/v1`` itself needs no authentication; everything below it does.
- Not the emulator but worth knowing: the sushy client retries a refused or timed-out
  connection ``server_side_retries`` times ``server_side_retries_delay`` apart, 10 x 3 s by
  default, so an endpoint that is down costs a default ``sushy.Sushy()`` ~27 s to give up on.
- The environment variable for the fake driver is ignored: ``SUSHY_EMULATOR_FAKE_DRIVER = True``
  is written into the config file and ``--fake`` is passed as well.
- BIOS: the fake driver has none (``/BIOS`` answers 501). ``bios=True`` starts the same emulator
  through ``tests/support/sushy_emulator_bios.py``, which gives its fake driver the libvirt
  driver's BIOS settings and refuses what the emulator's own attribute registry forbids.
- RAID: ``raid=True`` gives each system a storage ``1`` of ``RAID_DRIVES`` (the emulator's
  static storage and drives) and starts it through ``tests/support/sushy_emulator_raid.py``,
  whose fake driver creates and deletes volumes (the emulator itself only lists them).
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.aio import free_port, write_htpasswd
from tests.support.procfs import stop_process
from tests.support.throwaway_ca import create_ca, issue_server_certificate

SUSHY_EMULATOR = Path(sys.executable).parent / "sushy-emulator"
REPO = Path(__file__).resolve().parents[2]
SYSTEMS_PATH = "/redfish/v1/Systems"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.1
PORT_ATTEMPTS = 3
# The drives of each system's storage 1 with raid=True: 4 SAS disks of 100 GiB.
RAID_DRIVES = [{"Id": f"disk{n}", "Name": f"Disk {n}", "CapacityBytes": 100 * 1024 ** 3,
                "Protocol": "SAS"} for n in range(4)]
# Locally administered MAC prefix for the fake systems' NICs.
MAC_PREFIX = (0x52, 0x54, 0x00)


class EmulatorError(RuntimeError):
    """sushy-emulator did not start or did not answer; the message names its log file."""


@dataclass(frozen=True)
class FakeSystem:
    uuid: str
    name: str
    power_state: str  # "On" or "Off", as Redfish spells it
    mac: str

    def config_entry(self) -> dict[str, object]:
        return {"uuid": self.uuid, "name": self.name, "power_state": self.power_state,
                "external_notifier": False, "nics": [{"mac": self.mac}]}


def fake_systems(count: int, power_state: str = "Off",
                 name_prefix: str = "node") -> list[FakeSystem]:
    """``count`` systems with fresh UUIDs and distinct MAC addresses (52:54:00:xx:xx:xx)."""
    if power_state not in ("On", "Off"):
        raise ValueError(f"power_state must be 'On' or 'Off', not {power_state!r}")
    if not 0 < count < 1 << 24:
        raise ValueError("count must be between 1 and 2**24 - 1")
    systems = []
    for index in range(count):
        octets = (*MAC_PREFIX, (index >> 16) & 0xFF, (index >> 8) & 0xFF, index & 0xFF)
        systems.append(FakeSystem(uuid=str(uuid.uuid4()), name=f"{name_prefix}-{index}",
                                  power_state=power_state,
                                  mac=":".join(f"{octet:02x}" for octet in octets)))
    return systems


class RedfishEmulator:
    """One sushy-emulator process. Use as a context manager, or ``start()``/``close()``."""

    def __init__(self, workdir: Path, systems: list[FakeSystem], users: dict[str, str],
                 *, tls: bool = False, host: str = "127.0.0.1", bios: bool = False,
                 raid: bool = False) -> None:
        if not users:
            raise ValueError("at least one user is needed (HTTP basic authentication)")
        if not SUSHY_EMULATOR.exists():
            raise EmulatorError(f"{SUSHY_EMULATOR} is missing: run `make venv` "
                                "(sushy-tools is a test dependency)")
        self.workdir = workdir
        self.systems = list(systems)
        self.users = dict(users)
        self.host = host
        self.tls = tls
        self.bios = bios
        self.raid = raid
        self.port = 0
        self.ca_file: Path | None = None
        self.log_file = workdir / "sushy-emulator.log"
        self._config_file = workdir / "emulator.conf"
        self._state_dir = workdir / "state"
        self._process: subprocess.Popen[bytes] | None = None
        self._frozen = False
        workdir.mkdir(parents=True, exist_ok=True)
        self._auth_file = write_htpasswd(workdir / "htpasswd", self.users)
        self._cert_file: Path | None = None
        self._key_file: Path | None = None
        if tls:
            ca = create_ca(workdir / "ca", name=f"Redfish test CA {uuid.uuid4().hex[:8]}")
            server = issue_server_certificate(ca, workdir / "tls", hosts=(host, "localhost"))
            self.ca_file, self._cert_file, self._key_file = (
                ca.cert_file, server.cert_file, server.key_file)

    # --- what clients need ----------------------------------------------------------------

    @property
    def address(self) -> str:
        """Base URL, e.g. ``https://127.0.0.1:PORT`` (what Ironic calls redfish_address)."""
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def system_ids(self) -> list[str]:
        return [system.uuid for system in self.systems]

    def system_path(self, system_id: str) -> str:
        """``/redfish/v1/Systems/<id>`` (what Ironic calls redfish_system_id)."""
        return f"{SYSTEMS_PATH}/{system_id}"

    @property
    def credentials(self) -> tuple[str, str]:
        """The first user's name and password."""
        return next(iter(self.users.items()))

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start (or restart, on the same port and state) and wait until it answers."""
        if self.running:
            return
        if self.port:
            self._launch()
            return
        for attempt in range(PORT_ATTEMPTS):
            self.port = free_port()
            try:
                self._launch()
                return
            except EmulatorError:
                # Another process may have taken the free port in between; try another one.
                if attempt == PORT_ATTEMPTS - 1 or "Address already in use" not in self._log_tail():
                    raise

    def stop(self) -> None:
        """Stop the process (by PID): connections are refused until ``start()``."""
        process, self._process = self._process, None
        if process is None:
            return
        if self._frozen:
            self._signal(process, signal.SIGCONT)
            self._frozen = False
        stop_process(process, STOP_TIMEOUT_S)

    def freeze(self) -> None:
        """Stop answering while keeping the port open (SIGSTOP): clients time out."""
        if not self.running or self._process is None:
            raise EmulatorError("the emulator is not running")
        self._signal(self._process, signal.SIGSTOP)
        self._frozen = True

    def thaw(self) -> None:
        """Answer again after ``freeze()`` (SIGCONT)."""
        if self._process is not None and self._frozen:
            self._signal(self._process, signal.SIGCONT)
            self._frozen = False

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> RedfishEmulator:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- internals ------------------------------------------------------------------------

    @staticmethod
    def _signal(process: subprocess.Popen[bytes], signum: int) -> None:
        if process.poll() is None:
            os.kill(process.pid, signum)

    def _write_config(self) -> None:
        settings: dict[str, object] = {
            "SUSHY_EMULATOR_FAKE_DRIVER": True,
            "SUSHY_EMULATOR_LISTEN_IP": self.host,
            "SUSHY_EMULATOR_LISTEN_PORT": self.port,
            "SUSHY_EMULATOR_STATE_DIR": str(self._state_dir),
            "SUSHY_EMULATOR_AUTH_FILE": str(self._auth_file),
            "SUSHY_EMULATOR_FAKE_SYSTEMS": [system.config_entry() for system in self.systems],
        }
        if self.raid:
            settings.update(_raid_storage(self.systems))
        if self.tls:
            settings["SUSHY_EMULATOR_SSL_CERT"] = str(self._cert_file)
            settings["SUSHY_EMULATOR_SSL_KEY"] = str(self._key_file)
        # The config file is Python (Flask's from_pyfile): repr() writes valid literals.
        self._config_file.write_text("".join(f"{key} = {value!r}\n"
                                             for key, value in settings.items()))

    def _launch(self) -> None:
        self._write_config()
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("SUSHY_EMULATOR_")}
        patched = "raid" if self.raid else "bios" if self.bios else None
        program = ([sys.executable, "-m", f"tests.support.sushy_emulator_{patched}"] if patched
                   else [str(SUSHY_EMULATOR)])
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [*program, "--config", str(self._config_file), "--fake"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                cwd=REPO)
        try:
            self._wait_until_answering()
        except BaseException:
            self.stop()
            raise

    def _log_tail(self, size: int = 2000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def _wait_until_answering(self) -> None:
        """Root answers, then the systems collection (first use builds the fake driver)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        verify: ssl.SSLContext | bool = True
        if self.ca_file is not None:
            verify = ssl.create_default_context(cafile=str(self.ca_file))
        with httpx.Client(verify=verify, auth=self.credentials, timeout=5.0) as client:
            while True:
                if self._process is None or self._process.poll() is not None:
                    raise EmulatorError(f"sushy-emulator exited during start, see {self.log_file}:"
                                        f"\n{self._log_tail()}")
                try:
                    answer = client.get(f"{self.address}{SYSTEMS_PATH}")
                    if answer.status_code == 200:
                        members = answer.json().get("Members@odata.count")
                        if members != len(self.systems):
                            raise EmulatorError(f"sushy-emulator serves {members} systems, "
                                                f"expected {len(self.systems)}")
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise EmulatorError(f"sushy-emulator did not answer within {START_TIMEOUT_S}"
                                        f" s, see {self.log_file}")
                time.sleep(POLL_INTERVAL_S)


def _raid_storage(systems: list[FakeSystem]) -> dict[str, object]:
    """sushy-emulator's storage, drives and (empty) volumes of each system's storage 1."""
    controller = {"MemberId": "0", "Name": "RAID controller", "SpeedGbps": 12}
    return {
        "SUSHY_EMULATOR_STORAGE": {s.uuid: [{
            "Id": "1", "Name": "Local storage", "StorageControllers": [controller],
            "Drives": [drive["Id"] for drive in RAID_DRIVES]}] for s in systems},
        "SUSHY_EMULATOR_DRIVES": {(s.uuid, "1"): RAID_DRIVES for s in systems},
        "SUSHY_EMULATOR_VOLUMES": {(s.uuid, "1"): [] for s in systems},
    }


@contextmanager
def running_redfish_emulator(workdir: Path, systems: list[FakeSystem], users: dict[str, str],
                             *, tls: bool = False) -> Iterator[RedfishEmulator]:
    """A started emulator, stopped (by PID) on exit, also when the body fails."""
    with RedfishEmulator(workdir, systems, users, tls=tls) as emulator:
        yield emulator
