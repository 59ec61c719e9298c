"""Settings sections of the services: process, database, API, auth, web page, classroom."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

from services.common.config_fields import env_var, section_config


class ProcessSettings(BaseSettings):
    """What every process reads: its data directory and its logging."""

    model_config = section_config("")
    data_dir: Path = Path("/var/lib/enclume")
    log_level: str = "INFO"
    access_log: bool = True
    # An idle keep-alive connection is closed by the server only after its clients would
    # have let it go (httpx's 5 s): when both wait 5 s, a request sent as the server closes
    # is reset. 75 s is nginx's default.
    http_keep_alive_s: float = Field(default=75.0, gt=0)


class DatabaseSettings(BaseSettings):
    model_config = section_config("DATABASE_")
    url: str | None = None


class ApiSettings(BaseSettings):
    model_config = section_config("API_")
    host: str = "127.0.0.1"
    port: int = 6385
    public_url: str | None = env_var("PUBLIC_URL")
    max_request_body_bytes: int = env_var("MAX_REQUEST_BODY_BYTES", 1024 * 1024)
    max_page_size: int = env_var("MAX_PAGE_SIZE", 1000)
    default_resource_class: str | None = env_var("DEFAULT_RESOURCE_CLASS")
    tls_cert_file: Path | None = None  # both set: the API serves https itself
    tls_key_file: Path | None = None
    policy_file: Path | None = None  # Ironic's policy.yaml: rules over Ironic's defaults


class AuthSettings(BaseSettings):
    model_config = section_config("AUTH_")
    # "noauth", "http_basic" or "users_file"; None: noauth on loopback only, else http_basic
    strategy: str | None = None
    htpasswd_file: Path | None = env_var("HTPASSWD_FILE")
    users_file: Path | None = env_var("USERS_FILE")  # YAML users, bcrypt hashes, roles, rooms
    allow_noauth_off_loopback: bool = env_var("ALLOW_NOAUTH_OFF_LOOPBACK", False)


class KeystoneSettings(BaseSettings):
    """Keystone tokens (ENCLUME_AUTH_STRATEGY=keystone), validated by keystonemiddleware."""

    model_config = section_config("KEYSTONE_")
    auth_url: str | None = None  # Keystone's identity endpoint, e.g. https://keystone:5000/v3
    # The service user Enclume validates tokens as (Ironic's [keystone_authtoken]).
    username: str = "ironic"
    password: str | None = None  # the service user's; never logged
    project_name: str = "service"
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    interface: str = "public"  # the catalog's identity endpoint used to validate tokens
    cafile: Path | None = None  # the CA of Keystone's certificate; None: the system's CAs
    timeout_s: float = Field(default=10.0, gt=0)  # how long each call to Keystone may take
    memcached_servers: list[str] = Field(default_factory=list)  # none: an in-process cache
    token_cache_s: int = Field(default=300, ge=-1)  # a validated token is kept; -1: never


class UiSettings(BaseSettings):
    """The teacher's web page under /ui/ (docs/teacher-guide.md)."""

    model_config = section_config("UI_")
    secret_file: Path | None = None  # None: DATA_DIR/ui-secret, made at first start
    session_hours: float = Field(default=10.0, gt=0)
    login_attempts: int = Field(default=5, ge=1)  # failed logins per user name ...
    login_window_s: float = Field(default=300.0, gt=0)  # ... within this many seconds


class ClassroomSettings(BaseSettings):
    """docs/classroom-api.md"""

    model_config = section_config("CLASSROOM_")
    ical_max_bytes: int = env_var("ICAL_MAX_BYTES", 512 * 1024, gt=0)
    ical_max_events: int = env_var("ICAL_MAX_EVENTS", 2000, gt=0)
    ical_fetch_timeout_s: float = env_var("ICAL_FETCH_TIMEOUT_S", 10.0, gt=0, le=120)
    occurrence_horizon_days: int = env_var("OCCURRENCE_HORIZON_DAYS", 28, ge=1, le=366)
    # rooms without measured restores:
    restore_lead_s: float = env_var("RESTORE_LEAD_S", 900.0, ge=0)
    # 0: always the above
    restore_lead_samples: int = env_var("RESTORE_LEAD_SAMPLES", 5, ge=0, le=100)
    restore_lead_factor: float = env_var("RESTORE_LEAD_FACTOR", 1.5, ge=1.0, le=10.0)
    restore_lead_min_s: float = env_var("RESTORE_LEAD_MIN_S", 300.0, ge=0)
    restore_lead_max_s: float = env_var("RESTORE_LEAD_MAX_S", 7200.0, ge=0)
    interval_s: float = Field(default=2.0, gt=0)
    occurrence_grace_s: float = env_var("OCCURRENCE_GRACE_S", 600.0, ge=0)


