"""Switches with an SSH command line (Cisco IOS and NX-OS, Arista EOS, Juniper Junos, Dell OS10),
through netmiko: one SSH session per batch of changes, the dialect says what to type."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import paramiko
from netmiko import ConnectHandler
from netmiko.base_connection import BaseConnection
from netmiko.exceptions import (
    ConfigInvalidException,
    NetmikoAuthenticationException,
    NetmikoTimeoutException,
    ReadTimeout,
)

from services.drivers.network.inventory import SwitchConfig
from services.drivers.network.switches.base import (
    PortVlan,
    SwitchError,
    check_interface_name,
)
from services.drivers.network.switches.cli_dialects import DIALECTS, CliDialect, Finish

LOG = logging.getLogger(__name__)
# Junos refuses a commit while another session commits; it is worth trying again for a while.
COMMIT_LOCKED = "configuration database locked"
COMMIT_RETRY_INTERVAL_S = 1.0


def connection_parameters(config: SwitchConfig, timeout_s: float) -> dict[str, Any]:
    """netmiko's ConnectHandler arguments for `config` (secrets included: never log them)."""
    parameters: dict[str, Any] = {
        "device_type": DIALECTS[config.driver].netmiko_device_type,
        "host": config.address,
        "port": config.port,
        "username": config.username,
        "conn_timeout": timeout_s,
        "auth_timeout": timeout_s,
        "banner_timeout": timeout_s,
        "read_timeout_override": timeout_s,
        "allow_agent": False,
    }
    if config.password is not None:
        parameters["password"] = config.password.get_secret_value()
    if config.key_file is not None:
        parameters.update(use_keys=True, key_file=str(config.key_file))
        if config.key_passphrase is not None:
            parameters["passphrase"] = config.key_passphrase.get_secret_value()
    if config.enable_secret is not None:
        parameters["secret"] = config.enable_secret.get_secret_value()
    if config.known_hosts_file is not None:
        parameters.update(ssh_strict=True, system_host_keys=False, alt_host_keys=True,
                          alt_key_file=str(config.known_hosts_file))
    return parameters


WRAPPED_SSH_ERROR = "A paramiko SSHException occurred"


def _first_line(exc: BaseException) -> str:
    """The line of an exception's message that says what happened (netmiko wraps paramiko's
    errors, such as an unknown host key, in a paragraph of its own)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if lines[0].startswith(WRAPPED_SSH_ERROR) and len(lines) > 1:
        return f"SSH: {lines[1]}"
    return lines[0]


class NetmikoSwitchDriver:
    def __init__(self, config: SwitchConfig, timeout_s: float) -> None:
        self.name = config.name
        self.config = config
        self.dialect: CliDialect = DIALECTS[config.driver]
        self.timeout_s = timeout_s
        self.where = f"{config.driver} switch {config.name} ({config.address})"

    def check_port_id(self, port_id: str) -> str | None:
        return check_interface_name(port_id)

    def set_access_vlans(self, changes: Sequence[PortVlan]) -> None:
        commands = self.dialect.render(changes)
        where = self.where
        try:
            with ConnectHandler(**connection_parameters(self.config, self.timeout_s)) as session:
                self._configure(session, commands)
        except ConfigInvalidException as exc:
            raise SwitchError(f"{where} refused the change: {_first_line(exc)}") from None
        except NetmikoAuthenticationException:
            raise SwitchError(f"{where}: SSH authentication as {self.config.username!r} "
                              "failed") from None
        except (NetmikoTimeoutException, ReadTimeout) as exc:
            what = _first_line(exc)
            if what.startswith("SSH: "):
                raise SwitchError(f"{where}: {what}") from None
            raise SwitchError(f"{where}: no answer in time ({what})") from None
        except (paramiko.SSHException, OSError, EOFError, ValueError) as exc:
            raise SwitchError(f"{where}: {_first_line(exc)}") from None
        LOG.info("%s: %s", where, ", ".join(f"{c.port_id} -> VLAN {c.vlan}" for c in changes))

    def _configure(self, session: BaseConnection, commands: list[str]) -> None:
        dialect = self.dialect
        if dialect.enter_enable_mode:
            session.enable()
        options: dict[str, Any] = {}
        if dialect.config_command is not None:
            options["config_mode_command"] = dialect.config_command
        session.send_config_set(commands, exit_config_mode=dialect.finish is Finish.SAVE,
                                error_pattern=dialect.error_pattern, **options)
        if dialect.finish is Finish.COMMIT:
            self._commit(session)
            session.exit_config_mode()
        elif self.config.save_config:
            session.save_config()

    def _commit(self, session: Any) -> None:
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                session.commit()
                return
            except ValueError as exc:  # netmiko: the commit did not say "commit complete"
                if COMMIT_LOCKED not in str(exc) or time.monotonic() > deadline:
                    raise SwitchError(f"{self.where}: commit failed: "
                                      f"{_commit_error(str(exc))}") from None
            time.sleep(COMMIT_RETRY_INTERVAL_S)


def _commit_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines()]
    errors = [line for line in lines if line.startswith("error:")]
    return "; ".join(errors) if errors else next((line for line in lines if line), "no output")
