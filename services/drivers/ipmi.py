"""The ``ipmi`` power and management interfaces, on pyghmi (IPMI 2.0, RMCP+ "lanplus").

One pyghmi session per BMC is kept and reused; calls to one BMC are serialised, calls to all BMCs
together are bounded (ENCLUME_IPMI_MAX_CONCURRENCY) and each has a deadline
(ENCLUME_IPMI_TIMEOUT_S). A session that failed is dropped, the next call logs in afresh.
driver_info keys are Ironic's, so inventories written for Ironic or Bifrost work as they are.
"""

from __future__ import annotations

import binascii
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pyghmi import exceptions as pyghmi_exceptions
from pyghmi.ipmi import command as ipmi_command
from pyghmi.ipmi.private import session as pyghmi_session

from services.common.config import Settings
from services.common.secrets import scrub
from services.drivers import driver_info
from services.drivers.base import (
    POWER_OFF,
    POWER_ON,
    SOFT_POWER_OFF,
    DriverError,
    unexpected_error,
)
from services.drivers.blocking import BoundedCalls, CallTimedOut
from services.drivers.bmc import BmcManagement, BmcPower, PowerCommand

if TYPE_CHECKING:
    pass

T = TypeVar("T")

# pyghmi (1.6.19) takes the locks of its two session tables in both orders: its event loop holds
# WAITING_SESSIONS while a timed-out session's _mark_broken takes KEEPALIVE_SESSIONS, and
# send_payload holds KEEPALIVE_SESSIONS while _xmit_packet takes WAITING_SESSIONS. Two threads
# meeting there (one BMC stopped answering, another call sends) deadlock every IPMI call and
# SOL console of the process for good. One reentrant lock for both cannot be taken in two orders.
pyghmi_session.KEEPALIVE_SESSIONS = pyghmi_session.WAITING_SESSIONS

PRIVILEGE_LEVELS = {"CALLBACK": 1, "USER": 2, "OPERATOR": 3, "ADMINISTRATOR": 4}
# Enclume's boot device names -> pyghmi's, and back.
BOOT_DEVICES = {"pxe": "network", "disk": "hd", "cdrom": "optical", "bios": "setup",
                "safe": "safe"}
FROM_PYGHMI = {value: key for key, value in BOOT_DEVICES.items()}
POWER_STATES = {"on": POWER_ON, "off": POWER_OFF}
POWER_COMMANDS = {POWER_ON: PowerCommand("on", POWER_ON, "on"),
                  POWER_OFF: PowerCommand("off", POWER_OFF, "off"),
                  SOFT_POWER_OFF: PowerCommand("shutdown", POWER_OFF, "soft off")}
RESET = PowerCommand("reset", POWER_ON, "reset")
# A BMC forgets a session idle for its inactivity timeout (60 s by default in IPMI 2.0), and
# pyghmi only keeps sessions alive while one of its calls runs. A session not used for this
# long is asked of pyghmi again (a new Command), which logs in anew when it judges the old
# one expired, instead of sending into a session the BMC has dropped (pyghmi would retry for
# ~10 s, then log in again: past a call's deadline on a loaded conductor).
STALE_SESSION_S = 20.0


@dataclass(frozen=True)
class IpmiAccess:
    address: str
    port: int
    username: str
    password: str
    privilege: int
    kg: bytes | None

    @property
    def where(self) -> str:
        return f"{self.address}:{self.port}"


def access_of(info: dict[str, Any]) -> IpmiAccess:
    driver_info.require(info, ["ipmi_address"], "IPMI credentials")
    level = driver_info.text(info, "ipmi_priv_level", "ADMINISTRATOR").upper()
    if level not in PRIVILEGE_LEVELS:
        raise driver_info.InvalidParameter(
            f"ipmi_priv_level must be one of {', '.join(PRIVILEGE_LEVELS)}, not {level!r}.")
    kg_hex = driver_info.text(info, "ipmi_hex_kg_key")
    kg = None
    if kg_hex:
        try:
            kg = binascii.unhexlify(kg_hex)
        except (binascii.Error, ValueError):
            raise driver_info.InvalidParameter(
                "ipmi_hex_kg_key must be an even number of hexadecimal digits.") from None
        if len(kg) > 20:
            raise driver_info.InvalidParameter(
                "ipmi_hex_kg_key must be at most 20 bytes (40 hexadecimal digits).")
    return IpmiAccess(
        address=driver_info.text(info, "ipmi_address"),
        port=driver_info.port_number(info, "ipmi_port", 623),
        username=driver_info.text(info, "ipmi_username"),
        password=driver_info.text(info, "ipmi_password"),
        privilege=PRIVILEGE_LEVELS[level],
        kg=kg,
    )


def terminal_port(info: dict[str, Any]) -> int:
    """The node's ``ipmitool-socat`` console port (0: a free one)."""
    return driver_info.port_number(info, "ipmi_terminal_port", 0)


