"""The one settings object, in sections: every knob is an ENCLUME_* variable, maybe from a file.

The file is named by ENCLUME_CONFIG_FILE (dotenv syntax: ENCLUME_API_PORT=6385 lines). Each section
reads the variables of its own fields: ENCLUME_<PREFIX><FIELD> (ENCLUME_API_PORT is `api.port`), or
the name given by the field's `validation_alias` where it is older than the section
(ENCLUME_PUBLIC_URL is `api.public_url`). Each variable is documented in docs/configuration.md.

Tests and callers build one with section dicts: ``Settings(api={"port": 0}, conductor={...})``;
the environment still fills every field they do not name.
"""

from __future__ import annotations

import os
from functools import lru_cache
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.validation import MAX_VLAN, MIN_VLAN

DelayRange = tuple[float, float]


def _section(prefix: str) -> SettingsConfigDict:
    """A section's config: its fields read ENCLUME_<prefix><FIELD> unless they name their own."""
    return SettingsConfigDict(
        env_file=os.environ.get("ENCLUME_CONFIG_FILE"),
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
        alias_generator=AliasGenerator(
            validation_alias=lambda field: f"ENCLUME_{prefix}{field.upper()}"),
    )


def _var(name: str, default: Any = None, **constraints: Any) -> Any:
    """A field read from the variable ENCLUME_<name>, whatever its section's prefix."""
    return Field(default=default, validation_alias=f"ENCLUME_{name}", **constraints)


class ProcessSettings(BaseSettings):
    """What every process reads: its data directory and its logging."""

    model_config = _section("")
    data_dir: Path = Path("/var/lib/enclume")
    log_level: str = "INFO"
    access_log: bool = True


class DatabaseSettings(BaseSettings):
    model_config = _section("DATABASE_")
    url: str | None = None


class ApiSettings(BaseSettings):
    model_config = _section("API_")
    host: str = "127.0.0.1"
    port: int = 6385
    public_url: str | None = _var("PUBLIC_URL")
    max_request_body_bytes: int = _var("MAX_REQUEST_BODY_BYTES", 1024 * 1024)
    max_page_size: int = _var("MAX_PAGE_SIZE", 1000)
    default_resource_class: str | None = _var("DEFAULT_RESOURCE_CLASS")


class AuthSettings(BaseSettings):
    model_config = _section("AUTH_")
    # "noauth", "http_basic" or "users_file"; None: noauth on loopback only, else http_basic
    strategy: str | None = None
    htpasswd_file: Path | None = _var("HTPASSWD_FILE")
    users_file: Path | None = _var("USERS_FILE")  # YAML users, bcrypt hashes, roles, rooms
    allow_noauth_off_loopback: bool = _var("ALLOW_NOAUTH_OFF_LOOPBACK", False)


class UiSettings(BaseSettings):
    """The teacher's web page under /ui/ (docs/teacher-guide.md)."""

    model_config = _section("UI_")
    secret_file: Path | None = None  # None: DATA_DIR/ui-secret, made at first start
    session_hours: float = Field(default=10.0, gt=0)
    login_attempts: int = Field(default=5, ge=1)  # failed logins per user name ...
    login_window_s: float = Field(default=300.0, gt=0)  # ... within this many seconds


class ClassroomSettings(BaseSettings):
    """docs/classroom-api.md"""

    model_config = _section("CLASSROOM_")
    ical_max_bytes: int = _var("ICAL_MAX_BYTES", 512 * 1024, gt=0)
    ical_max_events: int = _var("ICAL_MAX_EVENTS", 2000, gt=0)
    occurrence_horizon_days: int = _var("OCCURRENCE_HORIZON_DAYS", 28, ge=1, le=366)
    restore_lead_s: float = _var("RESTORE_LEAD_S", 900.0, ge=0)  # rooms without measured restores
    restore_lead_samples: int = _var("RESTORE_LEAD_SAMPLES", 5, ge=0, le=100)  # 0: always the above
    restore_lead_factor: float = _var("RESTORE_LEAD_FACTOR", 1.5, ge=1.0, le=10.0)
    restore_lead_min_s: float = _var("RESTORE_LEAD_MIN_S", 300.0, ge=0)
    restore_lead_max_s: float = _var("RESTORE_LEAD_MAX_S", 7200.0, ge=0)
    interval_s: float = Field(default=2.0, gt=0)
    occurrence_grace_s: float = _var("OCCURRENCE_GRACE_S", 600.0, ge=0)


