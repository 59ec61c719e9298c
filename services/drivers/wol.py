"""The ``wol`` power interface, for machines without a BMC (classroom PCs).

- power on: a magic packet (6 x 0xFF, then the MAC 16 times, then the optional SecureOn password)
  for every MAC of the node, over UDP to ``wol_host`` (a broadcast or subnet-directed broadcast
  address) and ``wol_port``;
  (``wol_host`` in driver_info, else the PC's room's directed broadcast address, else
  ENCLUME_WOL_DEFAULT_HOST); or, with ENCLUME_WOL_VIA_BOOT_SERVICE and neither of the first
  two, sent by the boot service out of its provisioning interface (``POST <boot URL>/wake``);
- power off and reboot: through the agent when one runs on the machine (the deploy ramdisk);
  a power off returns once the agent no longer answers (the machine is off and can be woken).
  Else through the session service of the deployed OS when it reports up (power-off, and
  reboot-to-network so that the boot service decides what the machine boots). Without either,
  power off cannot be done and says so (``ManualActionRequired``: the conductor records that a
  person has to do it); reboot wakes the machine and warns that one that was already on did
  not reboot;
- power state: on while the agent or the session service heartbeats, off once the session
  service took a power-off and fell silent, otherwise unknown (None). Wake-on-LAN never learns
  whether a machine is on, and Enclume does not pretend to know.
"""

from __future__ import annotations

import ipaddress
import time
from typing import TYPE_CHECKING, Any

import httpx

from services.classroom.rooms import wol_address
from services.common import session_service
from services.common.config import Settings
from services.common.wake_on_lan import MAC, PASSWORD, SECRET_HEADER, magic_packet, send
from services.drivers import agent_client, driver_info, session_commands
from services.drivers.base import (
    POWER_OFF,
    POWER_ON,
    SOFT_POWER_OFF,
    DriverError,
    ManualActionRequired,
    PowerInterface,
)

if TYPE_CHECKING:
    from services.conductor.task import Task

# Powering off through the agent: how long a probe of its command API waits for an answer,
# and how often it is probed until none comes.
AGENT_GONE_PROBE_TIMEOUT_S = 2.0
AGENT_GONE_POLL_S = 0.5
BOOT_SERVICE_TIMEOUT_S = 10.0


def _target(info: dict[str, Any], settings: Settings, room_host: str | None = None
            ) -> tuple[str, int, str | None]:
    host = driver_info.text(info, "wol_host", room_host or settings.wol.default_host)
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        raise driver_info.InvalidParameter(
            f"wol_host must be an IPv4 (broadcast) address, not {host!r}.") from None
    port = driver_info.port_number(info, "wol_port", settings.wol.default_port)
    password = driver_info.text(info, "wol_password") or None
    if password is not None and not PASSWORD.fullmatch(password.lower()):
        raise driver_info.InvalidParameter(
            "wol_password (SecureOn) must be 4 or 6 bytes written like a MAC address, "
            "e.g. 01:02:03:04:05:06.")
    return host, port, password