def _explain(access: IpmiAccess, error: BaseException) -> str:
    message = str(error) or type(error).__name__
    lowered = message.lower()
    if any(word in lowered for word in ("password", "unauthorized", "unknown user",
                                        "authentication", "rakp")):
        return (f"IPMI authentication failed at {access.where} for user {access.username!r}: "
                f"{message} (check ipmi_username, ipmi_password and ipmi_priv_level)")
    return f"IPMI at {access.where} failed: {message}"


class IpmiSessions:
    """Logged-in pyghmi sessions by BMC, shared by the power and management interfaces."""

    def __init__(self, settings: Settings) -> None:
        self.calls = BoundedCalls("ipmi", settings.ipmi.max_concurrency, settings.ipmi.timeout_s)
        self._commands: dict[IpmiAccess, ipmi_command.Command] = {}
        self._used: dict[IpmiAccess, float] = {}  # when each cached Command last served
        self._bmc_locks: dict[IpmiAccess, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock_of(self, access: IpmiAccess) -> threading.Lock:
        with self._guard:
            return self._bmc_locks.setdefault(access, threading.Lock())

    def _command(self, access: IpmiAccess) -> ipmi_command.Command:
        now = time.monotonic()
        command = self._commands.get(access)
        if command is not None and now - self._used.get(access, now) > STALE_SESSION_S:
            command = None
        self._used[access] = now
        if command is None:
            # pyghmi needs bytes credentials to keep several sessions apart in one process.
            command = ipmi_command.Command(
                bmc=access.address, port=access.port, userid=access.username.encode(),
                password=access.password.encode(), privlevel=access.privilege, kg=access.kg)
            self._commands[access] = command
        return command

    def run(self, access: IpmiAccess, what: str, fn: Callable[[ipmi_command.Command], T]) -> T:
        """``fn(command)`` on the BMC's session: one call per BMC at a time, with a deadline.

        The BMC's lock is taken here and released by the pool thread when the call really
        ends, so a BMC that hangs holds at most one pool thread, whatever number of callers.
        """
        label = f"IPMI {what} at {access.where}"
        lock = self._lock_of(access)
        if not lock.acquire(timeout=self.calls.timeout_s):
            raise CallTimedOut(f"{label} did not answer within {self.calls.timeout_s:.0f} s: "
                               f"an earlier call to this BMC has not returned")

        def on_session() -> T:
            try:
                return fn(self._command(access))
            except BaseException:
                self._commands.pop(access, None)
                raise
            finally:
                lock.release()

        try:
            return self.calls.call(label, on_session, on_never_started=lock.release)
        except (CallTimedOut, DriverError):
            raise
        except (pyghmi_exceptions.PyghmiException, OSError) as exc:
            raise DriverError(scrub(_explain(access, exc))) from None
        except Exception as exc:  # pyghmi raises more types than it says (KeyError, ...)
            raise unexpected_error("IPMI", what, access.where, exc) from None


class IpmiBmc:
    """IPMI's part of ``BmcPower`` and ``BmcManagement``: pyghmi's power commands, polled by
    power status; the boot device once or persistent, with the UEFI flag from the node's boot
    mode."""

    name = "IPMI"
    commands = POWER_COMMANDS
    reset = RESET
    devices = BOOT_DEVICES

    def __init__(self, sessions: IpmiSessions) -> None:
        self.sessions = sessions

    def access(self, info: dict[str, Any]) -> IpmiAccess:
        return access_of(info)

    def read(self, access: IpmiAccess) -> str:
        answer = self.sessions.run(access, "power status", lambda c: c.get_power())
        return POWER_STATES.get(str(answer.get("powerstate")), str(answer.get("powerstate")))

    def send(self, access: IpmiAccess, command: PowerCommand) -> None:
        self.sessions.run(access, f"power {command.label}",
                          lambda c: c.set_power(command.request, wait=False))

    def poll(self, access: IpmiAccess) -> str:
        return self.read(access)

    def still(self, access: IpmiAccess, polled: Any, command: PowerCommand,
              timeout_s: float) -> str:
        return (f"IPMI at {access.where}: the machine is still {polled!r} {timeout_s:.0f} s "
                f"after power {command.label}")

    def get_boot_device(self, access: IpmiAccess) -> dict[str, Any]:
        answer = self.sessions.run(access, "get boot device", lambda c: c.get_bootdev())
        device = FROM_PYGHMI.get(str(answer.get("bootdev")))
        return {"boot_device": device, "persistent": answer.get("persistent")}

    def set_boot_device(self, access: IpmiAccess, device: str, persistent: bool,
                        boot_mode: str) -> None:
        uefi = boot_mode == "uefi"
        answer = self.sessions.run(
            access, "set boot device",
            lambda c: c.set_bootdev(BOOT_DEVICES[device], persist=persistent, uefiboot=uefi))
        if isinstance(answer, dict) and answer.get("error"):
            raise DriverError(f"IPMI at {access.where} refused boot device {device}: "
                              f"{answer['error']}")


def ipmi_power(sessions: IpmiSessions, settings: Settings) -> BmcPower:
    return BmcPower(IpmiBmc(sessions), settings)


def ipmi_management(sessions: IpmiSessions, settings: Settings) -> BmcManagement:
    return BmcManagement(IpmiBmc(sessions), settings)