class ConductorSettings(BaseSettings):
    model_config = _section("CONDUCTOR_")
    workers: int = 100
    max_concurrent_deploys: int = _var("MAX_CONCURRENT_DEPLOYS", 250)
    hostname: str = Field(default_factory=lambda: os.uname().nodename)
    group: str = ""
    heartbeat_interval_s: float = _var("HEARTBEAT_INTERVAL_S", 10.0)
    heartbeat_timeout_s: float = _var("HEARTBEAT_TIMEOUT_S", 60.0)
    reservation_lease_s: float = _var("RESERVATION_LEASE_S", 60.0)
    ring_refresh_s: float = _var("RING_REFRESH_S", 2.0)
    periodic_interval_s: float = _var("PERIODIC_INTERVAL_S", 10.0)
    power_sync_interval_s: float = _var("POWER_SYNC_INTERVAL_S", 60.0)
    power_sync_workers: int = _var("POWER_SYNC_WORKERS", 8)
    power_sync_max_retries: int = _var("POWER_SYNC_MAX_RETRIES", 3)
    power_failure_recovery: bool = _var("POWER_FAILURE_RECOVERY", True)
    callback_timeout_s: float = _var("CALLBACK_TIMEOUT_S", 1800.0)


class RpcSettings(BaseSettings):
    model_config = _section("RPC_")
    host: str = "127.0.0.1"
    port: int = 6388
    address: str | None = None
    secret: str | None = None
    secret_file: Path | None = None
    timeout_s: float = 60.0
    retries: int = 2


class DriverSettings(BaseSettings):
    model_config = _section("")
    enabled_hardware_types: list[str] = ["fake-hardware", "ipmi", "redfish", "wol"]
    default_boot_mode: str = "uefi"  # "bios" or "uefi", unless a node's capabilities say
    power_state_change_timeout_s: float = 60.0
    power_poll_interval_s: float = 1.0

    @field_validator("default_boot_mode")
    @classmethod
    def _boot_mode(cls, value: str) -> str:
        if value not in ("bios", "uefi"):
            raise ValueError('default_boot_mode is "bios" or "uefi"')
        return value


class IpmiSettings(BaseSettings):
    model_config = _section("IPMI_")
    timeout_s: float = 15.0
    max_concurrency: int = 32


class RedfishSettings(BaseSettings):
    model_config = _section("REDFISH_")
    timeout_s: float = 30.0
    max_concurrency: int = 32
    connect_retries: int = 1


class WolSettings(BaseSettings):
    model_config = _section("WOL_")
    default_host: str = "255.255.255.255"
    default_port: int = 9
    via_boot_service: bool = False  # the boot service sends them out of its interface


class SessionServiceSettings(BaseSettings):
    """The session service of deployed OSes (docs/session-service.md)."""

    model_config = _section("SESSION_SERVICE_")
    enabled: bool = False  # direct deploys write a token into a config drive
    api_url: str | None = None  # default: the agents' API URL
    timeout_s: float = 60.0  # silent longer than this: not up
    wait_s: float = 20.0  # how long the API holds a heartbeat for a command
    command_timeout_s: float = 45.0  # a command not fetched by then: unreachable


class FakeSettings(BaseSettings):
    """Random delay ranges [min, max] seconds of the fake interfaces' calls."""

    model_config = _section("FAKE_")
    power_delay_s: DelayRange = (0.0, 0.0)
    management_delay_s: DelayRange = (0.0, 0.0)
    boot_delay_s: DelayRange = (0.0, 0.0)
    deploy_delay_s: DelayRange = (0.0, 0.0)
    network_delay_s: DelayRange = (0.0, 0.0)

    @field_validator("*")
    @classmethod
    def _ordered_range(cls, value: DelayRange) -> DelayRange:
        low, high = value
        if low < 0 or high < low:
            raise ValueError("a delay range is [min, max] seconds with 0 <= min <= max")
        return value


