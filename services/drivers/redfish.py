"""The ``redfish`` power and management interfaces, on sushy.

One sushy connection per (BMC, user, TLS setting) is kept, so its Redfish session is reused; calls
are bounded (ENCLUME_REDFISH_MAX_CONCURRENCY) with a deadline (ENCLUME_REDFISH_TIMEOUT_S). TLS
certificates are verified unless the node says ``redfish_verify_ca: false``; a path there names
the CA bundle of that node's BMC. Without ``redfish_system_id`` the BMC's only system is used.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import sushy
from sushy import exceptions as sushy_exceptions

from services.common.config import Settings
from services.common.secrets import scrub
from services.drivers import driver_info, redfish_media
from services.drivers.base import (
    POWER_OFF,
    POWER_ON,
    SOFT_POWER_OFF,
    SOFT_REBOOT,
    DriverError,
    unexpected_error,
)
from services.drivers.blocking import BoundedCalls, CallTimedOut
from services.drivers.bmc import BmcManagement, BmcPower, PowerCommand

if TYPE_CHECKING:
    from sushy.resources.system.system import System

    from services.conductor.task import Task


T = TypeVar("T")

POWER_STATES = {sushy.PowerState.ON: POWER_ON, sushy.PowerState.OFF: POWER_OFF,
                sushy.PowerState.POWERING_ON: POWER_ON,
                sushy.PowerState.POWERING_OFF: POWER_OFF}
BOOT_DEVICES = {"pxe": sushy.BootSource.PXE, "disk": sushy.BootSource.HDD,
                "cdrom": sushy.BootSource.CD, "bios": sushy.BootSource.BIOS_SETUP,
                "uefi http": sushy.BootSource.UEFI_HTTP}
FROM_SUSHY = {value: key for key, value in BOOT_DEVICES.items()}
BOOT_MODES = {"bios": sushy.BootSourceOverrideMode.LEGACY,
              "uefi": sushy.BootSourceOverrideMode.UEFI}
POWER_COMMANDS = {
    POWER_ON: PowerCommand(sushy.ResetType.ON, sushy.PowerState.ON, "On"),
    POWER_OFF: PowerCommand(sushy.ResetType.FORCE_OFF, sushy.PowerState.OFF, "ForceOff"),
    SOFT_POWER_OFF: PowerCommand(sushy.ResetType.GRACEFUL_SHUTDOWN, sushy.PowerState.OFF,
                                 "GracefulShutdown"),
    SOFT_REBOOT: PowerCommand(sushy.ResetType.GRACEFUL_RESTART, sushy.PowerState.ON,
                              "GracefulRestart"),
}
RESET = PowerCommand(sushy.ResetType.FORCE_RESTART, sushy.PowerState.ON, "ForceRestart")


@dataclass(frozen=True)
class RedfishAccess:
    base_url: str
    system_id: str | None
    username: str
    password: str
    verify: bool | str

    @property
    def where(self) -> str:
        return scrub(self.base_url)  # a redfish_address may carry user:password@


def access_of(info: dict[str, Any]) -> RedfishAccess:
    driver_info.require(info, ["redfish_address"], "Redfish parameters")
    address = driver_info.text(info, "redfish_address").rstrip("/")
    if "://" not in address:
        address = f"https://{address}"
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise driver_info.InvalidParameter(
            f"redfish_address must be an http(s) URL or a host name, not {address!r}.")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise driver_info.InvalidParameter(
            f"redfish_address has an invalid port: {address!r}.") from None
    system_id = driver_info.text(info, "redfish_system_id") or None
    if system_id is not None and not system_id.startswith("/"):
        raise driver_info.InvalidParameter(
            f"redfish_system_id must be the path of a system, such as "
            f"/redfish/v1/Systems/1, not {system_id!r}.")
    return RedfishAccess(
        base_url=f"{parts.scheme}://{parts.netloc}",
        system_id=system_id,
        username=driver_info.text(info, "redfish_username"),
        password=driver_info.text(info, "redfish_password"),
        verify=driver_info.boolean_or_path(info, "redfish_verify_ca", True),
    )


def _explain(access: RedfishAccess, error: BaseException) -> str:
    if isinstance(error, sushy_exceptions.AccessError):
        return (f"Redfish authentication failed at {access.where} for user "
                f"{access.username!r} (check redfish_username and redfish_password)")
    message = str(error) or type(error).__name__
    if "CERTIFICATE_VERIFY_FAILED" in message or "SSLError" in message:
        return (f"Redfish at {access.where}: the BMC's TLS certificate could not be verified "
                f"(set redfish_verify_ca to its CA bundle)")
    return f"Redfish at {access.where} failed: {message}"


class RedfishSessions:
    """sushy connections by BMC and the system path each node's BMC answered for."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.calls = BoundedCalls("redfish", settings.redfish.max_concurrency,
                                  settings.redfish.timeout_s)
        self._connections: dict[tuple[str, str, str, bool | str], sushy.Sushy] = {}
        self._connecting: dict[tuple[str, str, str, bool | str], threading.Lock] = {}
        self._guard = threading.Lock()

    def _connection(self, access: RedfishAccess) -> sushy.Sushy:
        key = (access.base_url, access.username, access.password, access.verify)
        with self._guard:
            connecting = self._connecting.setdefault(key, threading.Lock())
        with connecting:  # one log-in per BMC, however many callers arrive at once
            return self._connections.get(key) or self._connect(key, access)

    def _connect(self, key: tuple[str, str, str, bool | str],
                 access: RedfishAccess) -> sushy.Sushy:
        connection = sushy.Sushy(
            access.base_url, username=access.username or None,
            password=access.password or None, verify=access.verify,
            connect_timeout=self.settings.redfish.timeout_s,
            read_timeout=self.settings.redfish.timeout_s,
            server_side_retries=self.settings.redfish.connect_retries,
            server_side_retries_delay=1)
        with self._guard:
            self._connections[key] = connection
        return connection

    def _forget(self, access: RedfishAccess) -> None:
        with self._guard:
            self._connections.pop(
                (access.base_url, access.username, access.password, access.verify), None)

    def system(self, access: RedfishAccess) -> System:
        connection = self._connection(access)
        if access.system_id:
            return connection.get_system(access.system_id)
        members = connection.get_system_collection().members_identities
        if len(members) != 1:
            raise DriverError(
                f"Redfish at {access.where} manages {len(members)} systems "
                f"({', '.join(sorted(members)) or 'none'}): set redfish_system_id to one of them")
        return connection.get_system(members[0])

    def run(self, access: RedfishAccess, what: str, fn: Callable[[System], T]) -> T:
        return self._call(access, what, lambda: fn(self.system(access)))

    def run_on_service(self, access: RedfishAccess, what: str,
                       fn: Callable[[sushy.Sushy, System], T]) -> T:
        """As ``run``, with the connection too (its services: updates, tasks)."""
        return self._call(access, what,
                          lambda: fn(self._connection(access), self.system(access)))

    def _call(self, access: RedfishAccess, what: str, body: Callable[[], T]) -> T:
        def on_system() -> T:
            try:
                return body()
            except (sushy_exceptions.ConnectionError, sushy_exceptions.AccessError):
                self._forget(access)
                raise

        try:
            return self.calls.call(f"Redfish {what} at {access.where}", on_system)
        except (CallTimedOut, DriverError):
            raise
        except (sushy_exceptions.SushyError, OSError) as exc:
            raise DriverError(scrub(_explain(access, exc))) from None
        except Exception as exc:  # sushy's parsing of an odd BMC answer (KeyError, ...)
            raise unexpected_error("Redfish", what, access.where, exc) from None


