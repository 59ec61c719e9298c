"""The one settings object, in sections: every knob is an ENCLUME_* variable, maybe from a file.

The file is named by ENCLUME_CONFIG_FILE (dotenv syntax: ENCLUME_API_PORT=6385 lines). Each section
reads the variables of its own fields: ENCLUME_<PREFIX><FIELD> (ENCLUME_API_PORT is `api.port`), or
the name given by the field's `validation_alias` where it is older than the section
(ENCLUME_PUBLIC_URL is `api.public_url`). Each variable is documented in docs/configuration.md.

Tests and callers build one with section dicts: ``Settings(api={"port": 0}, conductor={...})``;
the environment still fills every field they do not name.
"""


from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings

from services.common.config_classroom_sections import (
    LdapSettings,
    PcLoginSettings,
    StudentStateSettings,
)
from services.common.config_hardware_sections import (
    BootSettings,
    DeploySettings,
    DhcpSettings,
    DiscoverySettings,
    FakeSettings,
    ImageSettings,
    MulticastSettings,
    NetworkSettings,
    TftpSettings,
)
from services.common.config_service_sections import (
    ApiSettings,
    AuthSettings,
    ClassroomSettings,
    ConductorSettings,
    DatabaseSettings,
    DriverSettings,
    IpmiSettings,
    KeystoneSettings,
    MetricsSettings,
    ProcessSettings,
    RedfishSettings,
    RpcSettings,
    SessionServiceSettings,
    UiSettings,
    WolSettings,
)

AGENT_API_CA_PATH = "/agent-api-ca.pem"  # the boot service's route of the API's CA


class Settings(BaseModel):
    """Every section; each reads its variables when built (a dict given for one overrides them)."""

    model_config = ConfigDict(extra="forbid")

    process: ProcessSettings = Field(default_factory=ProcessSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    ui: UiSettings = Field(default_factory=UiSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    classroom: ClassroomSettings = Field(default_factory=ClassroomSettings)
    ldap: LdapSettings = Field(default_factory=LdapSettings)
    keystone: KeystoneSettings = Field(default_factory=KeystoneSettings)
    pc_login: PcLoginSettings = Field(default_factory=PcLoginSettings)
    student_states: StudentStateSettings = Field(default_factory=StudentStateSettings)
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
    multicast: MulticastSettings = Field(default_factory=MulticastSettings)

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
    def agent_api_ca_url(self) -> str | None:
        """Where the boot service serves ENCLUME_AGENT_API_CA_FILE to the deploy ramdisk."""
        if self.deploy.agent_api_ca_file is None:
            return None
        return f"{self.effective_boot_url.rstrip('/')}{AGENT_API_CA_PATH}"

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