class WolPower(PowerInterface):
    # A magic packet is not acknowledged: the conductor reads the power state back after a
    # change instead of assuming the target was reached.
    confirms_power_changes = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _macs(self, task: Task) -> list[str]:
        macs = [port.address for port in task.node.ports if port.address]
        if not macs:
            raise DriverError(f"node {task.node.uuid} has no port with a MAC address to wake")
        return macs

    def _node_target(self, task: Task) -> tuple[str, int, str | None]:
        room_host = wol_address(task.session, task.node.id)
        return _target(task.node.driver_info, self.settings, room_host)

    def validate(self, task: Task) -> None:
        self._node_target(task)
        for mac in self._macs(task):
            if not MAC.fullmatch(mac.lower()):
                raise DriverError(f"port MAC {mac!r} of node {task.node.uuid} is malformed")

    def get_power_state(self, task: Task) -> str | None:
        if agent_client.is_alive(task.node, self.settings.deploy.agent_heartbeat_timeout_s):
            return POWER_ON
        return {session_service.UP: POWER_ON, session_service.OFF: POWER_OFF}.get(
            session_commands.state(task, self.settings) or "")

    def _wake(self, task: Task) -> None:
        room_host = wol_address(task.session, task.node.id)
        host, port, password = _target(task.node.driver_info, self.settings, room_host)
        macs = self._macs(task)
        packets = [magic_packet(mac, password) for mac in macs]
        row = session_service.find(task.session, task.node.id)
        if row is not None:
            session_service.forget_state(row)
        if self.settings.wol.via_boot_service and room_host is None and not (
                task.node.driver_info.get("wol_host")):
            where = self._through_boot_service(macs, password, port)
            task.record("power", f"The boot service sent {len(packets)} Wake-on-LAN magic "
                                 f"packet(s) to {where}.")
            return
        send(packets, host, port)
        task.record("power", f"Sent {len(packets)} Wake-on-LAN magic packet(s) to {host}:{port}.")

    def _through_boot_service(self, macs: list[str], password: str | None, port: int) -> str:
        """Have the boot service send the packets out of its provisioning interface (the PCs'
        own network when the conductor is on another one); where they went."""
        url = f"{self.settings.effective_boot_url}/wake"
        secret = self.settings.rpc_shared_secret()
        try:
            answer = httpx.post(url, json={"macs": macs, "password": password, "port": port},
                                headers={SECRET_HEADER: secret} if secret else {},
                                timeout=BOOT_SERVICE_TIMEOUT_S)
        except httpx.HTTPError as exc:
            raise DriverError(f"the boot service at {url} could not be asked to send the "
                              f"magic packet: {exc}") from None
        if answer.status_code != 200:
            raise DriverError(f"the boot service at {url} did not send the magic packet "
                              f"(HTTP {answer.status_code}): {answer.text[:300]}")
        return str(answer.json().get("sent_to"))

    def _through_agent(self, task: Task, command: str) -> None:
        if not agent_client.is_alive(task.node, self.settings.deploy.agent_heartbeat_timeout_s):
            raise ManualActionRequired(
                f"Wake-on-LAN cannot power off node {task.node.uuid}: no agent runs on it; "
                f"switch it off by hand")
        agent_client.run_command(task.node, command, {},
                                 self.settings.deploy.agent_command_timeout_s)
        if command == "standby.power_off":
            self._wait_until_off(task)
        # The agent goes away with the machine: its power state is unknown from now on.
        task.pop_internal_info(agent_client.AGENT_LAST_HEARTBEAT, agent_client.AGENT_URL)

    def _wait_until_off(self, task: Task) -> None:
        """Return once the agent stops answering: the agent powers the machine off a moment
        after it answered, and a NIC ignores magic packets while its machine is still on, so
        waking the machine right away (the next boot of a deploy) would be lost."""
        deadline = time.monotonic() + self.settings.deploy.agent_command_timeout_s
        while time.monotonic() < deadline:
            try:
                agent_client.list_commands(task.node, AGENT_GONE_PROBE_TIMEOUT_S)
            except agent_client.AgentUnavailable:
                return
            time.sleep(AGENT_GONE_POLL_S)
        raise DriverError(f"the agent of node {task.node.uuid} still answers "
                          f"{self.settings.deploy.agent_command_timeout_s:.0f} s after it was "
                          f"asked to power the machine off")

    def set_power_state(self, task: Task, state: str) -> None:
        if state == POWER_ON:
            self._wake(task)
        elif state in (POWER_OFF, SOFT_POWER_OFF):
            if agent_client.is_alive(task.node, self.settings.deploy.agent_heartbeat_timeout_s):
                self._through_agent(task, "standby.power_off")
                return
            try:
                session_commands.run(task, self.settings, session_service.POWER_OFF)
            except ManualActionRequired as exc:
                raise ManualActionRequired(
                    f"Wake-on-LAN cannot power off node {task.node.uuid}: {exc}, and no agent "
                    f"runs on it; switch it off by hand") from None
        else:
            raise DriverError(f"Wake-on-LAN cannot set the power state {state!r}")

    def reaches_node_in_band(self, task: Task) -> bool:
        """A deployed OS reached only through its session service (no agent runs)."""
        return not agent_client.is_alive(
            task.node, self.settings.deploy.agent_heartbeat_timeout_s) and session_commands.state(
            task, self.settings) == session_service.UP

    def reboot(self, task: Task) -> None:
        """Through the agent, else the session service (reboot to the network); else wake the
        machine, which is all a magic packet can do."""
        if agent_client.is_alive(task.node, self.settings.deploy.agent_heartbeat_timeout_s):
            self._through_agent(task, "standby.reboot")
            return
        service = session_commands.state(task, self.settings)
        if service == session_service.OFF:  # its session service powered it off
            self._wake(task)
            return
        if service == session_service.UP:
            try:
                session_commands.run(task, self.settings, session_service.REBOOT_TO_NETWORK)
                return
            except ManualActionRequired:
                pass  # it fell silent: perhaps off, which a magic packet mends
        self._wake(task)
        task.record("power", f"No agent runs on the node and {session_commands.UNREACHED}: "
                             "it was woken, but if it was already on it did not reboot; reboot "
                             "it by hand if it does not come up.", severity="WARNING")