class MetricsSettings(BaseSettings):
    """The Prometheus endpoint, GET /metrics, of every service (docs/operator-guide.md)."""

    model_config = section_config("METRICS_")
    enabled: bool = True
    # False: /metrics is open (its labels hold no names, ids or secrets); True: the API asks
    # for the credentials of its /v1 routes, the conductor and boot service for the RPC secret.
    require_auth: bool = False


class ConductorSettings(BaseSettings):
    model_config = section_config("CONDUCTOR_")
    workers: int = 100
    max_concurrent_deploys: int = env_var("MAX_CONCURRENT_DEPLOYS", 250)
    hostname: str = Field(default_factory=lambda: os.uname().nodename)
    group: str = ""
    heartbeat_interval_s: float = env_var("HEARTBEAT_INTERVAL_S", 10.0)
    heartbeat_timeout_s: float = env_var("HEARTBEAT_TIMEOUT_S", 60.0)
    reservation_lease_s: float = env_var("RESERVATION_LEASE_S", 60.0)
    ring_refresh_s: float = env_var("RING_REFRESH_S", 2.0)
    periodic_interval_s: float = env_var("PERIODIC_INTERVAL_S", 10.0)
    power_sync_interval_s: float = env_var("POWER_SYNC_INTERVAL_S", 60.0)
    power_sync_workers: int = env_var("POWER_SYNC_WORKERS", 8)
    power_sync_max_retries: int = env_var("POWER_SYNC_MAX_RETRIES", 3)
    power_failure_recovery: bool = env_var("POWER_FAILURE_RECOVERY", True)
    callback_timeout_s: float = env_var("CALLBACK_TIMEOUT_S", 1800.0)
    # rescue wait's (Ironic's [conductor]rescue_callback_timeout); 0: never times out
    rescue_callback_timeout_s: float = env_var("RESCUE_CALLBACK_TIMEOUT_S", 1800.0, ge=0)
    console_host: str = "127.0.0.1"  # where the socat consoles' TCP ports listen
    console_url: str | None = None  # base URL of the web consoles (default: RPC or API URL)


class RpcSettings(BaseSettings):
    model_config = section_config("RPC_")
    host: str = "127.0.0.1"
    port: int = 6388
    address: str | None = None
    secret: str | None = None
    secret_file: Path | None = None
    timeout_s: float = 60.0
    retries: int = 2


class DriverSettings(BaseSettings):
    model_config = section_config("")
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
    model_config = section_config("IPMI_")
    timeout_s: float = 15.0
    max_concurrency: int = 32


class RedfishSettings(BaseSettings):
    model_config = section_config("REDFISH_")
    timeout_s: float = 30.0
    max_concurrency: int = 32
    connect_retries: int = 1


class WolSettings(BaseSettings):
    model_config = section_config("WOL_")
    default_host: str = "255.255.255.255"
    default_port: int = 9
    via_boot_service: bool = False  # the boot service sends them out of its interface


class SessionServiceSettings(BaseSettings):
    """The session service of deployed OSes (docs/session-service.md)."""

    model_config = section_config("SESSION_SERVICE_")
    enabled: bool = False  # direct deploys write a token into a config drive
    api_url: str | None = None  # default: the agents' API URL
    timeout_s: float = 60.0  # silent longer than this: not up
    wait_s: float = 20.0  # how long the API holds a heartbeat for a command
    command_timeout_s: float = 45.0  # a command not fetched by then: unreachable