class RedfishBmc:
    """Redfish's part of ``BmcPower`` and ``BmcManagement``: system resets, polled by the raw
    power state ("PoweringOn" is not "On" yet); the boot source override, once or continuous,
    in Legacy or UEFI mode from the node's boot mode."""

    name = "Redfish"
    commands = POWER_COMMANDS
    reset = RESET
    devices = BOOT_DEVICES

    def __init__(self, sessions: RedfishSessions) -> None:
        self.sessions = sessions

    def access(self, info: dict[str, Any]) -> RedfishAccess:
        return access_of(info)

    def read(self, access: RedfishAccess) -> str:
        state = self.poll(access)
        return POWER_STATES.get(state, str(state))

    def send(self, access: RedfishAccess, command: PowerCommand) -> None:
        reset = command.request
        self.sessions.run(access, f"reset {reset.value}", lambda s: s.reset_system(reset))

    def poll(self, access: RedfishAccess) -> Any:
        return self.sessions.run(access, "power status", lambda s: s.power_state)

    def still(self, access: RedfishAccess, polled: Any, command: PowerCommand,
              timeout_s: float) -> str:
        still = getattr(polled, "value", polled)
        return (f"Redfish at {access.where}: the system is still {still!r} {timeout_s:.0f} s "
                f"after {command.request.value}")

    def get_boot_device(self, access: RedfishAccess) -> dict[str, Any]:
        def read(system: System) -> dict[str, Any]:
            enabled = system.boot.enabled
            return {"boot_device": FROM_SUSHY.get(system.boot.target),  # type: ignore[arg-type]
                    "persistent": enabled == sushy.BootSourceOverrideEnabled.CONTINUOUS
                    if enabled is not None else None}

        return self.sessions.run(access, "get boot device", read)

    def set_boot_device(self, access: RedfishAccess, device: str, persistent: bool,
                        boot_mode: str) -> None:
        enabled = (sushy.BootSourceOverrideEnabled.CONTINUOUS if persistent
                   else sushy.BootSourceOverrideEnabled.ONCE)
        mode = BOOT_MODES[boot_mode]
        self.sessions.run(
            access, "set boot device",
            lambda system: system.set_system_boot_options(
                target=BOOT_DEVICES[device], enabled=enabled, mode=mode))


