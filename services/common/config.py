"""The one settings object: every knob is an ENCLUME_* variable, optionally read from a file.

The file is named by ENCLUME_CONFIG_FILE (dotenv syntax: ENCLUME_API_PORT=6385 lines).
Each field is documented in docs/configuration.md.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

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

    auth_strategy: str | None = None  # "noauth" or "http_basic"; None: noauth on loopback only
    htpasswd_file: Path | None = None
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

    enabled_hardware_types: list[str] = ["fake-hardware"]
    fake_power_delay_s: tuple[float, float] = (0.0, 0.0)
    fake_management_delay_s: tuple[float, float] = (0.0, 0.0)
    fake_boot_delay_s: tuple[float, float] = (0.0, 0.0)
    fake_deploy_delay_s: tuple[float, float] = (0.0, 0.0)
    fake_network_delay_s: tuple[float, float] = (0.0, 0.0)

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
