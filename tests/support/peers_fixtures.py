"""pytest fixtures for the real protocol peers of the power drivers (IPMI, Redfish, WoL).

Import the ones you need into a conftest.py or a test module::

    from tests.support.peers_fixtures import ipmi_fleet, redfish_emulator  # noqa: F401

All are function-scoped: each test gets fresh peers (an IPMI fleet starts in milliseconds,
sushy-emulator in ~0.4 s, a WoL namespace in ~0.1 s), so no state leaks between tests -- which
matters for sushy-emulator, whose power changes land up to 11 s after the request.

- ``ipmi_fleet`` -> ``IpmiPeers``: ``IPMI_FLEET_SIZE`` BMCs on 127.0.0.1 (``.bmcs`` is a list of
  ``(port, MemoryMachine)``), ``.fleet`` for more BMCs (``.fleet.start(n)``) and faults
  (``set_down``, ``set_slow``, ``set_password``, ``restore``), ``.driver_info(port)``.
- ``redfish_emulator`` / ``redfish_emulator_tls`` -> ``RedfishPeers``: sushy-emulator with
  ``REDFISH_SYSTEMS`` fake systems, all off, behind HTTP basic auth (TLS with a per-emulator CA
  for the second: ``.emulator.ca_file``), ``.driver_info(system_id)``.
- ``make_redfish_emulator(systems, tls=False)`` -> ``RedfishPeers``: any other set of systems
  (e.g. ``fake_systems(500)``), stopped at the end of the test.
- ``wol_listener`` -> ``WolListener``: a namespace + veth pair with a listener on UDP port 9;
  send to ``.broadcast`` (with SO_BROADCAST) or ``.address``, then ``.wait_for_magic(mac)``.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.ipmi_bmc import BmcFleet, Machine
from tests.support.redfish_emulator import FakeSystem, RedfishEmulator, fake_systems
from tests.support.wol_listener import WolListener, running_wol_listener

IPMI_FLEET_SIZE = 2
IPMI_USERNAME = "admin"
REDFISH_SYSTEMS = 2
REDFISH_USERNAME = "redfish"


@dataclass
class IpmiPeers:
    fleet: BmcFleet
    username: str
    password: str
    bmcs: list[tuple[int, Machine]]

    def driver_info(self, port: int) -> dict[str, Any]:
        """Ironic-style driver_info for the BMC on ``port``."""
        return {"ipmi_address": self.fleet.host, "ipmi_port": port,
                "ipmi_username": self.username, "ipmi_password": self.password}


@dataclass
class RedfishPeers:
    emulator: RedfishEmulator
    username: str
    password: str

    def driver_info(self, system_id: str) -> dict[str, Any]:
        """Ironic-style driver_info for one system (verify_ca: the emulator's CA file)."""
        info: dict[str, Any] = {
            "redfish_address": self.emulator.address,
            "redfish_system_id": self.emulator.system_path(system_id),
            "redfish_username": self.username, "redfish_password": self.password}
        if self.emulator.ca_file is not None:
            info["redfish_verify_ca"] = str(self.emulator.ca_file)
        return info


def _require_root_and_ip() -> None:
    if os.geteuid() != 0:
        pytest.fail("the WoL listener needs root (network namespaces)")
    if shutil.which("ip") is None:
        pytest.fail("the `ip` command (iproute2) is missing: run `make deps`")


@pytest.fixture
def ipmi_fleet() -> Iterator[IpmiPeers]:
    """IPMI_FLEET_SIZE emulated BMCs (machines off), one UDP port each, stopped afterwards."""
    password = secrets.token_urlsafe(12)
    with BmcFleet(IPMI_USERNAME, password) as fleet:
        yield IpmiPeers(fleet=fleet, username=IPMI_USERNAME, password=password,
                        bmcs=fleet.start(IPMI_FLEET_SIZE))


@pytest.fixture
def make_redfish_emulator(tmp_path: Path) -> Iterator[Callable[..., RedfishPeers]]:
    """Factory: ``make_redfish_emulator(systems, tls=False, bios=False)`` -> a started
    ``RedfishPeers``."""
    with ExitStack() as stack:
        counter = iter(range(1_000_000))

        def make(systems: list[FakeSystem], tls: bool = False,
                 bios: bool = False) -> RedfishPeers:
            password = secrets.token_urlsafe(12)
            emulator = RedfishEmulator(tmp_path / f"redfish-{next(counter)}", systems,
                                       {REDFISH_USERNAME: password}, tls=tls, bios=bios)
            stack.enter_context(emulator)
            return RedfishPeers(emulator=emulator, username=REDFISH_USERNAME, password=password)

        yield make


@pytest.fixture
def redfish_emulator(make_redfish_emulator: Callable[..., RedfishPeers]) -> RedfishPeers:
    """sushy-emulator over plain HTTP with REDFISH_SYSTEMS systems, all off."""
    return make_redfish_emulator(fake_systems(REDFISH_SYSTEMS))


@pytest.fixture
def redfish_emulator_tls(make_redfish_emulator: Callable[..., RedfishPeers]) -> RedfishPeers:
    """sushy-emulator over HTTPS, certificate signed by its own throw-away CA (ca_file)."""
    return make_redfish_emulator(fake_systems(REDFISH_SYSTEMS), tls=True)


@pytest.fixture
def wol_listener() -> Iterator[WolListener]:
    """A WoL listener on UDP port 9 in its own namespace, reachable at .broadcast/.address."""
    _require_root_and_ip()
    with running_wol_listener() as listener:
        yield listener
