"""One emulated BMC's IPMI: its datagrams sorted into RMCP+ sessions, the chassis and
boot-option commands mapped onto a ``Machine``. ``BmcFleet`` (tests/support/ipmi_fleet.py) owns
its socket and hands it each datagram.

Sessions are kept by client address *and* the session id this BMC gave, as a real BMC: a client
whose open session request was answered late opens another one (pyghmi does, with a new id) and
may then go on with the first; its RAKP 1 names the first, and answering it with the newest
session's ids made pyghmi read the RAKP 2 as "Incorrect password provided" (seen once in a loaded
CI run).

Why not pyghmi's own server loop: ``IpmiServer.__init__`` registers its socket with pyghmi's
process-wide IO thread, whose packets are then handled by whichever thread calls
``Session.wait_for_rsp`` -- including the threads of a pyghmi *client* in the same process (the
driver under test). The fleet owns its sockets and its loop instead, and keeps pyghmi's global
session table free of server sessions.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from pyghmi.ipmi import bmc as pyghmi_bmc
from pyghmi.ipmi.private import constants as ipmi_constants
from pyghmi.ipmi.private import session as ipmi_session

from tests.support.ipmi_machine import BOOT_DEVICE_CODES, BootSetting, Machine, MachineStateError
from tests.support.ipmi_session import EmulatedSession

# IPMI completion codes (IPMI 2.0 table 5-2).
CC_OK = 0x00
CC_PARAMETER_NOT_SUPPORTED = 0x80
CC_INVALID_DATA = 0xCC
CC_NOT_IN_PRESENT_STATE = 0xD5

# Boot flags parameter (Get/Set System Boot Options, parameter 5), IPMI 2.0 table 28-14.
BOOT_FLAGS_PARAMETER = 5
BOOT_FLAG_VALID = 0x80
BOOT_FLAG_PERSISTENT = 0x40
BOOT_FLAG_EFI = 0x20
# Parameters a client writes around the boot flags (set in progress, valid-bit clearing, boot
# info acknowledge): accepted and ignored, as most BMCs do.
BOOT_PARAMETERS_ACCEPTED = (0, 3, 4)
# Boot device selector (bits 5:2 of the second data byte) by Ironic's device names.
BOOT_DEVICES_BY_CODE = {code: name for name, code in BOOT_DEVICE_CODES.items()}

# A session unused this long is forgotten (pyghmi clients send a keepalive every ~25 s).
SESSION_IDLE_TIMEOUT_S = 60.0


class EmulatedBmc(pyghmi_bmc.Bmc):
    """One BMC: IPMI chassis and boot-option commands mapped onto a ``Machine``."""

    def __init__(self, machine: Machine, sock: socket.socket, users: dict[str, str],
                 kg: bytes | None = None) -> None:
        # IpmiServer.__init__ is deliberately not called: it hands the socket to pyghmi's
        # process-wide IO thread (see the module docstring). These are the attributes it sets.
        self.revision = 0
        self.deviceid = 0
        self.firmwaremajor = 1
        self.firmwareminor = 0
        self.ipmiversion = 2
        self.additionaldevices = 0
        self.mfgid = 0
        self.prodid = 0
        self.uuid = uuid.uuid4()
        self.authdata = users
        ipmi2_only, lan_channel, auth_status, ipmi2_capable = 0b10000000, 1, 0b00000100, 0b10
        self.authcap = bytes([0, lan_channel, ipmi2_only, auth_status, ipmi2_capable, 0, 0, 0, 0])
        self.kg = kg
        self.timeout = SESSION_IDLE_TIMEOUT_S
        self.serversocket = sock
        self.port = sock.getsockname()[1]
        self.machine = machine
        # (client address, this BMC's session id) -> (session, last datagram seen)
        self.sessions: dict[tuple[Any, bytes], tuple[EmulatedSession, float]] = {}

    # --- datagrams -------------------------------------------------------------------------

    def handle_datagram(self, data: bytes, address: Any) -> None:
        if len(data) < 6 or data[0] != 6 or data[2:4] != b"\xff\x07":
            return  # not RMCP/IPMI
        packet = bytearray(data)
        if packet[4] != 6:
            self.sessionless_data(packet, address)  # IPMI 1.5 framing: never inside a session
            return
        payload_type = packet[5] & 0x3F
        if payload_type == ipmi_constants.payload_types["rmcpplusopenreq"]:
            if len(packet) >= 16 + 8:
                self._open_session(packet, address)
            return
        if payload_type == ipmi_constants.payload_types["ipmi"] and packet[6:10] == bytes(4):
            self.sessionless_data(packet, address)
            return
        key = self._session_key(address, payload_type, packet)
        known = self.sessions.get(key) if key is not None else None
        if key is None or known is None:
            return  # RAKP or session traffic of a session this BMC does not know (any more)
        session = known[0]
        self.sessions[key] = (session, time.monotonic())
        session._handle_ipmi_packet(packet, sockaddr=address)

    def _session_key(self, address: Any, payload_type: int,
                     packet: bytearray) -> tuple[Any, bytes] | None:
        """The session a datagram is for, by the id this BMC gave it: RAKP 1 and 3 name it in
        their payload (the header's is still 0), session traffic in the header. A RAKP naming
        no session of this client goes to its newest one (whose checks then answer it)."""
        if payload_type not in (ipmi_constants.payload_types["rakp1"],
                                ipmi_constants.payload_types["rakp3"]):
            return (address, bytes(packet[6:10]))
        named = (address, bytes(packet[16 + 4:16 + 8]))
        if named in self.sessions:
            return named
        return next((key for key in reversed(self.sessions) if key[0] == address), None)

    def _open_session(self, packet: bytearray, address: Any) -> None:
        session = EmulatedSession(self.authdata, self.kg, address, self.serversocket,
                                   packet[16:], self.uuid, bmc=self)
        # ServerSession registers itself in pyghmi's process-wide table; this BMC keeps its own.
        handlers = ipmi_session.Session.bmc_handlers.get(address)
        if handlers is not None:
            handlers.pop(self.port, None)
            if not handlers:
                ipmi_session.Session.bmc_handlers.pop(address, None)
        if not session.refused:
            # By the session id this BMC gave it, as a real BMC: a client that retried its
            # open request (or two clients on one UDP port) has several sessions here, and a
            # late RAKP 1 for the first must get the first one's keys, not the newest one's.
            self.sessions[(address, bytes(session.managedsessionid))] = (
                session, time.monotonic())

    def forget_session(self, session: EmulatedSession) -> None:
        self.sessions.pop((session.sockaddr, bytes(session.managedsessionid)), None)

    def forget_idle_sessions(self, now: float) -> None:
        for key, (_, last_seen) in list(self.sessions.items()):
            if now - last_seen > SESSION_IDLE_TIMEOUT_S:
                del self.sessions[key]

    # --- chassis ---------------------------------------------------------------------------

    def _machine_call(self, action: Callable[[], None]) -> int:
        try:
            action()
        except MachineStateError:
            return CC_NOT_IN_PRESENT_STATE
        return CC_OK

    def get_system_guid(self) -> uuid.UUID:
        return self.uuid

    def get_power_state(self) -> str:
        return self.machine.power_state()

    def power_on(self) -> int:
        return self._machine_call(self.machine.power_on)

    def power_off(self) -> int:
        return self._machine_call(self.machine.power_off)

    def power_reset(self) -> int:
        return self._machine_call(self.machine.power_reset)

    def power_cycle(self) -> int:
        return self._machine_call(self.machine.power_cycle)

    def power_shutdown(self) -> int:
        return self._machine_call(self.machine.soft_shutdown)

    # --- boot options ----------------------------------------------------------------------

    def get_system_boot_options(self, request: dict[str, Any], session: Any) -> None:
        data = request["data"]
        if not data or data[0] & 0x7F != BOOT_FLAGS_PARAMETER:
            session.send_ipmi_response(code=CC_PARAMETER_NOT_SUPPORTED)
            return
        setting = self.machine.boot_setting()
        flags, device = 0, 0
        if setting.device is not None:
            flags = BOOT_FLAG_VALID
            flags |= BOOT_FLAG_PERSISTENT if setting.persistent else 0
            flags |= BOOT_FLAG_EFI if setting.uefi else 0
            device = BOOT_DEVICE_CODES[setting.device] << 2
        parameter_version = 1
        session.send_ipmi_response(
            data=[parameter_version, BOOT_FLAGS_PARAMETER, flags, device, 0, 0, 0])

    def set_system_boot_options(self, request: dict[str, Any], session: Any) -> None:
        data = request["data"]
        parameter = data[0] & 0x7F if data else None
        if parameter in BOOT_PARAMETERS_ACCEPTED:
            session.send_ipmi_response()
            return
        if parameter != BOOT_FLAGS_PARAMETER:
            session.send_ipmi_response(code=CC_PARAMETER_NOT_SUPPORTED)
            return
        if len(data) < 3:
            session.send_ipmi_response(code=CC_INVALID_DATA)
            return
        flags, code = data[1], (data[2] >> 2) & 0x0F
        if not flags & BOOT_FLAG_VALID or code == 0:
            self.machine.set_boot_setting(BootSetting())
            session.send_ipmi_response()
            return
        device = BOOT_DEVICES_BY_CODE.get(code)
        if device is None:
            session.send_ipmi_response(code=CC_INVALID_DATA)
            return
        persistent, uefi = bool(flags & BOOT_FLAG_PERSISTENT), bool(flags & BOOT_FLAG_EFI)
        self.machine.set_boot_setting(BootSetting(device, persistent=persistent, uefi=uefi))
        session.send_ipmi_response()