class DeploySettings(BaseSettings):
    """Agent deploys, cleaning, inspection: the deploy ramdisk and the conductor's side."""

    model_config = _section("DEPLOY_")
    kernel: str | None = None  # URL, or a file name in the boot files dir
    ramdisk: str | None = None
    kernel_append_params: str = _var("KERNEL_APPEND_PARAMS", "")
    agent_api_url: str | None = _var("AGENT_API_URL")  # default PUBLIC_URL, else the API's
    agent_command_timeout_s: float = _var("AGENT_COMMAND_TIMEOUT_S", 30.0)
    agent_heartbeat_timeout_s: float = _var("AGENT_HEARTBEAT_TIMEOUT_S", 90.0)
    image_download_source: Literal["local", "http"] = _var("IMAGE_DOWNLOAD_SOURCE", "local")
    automated_clean_steps: list[str] = _var("AUTOMATED_CLEAN_STEPS", ["erase_devices_metadata"])
    # default DATA_DIR/conductor-image-cache/HOST
    conductor_image_cache_dir: Path | None = _var("CONDUCTOR_IMAGE_CACHE_DIR")
    iscsi_portal_port: int = _var("ISCSI_PORTAL_PORT", 3260)
    iscsi_write_timeout_s: float = _var("ISCSI_WRITE_TIMEOUT_S", 3600.0)


class BootSettings(BaseSettings):
    """The boot service: its HTTP server, its interface, following the desired boots."""

    model_config = _section("BOOT_")
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    public_url: str | None = None  # what machines use; default http://HOST:PORT
    files_dir: Path | None = None  # default DATA_DIR/boot-files
    file_check_timeout_s: float = 5.0
    interface: str | None = None  # the provisioning network's interface (enclume-boot)
    # enclume-aio: how long it waits for its boot child
    aio_ready_timeout_s: float = _var("AIO_BOOT_READY_TIMEOUT_S", 60.0, gt=0)
    poll_interval_s: float = Field(default=0.5, gt=0)
    resync_interval_s: float = Field(default=30.0, gt=0)


class TftpSettings(BaseSettings):
    model_config = _section("TFTP_")
    host: str = "127.0.0.1"
    port: int = 69
    root: Path = Path("/usr/lib/ipxe")
    files: list[str] = ["undionly.kpxe", "ipxe.efi"]
    timeout_s: float = 5.0
    retries: int = 3
    max_sessions: int = 64


class DhcpSettings(BaseSettings):
    """The boot service's DHCP (dnsmasq) and the DHCP filter."""

    model_config = _section("BOOT_DHCP_")
    mode: Literal["full", "proxy"] = "full"
    range_start: IPv4Address | None = None  # full mode: the addresses to lease
    range_end: IPv4Address | None = None
    netmask: IPv4Address | None = None  # default: the interface's
    lease_time_s: int = Field(default=3600, ge=120)
    router: IPv4Address | None = None  # full mode; None: no default route given
    no_ping: bool = False
    filter: bool = True
    router_advertisement: bool = _var("BOOT_ROUTER_ADVERTISEMENT", True)
    dnsmasq_binary: Path = _var("BOOT_DNSMASQ_BINARY", Path("/usr/sbin/dnsmasq"))
    dnsmasq_user: str = _var("BOOT_DNSMASQ_USER", "nobody")
    dnsmasq_dir: Path | None = _var("BOOT_DNSMASQ_DIR")  # default DATA_DIR/dnsmasq


class ImageSettings(BaseSettings):
    """The boot service's image cache and the image store (docs/images.md)."""

    model_config = _section("IMAGE_")
    cache_dir: Path | None = None  # default DATA_DIR/image-cache
    cache_max_bytes: int = 20 * 1024**3
    download_timeout_s: float = 60.0
    store_dir: Path | None = None  # default DATA_DIR/image-store
    store_max_bytes: int = Field(default=200 * 1024**3, gt=0)
    upload_timeout_s: float = Field(default=86400.0, gt=0)  # idle uploads: gc removes
    token_secret: str | None = None  # shared by conductors and boot services
    token_secret_file: Path | None = None  # default DATA_DIR/image-token.secret
    token_ttl_s: float = Field(default=6 * 3600.0, gt=0)


class DiscoverySettings(BaseSettings):
    """Discovery of unknown machines (docs/discovery.md)."""

    model_config = _section("DISCOVERY_")
    # THE discovery switch: the boot service answers unknown MACs with the discovery ramdisk
    # and the API accepts their inventories (POST /v1/continue_inspection).
    enabled: bool = _var("BOOT_DISCOVERY", False)
    driver: str = "fake-hardware"  # of new nodes no rule gives a driver
    rules_file: Path | None = None  # YAML: what new nodes get, by inventory
    # Discovered nodes still in enroll (not yet taken on by an operator): beyond it, 503.
    max_enroll_nodes: int = Field(default=1000, ge=0)


