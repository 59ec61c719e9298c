"""The one settings object: every knob is an ENCLUME_* variable, optionally read from a file.

The file is named by ENCLUME_CONFIG_FILE (dotenv syntax: ENCLUME_API_PORT=6385 lines).
Each field is documented in docs/configuration.md.
"""

from __future__ import annotations

import os
from functools import lru_cache
from ipaddress import IPv4Address
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ENCLUME_",
        env_file=os.environ.get("ENCLUME_CONFIG_FILE"),
        extra="ignore",
    )

    data_dir: Path = Field(default=Path("/var/lib/enclume"))
    database_url: str | None = None

    api_host: str = "127.0.0.1"
    api_port: int = 6385
    public_url: str | None = None

    # "noauth", "http_basic" or "users_file"; None: noauth on loopback only, else http_basic
    auth_strategy: str | None = None
    htpasswd_file: Path | None = None
    users_file: Path | None = None  # users_file: YAML users, bcrypt hashes, roles, rooms

    # -- classroom (docs/classroom-api.md)
    ical_max_bytes: int = Field(default=512 * 1024, gt=0)
    ical_max_events: int = Field(default=2000, gt=0)
    occurrence_horizon_days: int = Field(default=28, ge=1, le=366)
    restore_lead_s: float = Field(default=900.0, ge=0)
    classroom_interval_s: float = Field(default=2.0, gt=0)
    occurrence_grace_s: float = Field(default=600.0, ge=0)
    allow_noauth_off_loopback: bool = False

    max_request_body_bytes: int = 1024 * 1024
    max_page_size: int = 1000
    default_resource_class: str | None = None

    conductor_workers: int = 100
    max_concurrent_deploys: int = 250
    conductor_hostname: str = Field(default_factory=lambda: os.uname().nodename)
    conductor_group: str = ""
    heartbeat_interval_s: float = 10.0
    heartbeat_timeout_s: float = 60.0
    reservation_lease_s: float = 60.0
    ring_refresh_s: float = 2.0
    periodic_interval_s: float = 10.0
    power_sync_interval_s: float = 60.0
    power_sync_workers: int = 8
    callback_timeout_s: float = 1800.0

    rpc_host: str = "127.0.0.1"
    rpc_port: int = 6388
    rpc_address: str | None = None
    rpc_secret: str | None = None
    rpc_secret_file: Path | None = None
    rpc_timeout_s: float = 60.0
    rpc_retries: int = 2

    enabled_hardware_types: list[str] = ["fake-hardware", "ipmi", "redfish", "wol"]
    default_boot_mode: str = "uefi"  # "bios" or "uefi", unless a node's capabilities say
    power_state_change_timeout_s: float = 60.0
    power_poll_interval_s: float = 1.0
    power_sync_max_retries: int = 3
    power_failure_recovery: bool = True

    ipmi_timeout_s: float = 15.0
    ipmi_max_concurrency: int = 32
    redfish_timeout_s: float = 30.0
    redfish_max_concurrency: int = 32
    redfish_connect_retries: int = 1
    wol_default_host: str = "255.255.255.255"
    wol_default_port: int = 9
    wol_via_boot_service: bool = False  # the boot service sends them out of its interface
    # -- the session service of deployed OSes (docs/session-service.md)
    session_service_enabled: bool = False  # direct deploys write a token into a config drive
    session_service_api_url: str | None = None  # default: the agents' API URL
    session_service_timeout_s: float = 60.0  # silent longer than this: not up
    session_service_wait_s: float = 20.0  # how long the API holds a heartbeat for a command
    session_service_command_timeout_s: float = 45.0  # a command not fetched by then: unreachable
    agent_command_timeout_s: float = 30.0
    agent_heartbeat_timeout_s: float = 90.0
    # -- agent deploys, cleaning, inspection (conductor side)
    image_download_source: Literal["local", "http"] = "local"
    automated_clean_steps: list[str] = ["erase_devices_metadata"]
    conductor_image_cache_dir: Path | None = None  # default DATA_DIR/conductor-image-cache/HOST
    iscsi_portal_port: int = 3260
    iscsi_write_timeout_s: float = 3600.0
    fake_power_delay_s: tuple[float, float] = (0.0, 0.0)
    fake_management_delay_s: tuple[float, float] = (0.0, 0.0)
    fake_boot_delay_s: tuple[float, float] = (0.0, 0.0)
    fake_deploy_delay_s: tuple[float, float] = (0.0, 0.0)
    fake_network_delay_s: tuple[float, float] = (0.0, 0.0)

    # -- boot service: HTTP, TFTP, images
    boot_http_host: str = "127.0.0.1"
    boot_http_port: int = 8080
    boot_public_url: str | None = None  # what machines use; default http://HOST:PORT
    boot_files_dir: Path | None = None  # default DATA_DIR/boot-files
    deploy_kernel: str | None = None  # URL, or a file name in the boot files dir
    deploy_ramdisk: str | None = None
    kernel_append_params: str = ""
    agent_api_url: str | None = None  # default PUBLIC_URL, else http://API_HOST:API_PORT
    boot_file_check_timeout_s: float = 5.0
    tftp_host: str = "127.0.0.1"
    tftp_port: int = 69
    tftp_root: Path = Path("/usr/lib/ipxe")
    tftp_files: list[str] = ["undionly.kpxe", "ipxe.efi"]
    tftp_timeout_s: float = 5.0
    tftp_retries: int = 3
    tftp_max_sessions: int = 64
    image_cache_dir: Path | None = None  # default DATA_DIR/image-cache
    image_cache_max_bytes: int = 20 * 1024**3
    image_download_timeout_s: float = 60.0
    image_store_dir: Path | None = None  # default DATA_DIR/image-store (docs/images.md)
    image_store_max_bytes: int = Field(default=200 * 1024**3, gt=0)
    image_upload_timeout_s: float = Field(default=86400.0, gt=0)  # idle uploads: gc removes
    image_token_secret: str | None = None  # shared by conductors and boot services
    image_token_secret_file: Path | None = None  # default DATA_DIR/image-token.secret
    image_token_ttl_s: float = Field(default=6 * 3600.0, gt=0)

    # -- boot service: DHCP (dnsmasq), the DHCP filter, following the desired boot
    boot_interface: str | None = None  # the provisioning network's interface (enclume-boot)
    aio_boot_ready_timeout_s: float = Field(default=60.0, gt=0)  # aio: wait for its boot child
    boot_dhcp_mode: Literal["full", "proxy"] = "full"
    boot_dhcp_range_start: IPv4Address | None = None  # full mode: the addresses to lease
    boot_dhcp_range_end: IPv4Address | None = None
    boot_dhcp_netmask: IPv4Address | None = None  # default: the interface's
    boot_dhcp_lease_time_s: int = Field(default=3600, ge=120)
    boot_dhcp_router: IPv4Address | None = None  # full mode; None: no default route given
    boot_dhcp_no_ping: bool = False
    # THE discovery switch: the boot service answers unknown MACs with the discovery ramdisk
    # and the API accepts their inventories (POST /v1/continue_inspection).
    boot_discovery: bool = False
    boot_router_advertisement: bool = True
    boot_dhcp_filter: bool = True
    boot_dnsmasq_binary: Path = Path("/usr/sbin/dnsmasq")
    boot_dnsmasq_user: str = "nobody"
    boot_dnsmasq_dir: Path | None = None  # default DATA_DIR/dnsmasq
    boot_poll_interval_s: float = Field(default=0.5, gt=0)
    boot_resync_interval_s: float = Field(default=30.0, gt=0)

    # -- discovery of unknown machines (docs/discovery.md); on/off: boot_discovery
    discovery_driver: str = "fake-hardware"  # of new nodes no rule gives a driver
    discovery_rules_file: Path | None = None  # YAML: what new nodes get, by inventory
    # Discovered nodes still in enroll (not yet taken on by an operator): beyond it, 503.
    discovery_max_enroll_nodes: int = Field(default=1000, ge=0)

    # -- network: VLANs and switches (the ``vlan`` network interface)
    switches_file: Path | None = None  # YAML or JSON: the switches and how to reach them
    network_provisioning_vlan: int | None = Field(default=None, ge=1, le=4094)
    network_cleaning_vlan: int | None = Field(default=None, ge=1, le=4094)  # None: provisioning
    network_tenant_vlan: int | None = Field(default=None, ge=1, le=4094)
    switch_batch_window_s: float = Field(default=0.2, ge=0)
    switch_timeout_s: float = Field(default=30.0, gt=0)

    log_level: str = "INFO"
    access_log: bool = True

    @field_validator(
        "fake_power_delay_s",
        "fake_management_delay_s",
        "fake_boot_delay_s",
        "fake_deploy_delay_s",
        "fake_network_delay_s",
    )
    @classmethod
    def _ordered_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if low < 0 or high < low:
            raise ValueError("a delay range is [min, max] seconds with 0 <= min <= max")
        return value

    @field_validator("default_boot_mode")
    @classmethod
    def _boot_mode(cls, value: str) -> str:
        if value not in ("bios", "uefi"):
            raise ValueError('default_boot_mode is "bios" or "uefi"')
        return value

    @property
    def effective_boot_url(self) -> str:
        return (self.boot_public_url or f"http://{self.boot_http_host}:{self.boot_http_port}"
                ).rstrip("/")

    @property
    def effective_boot_files_dir(self) -> Path:
        return self.boot_files_dir or self.data_dir / "boot-files"

    @property
    def effective_boot_dnsmasq_dir(self) -> Path:
        return self.boot_dnsmasq_dir or self.data_dir / "dnsmasq"

    @property
    def effective_image_cache_dir(self) -> Path:
        return self.image_cache_dir or self.data_dir / "image-cache"

    @property
    def effective_image_store_dir(self) -> Path:
        return self.image_store_dir or self.data_dir / "image-store"

    @property
    def effective_conductor_image_cache_dir(self) -> Path:
        # One per conductor: conductors may share a data directory (one host, a test cluster).
        return self.conductor_image_cache_dir or (
            self.data_dir / "conductor-image-cache" / self.conductor_hostname)

    @property
    def effective_agent_api_url(self) -> str:
        return (self.agent_api_url or self.public_url
                or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @property
    def effective_rpc_address(self) -> str:
        return self.rpc_address or f"http://{self.rpc_host}:{self.rpc_port}"

    def rpc_shared_secret(self) -> str | None:
        if self.rpc_secret_file is not None:
            return self.rpc_secret_file.read_text().strip()
        return self.rpc_secret

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'enclume.sqlite'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
