"""The vde switch driver against a real vde_switch: it moves ports between VLANs through the
management socket, and two namespace hosts reach each other exactly when their ports share a
VLAN. The lab harness starts the switch and the hosts; the driver under test is the service's
own socket client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.drivers.network.batching import SwitchBatcher
from services.drivers.network.switches.base import PortVlan, SwitchError
from services.drivers.network.switches.vde import VdeManagement, VdeSwitchDriver
from tests.lab.harness import Lab, NetnsHost, VdeSwitch

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TIMEOUT_S = 5.0


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with Lab(tmp_path / "lab") as lab:
        yield lab


def test_ports_move_between_vlans_and_only_hosts_on_one_vlan_reach_each_other(lab: Lab) -> None:
    switch = lab.switch()
    first = lab.host("first", switch, "10.78.0.1/24")
    second = lab.host("second", switch, "10.78.0.2/24")
    driver = VdeSwitchDriver("lab", switch.management_socket, TIMEOUT_S)
    assert first.pings(second.ipv4, timeout_s=10)

    driver.set_access_vlans([PortVlan(str(second.port), 200)])  # VLAN 200 is made on the way
    assert switch.port_status(second.port) == (200, True)  # as the harness's own client reads
    assert driver.management.port_status(second.port) == (200, True)
    assert not first.pings(second.ipv4)

    driver.set_access_vlans([PortVlan(str(first.port), 200), PortVlan(str(second.port), 200)])
    assert first.pings(second.ipv4, timeout_s=10)

    driver.set_access_vlans([PortVlan(str(first.port), 100)])
    assert switch.port_status(first.port) == (100, True)
    assert not second.pings(first.ipv4)


def test_batched_requests_share_one_management_session(lab: Lab) -> None:
    switch = lab.switch()
    hosts: list[NetnsHost] = [lab.host(f"h{i}", switch, f"10.79.0.{i + 1}/24") for i in range(3)]
    batcher = SwitchBatcher(VdeSwitchDriver("lab", switch.management_socket, TIMEOUT_S), 0.0)
    batcher.apply([PortVlan(str(h.port), 300) for h in hosts])
    assert batcher.sessions == 1
    assert [switch.port_status(h.port)[0] for h in hosts] == [300, 300, 300]
    assert hosts[0].pings(hosts[2].ipv4, timeout_s=10)


def test_a_port_that_does_not_exist_and_a_missing_switch_are_clear_errors(
        lab: Lab, tmp_path: Path) -> None:
    switch: VdeSwitch = lab.switch()
    driver = VdeSwitchDriver("lab", switch.management_socket, TIMEOUT_S)
    with pytest.raises(SwitchError, match=r"vde switch lab has no port 30 .*port/create"):
        driver.set_access_vlans([PortVlan("30", 100)])
    with pytest.raises(SwitchError, match=r"vde switch lab: `vlan/create 5000` failed: "
                                          r"1022 Invalid argument"):
        driver.set_access_vlans([PortVlan("31", 5000)])

    gone = VdeSwitchDriver("gone", tmp_path / "no-such-socket", TIMEOUT_S)
    with pytest.raises(SwitchError, match=r"vde switch gone: cannot connect to its management "
                                          r"socket .*no-such-socket"):
        gone.set_access_vlans([PortVlan("1", 100)])


def test_the_management_client_reads_data_answers(lab: Lab) -> None:
    switch = lab.switch()
    management = VdeManagement(switch.management_socket, TIMEOUT_S)
    port = switch.create_port(0)
    with management.session() as session:
        management.create_vlan(session, 42)
        management.create_vlan(session, 42)  # exists already: fine
        session.command(f"port/setvlan {port} 42")
        assert session.command("vlan/print 42").splitlines()[0] == "VLAN 0042"
    assert management.port_status(port) == (42, False)