def redfish_power(sessions: RedfishSessions, settings: Settings) -> BmcPower:
    return BmcPower(RedfishBmc(sessions), settings)


class RedfishManagement(BmcManagement):
    """The boot source override, and the system's boot mode and UEFI secure boot (API 1.76:
    ``BootSourceOverrideMode``, ``SecureBoot.SecureBootEnable``) and health (1.109)."""

    control: RedfishBmc

    def _run(self, task: Task, what: str, fn: Callable[[System], T]) -> T:
        return self.control.sessions.run(self.control.access(task.node.driver_info), what, fn)

    def get_boot_mode(self, task: Task) -> str | None:
        modes = {value: name for name, value in BOOT_MODES.items()}
        return self._run(task, "get boot mode", lambda system: modes.get(system.boot.mode))

    def set_boot_mode(self, task: Task, mode: str) -> None:
        self._run(task, "set boot mode",
                  lambda system: system.set_system_boot_options(mode=BOOT_MODES[mode]))

    def get_secure_boot_state(self, task: Task) -> bool | None:
        return self._run(task, "get secure boot", lambda system: system.secure_boot.enabled)

    def set_secure_boot_state(self, task: Task, enabled: bool) -> None:
        self._run(task, "set secure boot",
                  lambda system: system.secure_boot.set_enabled(enabled))

    def attach_virtual_media(self, task: Task, device_type: str, image_url: str) -> None:
        def insert(system: System) -> None:
            drive = redfish_media.drive_of(system, device_type)
            if drive.inserted:
                drive.eject_media()
            drive.insert_media(image_url, inserted=True, write_protected=True)

        self._run(task, f"attach virtual media {device_type}", insert)

    def detach_virtual_media(self, task: Task, device_types: list[str] | None) -> None:
        def eject(system: System) -> None:
            for device_type in device_types or redfish_media.VMEDIA_DEVICES:
                kinds = redfish_media.MEDIA_TYPES[device_type]
                for drive in redfish_media.drives(system):
                    if drive.inserted and any(k in kinds for k in drive.media_types or []):
                        drive.eject_media()

        self._run(task, "detach virtual media", eject)

    def get_virtual_media(self, task: Task) -> list[dict[str, Any]]:
        """Every drive as Ironic's redfish get_vmedia shows it (the system's, else its
        managers'): its media types' Redfish names, whether inserted, the image's URL."""
        def listed(system: System) -> list[dict[str, Any]]:
            return [{"media_types": [kind.value for kind in drive.media_types or []],
                     "inserted": drive.inserted, "image": drive.image}
                    for drive in redfish_media.drives(system)]
        return self._run(task, "get virtual media", listed)

    def get_node_health(self, task: Task) -> str | None:
        """The system's ``Status.Health`` (OK, Warning, Critical), None when it has none."""
        def health(system: System) -> str | None:
            status = system.status
            return status.health.value if status and status.health else None
        return self._run(task, "get health", health)


def redfish_management(sessions: RedfishSessions, settings: Settings) -> BmcManagement:
    return RedfishManagement(RedfishBmc(sessions), settings)
