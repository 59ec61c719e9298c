"""The CLI's configuration: endpoint, credentials, API version, output format.

Sources, strongest first: the global flags (passed as keyword arguments), the environment
(``ENCLUME_URL``, ``ENCLUME_USERNAME``, ``ENCLUME_PASSWORD``, ``ENCLUME_API_VERSION``,
``ENCLUME_TIMEOUT_S``, ``ENCLUME_FORMAT``), the YAML file (``--config``, else
``ENCLUME_CLI_CONFIG``, else ``~/.config/enclume/cli.yaml`` when it exists; same key names as the
fields), the defaults.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from services.common.yaml_errors import describe_yaml_error

DEFAULT_URL = "http://127.0.0.1:6385"
DEFAULT_TIMEOUT_S = 30.0
CONFIG_FILE_ENV = "ENCLUME_CLI_CONFIG"
OutputFormat = Literal["table", "json", "yaml", "value", "csv"]
_API_VERSION_RE = re.compile(r"^1\.\d+$")


class ConfigError(ValueError):
    """The configuration cannot be used (bad file, bad value); the message says which."""


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "enclume" / "cli.yaml"


def read_config_file(path: Path, *, required: bool) -> dict[str, Any]:
    """The file's settings; {} when the default file does not exist."""
    if not path.is_file():
        if required:
            raise ConfigError(f"configuration file {path} does not exist")
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror or exc}"
                          ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration file {path} is not valid YAML: "
                          f"{describe_yaml_error(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"configuration file {path}: expected a mapping of settings")
    unknown = sorted(set(map(str, data)) - FILE_KEYS)
    if unknown:
        raise ConfigError(f"configuration file {path}: unknown setting(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(FILE_KEYS))}")
    return data


class _FileSource(PydanticBaseSettingsSource):
    """The YAML file named by the ``cli_config`` flag, ``ENCLUME_CLI_CONFIG`` or the default."""

    def __init__(self, settings_cls: type[BaseSettings], init: InitSettingsSource) -> None:
        super().__init__(settings_cls)
        named = init.init_kwargs.get("cli_config") or os.environ.get(CONFIG_FILE_ENV)
        path = Path(named).expanduser() if named else default_config_path()
        self.values = read_config_file(path, required=bool(named))

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.values)


class CliConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ENCLUME_", extra="forbid")

    url: str = DEFAULT_URL
    username: str | None = None
    password: SecretStr | None = None
    # None: the highest version the server offers (read from GET /v1/).
    api_version: str | None = None
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0)
    format: OutputFormat = "table"
    # The file the settings were read from (the --config flag or ENCLUME_CLI_CONFIG).
    cli_config: Path | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is None or value == "latest" or _API_VERSION_RE.match(value):
            return value
        raise ValueError("must look like 1.73 (or be 'latest')")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        assert isinstance(init_settings, InitSettingsSource)
        return init_settings, env_settings, _FileSource(settings_cls, init_settings)


FILE_KEYS = frozenset(CliConfig.model_fields) - {"cli_config"}


def load_config(**flags: Any) -> CliConfig:
    """The configuration with ``flags`` (None = not given) over the environment and the file.

    Raises ConfigError with a readable message (never showing the password)."""
    given = {name: value for name, value in flags.items() if value is not None}
    try:
        return CliConfig(**given)
    except ConfigError:
        raise
    except ValueError as exc:  # pydantic.ValidationError
        errors = getattr(exc, "errors", None)
        if errors is None:
            raise ConfigError(str(exc)) from exc
        parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors()]
        raise ConfigError("invalid configuration: " + "; ".join(parts)) from exc