class NetworkSettings(BaseSettings):
    """VLANs and switches (the ``vlan`` network interface)."""

    model_config = _section("NETWORK_")
    switches_file: Path | None = _var("SWITCHES_FILE")  # YAML or JSON: the switches
    provisioning_vlan: int | None = Field(default=None, ge=MIN_VLAN, le=MAX_VLAN)
    # None: the provisioning VLAN
    cleaning_vlan: int | None = Field(default=None, ge=MIN_VLAN, le=MAX_VLAN)
    tenant_vlan: int | None = Field(default=None, ge=MIN_VLAN, le=MAX_VLAN)
    switch_batch_window_s: float = _var("SWITCH_BATCH_WINDOW_S", 0.2, ge=0)
    switch_timeout_s: float = _var("SWITCH_TIMEOUT_S", 30.0, gt=0)


class Settings(BaseModel):
    """Every section; each reads its variables when built (a dict given for one overrides them)."""

    model_config = ConfigDict(extra="forbid")

    process: ProcessSettings = Field(default_factory=ProcessSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    ui: UiSettings = Field(default_factory=UiSettings)
    classroom: ClassroomSettings = Field(default_factory=ClassroomSettings)
    conductor: ConductorSettings = Field(default_factory=ConductorSettings)
    rpc: RpcSettings = Field(default_factory=RpcSettings)
    drivers: DriverSettings = Field(default_factory=DriverSettings)
    ipmi: IpmiSettings = Field(default_factory=IpmiSettings)
    redfish: RedfishSettings = Field(default_factory=RedfishSettings)
    wol: WolSettings = Field(default_factory=WolSettings)
    session_service: SessionServiceSettings = Field(default_factory=SessionServiceSettings)
    fake: FakeSettings = Field(default_factory=FakeSettings)
    deploy: DeploySettings = Field(default_factory=DeploySettings)
    boot: BootSettings = Field(default_factory=BootSettings)
    tftp: TftpSettings = Field(default_factory=TftpSettings)
    dhcp: DhcpSettings = Field(default_factory=DhcpSettings)
    images: ImageSettings = Field(default_factory=ImageSettings)
    discovery: DiscoverySettings = Field(default_factory=DiscoverySettings)
    network: NetworkSettings = Field(default_factory=NetworkSettings)

    @model_validator(mode="before")
    @classmethod
    def _sections_from_dicts(cls, data: Any) -> Any:
        """A dict given for a section overrides its fields; the environment fills the rest."""
        if not isinstance(data, dict):
            return data
        built = dict(data)
        for name, value in data.items():
            field = cls.model_fields.get(name)
            if field is None or not isinstance(value, dict):
                continue  # unknown names are refused by extra="forbid"
            section: type[BaseSettings] = field.annotation  # type: ignore[assignment]
            unknown = set(value) - set(section.model_fields)
            if unknown:
                raise ValueError(f"{name} has no setting {', '.join(sorted(unknown))}")
            built[name] = section(**value)
        return built

    # -- values derived from several sections, the same in every process

    @property
    def effective_boot_url(self) -> str:
        return (self.boot.public_url or f"http://{self.boot.http_host}:{self.boot.http_port}"
                ).rstrip("/")

    @property
    def effective_boot_files_dir(self) -> Path:
        return self.boot.files_dir or self.process.data_dir / "boot-files"

    @property
    def effective_boot_dnsmasq_dir(self) -> Path:
        return self.dhcp.dnsmasq_dir or self.process.data_dir / "dnsmasq"

    @property
    def effective_image_cache_dir(self) -> Path:
        return self.images.cache_dir or self.process.data_dir / "image-cache"

    @property
    def effective_image_store_dir(self) -> Path:
        return self.images.store_dir or self.process.data_dir / "image-store"

    @property
    def effective_conductor_image_cache_dir(self) -> Path:
        # One per conductor: conductors may share a data directory (one host, a test cluster).
        return self.deploy.conductor_image_cache_dir or (
            self.process.data_dir / "conductor-image-cache" / self.conductor.hostname)

    @property
    def effective_agent_api_url(self) -> str:
        return (self.deploy.agent_api_url or self.api.public_url
                or f"http://{self.api.host}:{self.api.port}").rstrip("/")

    @property
    def effective_rpc_address(self) -> str:
        return self.rpc.address or f"http://{self.rpc.host}:{self.rpc.port}"

    def rpc_shared_secret(self) -> str | None:
        if self.rpc.secret_file is not None:
            return self.rpc.secret_file.read_text().strip()
        return self.rpc.secret

    @property
    def effective_database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{self.process.data_dir / 'enclume.sqlite'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
