"""What every command gets from the global options: the configuration, one API client, the
output format. The configuration is read when a command first needs it, so that ``--help``
works whatever the environment holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import typer

from services.cli.enclume.client import ApiClient
from services.cli.enclume.config import CliConfig, load_config


class CliError(Exception):
    """A failure to report as ``Error: <message>`` with exit code 1 (not an API answer)."""


@dataclass
class Cli:
    flags: dict[str, Any] = field(default_factory=dict)
    _config: CliConfig | None = None
    _client: ApiClient | None = None

    @property
    def config(self) -> CliConfig:
        if self._config is None:
            self._config = load_config(**self.flags)
        return self._config

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            self._client = ApiClient(self.config)
        return self._client

    def output_format(self, override: str | None = None) -> str:
        return override or self.config.format

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def cli(ctx: typer.Context) -> Cli:
    state = ctx.find_root().obj
    if not isinstance(state, Cli):  # a command run without the root callback (tests)
        state = ctx.find_root().obj = Cli()
    return state


def error_detail(exc: Exception) -> str:
    """``<faultstring> (HTTP <status>)``, or ``<message>`` without an answer."""
    status = getattr(exc, "status", None)
    if status:
        return f"{exc} (HTTP {status})"
    return str(exc)


def error_text(exc: Exception) -> str:
    """``Error: <faultstring> (HTTP <status>)``, or ``Error: <message>`` without an answer."""
    return f"Error: {error_detail(exc)}"


def print_error(exc: Exception) -> None:
    typer.echo(error_text(exc), err=True)
