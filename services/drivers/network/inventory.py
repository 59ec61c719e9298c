"""The switches file (ENCLUME_SWITCHES_FILE): which switches exist and how to reach them.

    switches:
      tor-1:
        driver: cisco_ios            # cisco_nxos, arista_eos, juniper_junos, dell_os10, vde
        address: 192.0.2.10
        username: enclume
        password: s3cret             # or key_file: /etc/enclume/tor-1.key
        mac: "00:1c:73:00:00:01"     # optional: matches local_link_connection.switch_id
      lab:
        driver: vde
        socket: /run/enclume/vde/mgmt

A port's ``local_link_connection`` names its switch by ``switch_info`` (the switch's name here,
as networking-generic-switch does) or ``switch_id`` (the name or the switch's MAC).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from services.common.macs import parse_mac
from services.drivers.base import DriverError

CLI_DRIVERS = ("cisco_ios", "cisco_nxos", "arista_eos", "juniper_junos", "dell_os10")
SWITCH_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"


class SwitchesFileError(DriverError):
    """The switches file is missing, unreadable or invalid; the message says where."""


class SwitchConfig(BaseModel):
    """One switch. Secrets are SecretStr: they print as '**********'."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=SWITCH_NAME)
    driver: Literal["vde", "cisco_ios", "cisco_nxos", "arista_eos", "juniper_junos", "dell_os10"]
    mac: str | None = None
    # SSH CLI switches
    address: str | None = None
    port: int = Field(default=22, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    key_file: Path | None = None
    key_passphrase: SecretStr | None = None
    enable_secret: SecretStr | None = None
    known_hosts_file: Path | None = None  # verify the switch's host key against this file
    save_config: bool = True  # save the running configuration after each change (not Junos)
    # vde_switch
    socket: Path | None = None

    @model_validator(mode="after")
    def _complete(self) -> SwitchConfig:
        if self.mac is not None:
            mac = parse_mac(self.mac)
            if mac is None:
                raise ValueError("mac is not a MAC address (aa:bb:cc:dd:ee:ff)")
            object.__setattr__(self, "mac", mac)
        if self.driver == "vde":
            if self.socket is None:
                raise ValueError("a vde switch needs `socket`: the path of its management socket")
            return self
        missing = [key for key in ("address", "username") if getattr(self, key) in (None, "")]
        if missing:
            raise ValueError(f"a {self.driver} switch needs {' and '.join(missing)}")
        if self.password is None and self.key_file is None:
            raise ValueError(f"a {self.driver} switch needs `password` or `key_file`")
        return self


def _parse(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SwitchesFileError(f"cannot read the switches file {path}: {exc.strerror}") from None
    import yaml  # here, not at start: PyYAML costs a server ~1 MiB of RSS it rarely needs

    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise SwitchesFileError(f"the switches file {path} is not valid "
                                f"{'JSON' if path.suffix.lower() == '.json' else 'YAML'}: "
                                f"{exc}") from None


def _validation_message(exc: ValidationError) -> str:
    # Never the input values: they may hold passwords.
    return "; ".join(f"{'.'.join(str(p) for p in error['loc']) or 'switch'}: {error['msg']}"
                     for error in exc.errors())


def load_switches(path: Path) -> dict[str, SwitchConfig]:
    """The switches of the file, by name; SwitchesFileError with a reason otherwise."""
    document = _parse(path)
    switches = document.get("switches") if isinstance(document, Mapping) else None
    if not isinstance(switches, Mapping):
        raise SwitchesFileError(f"the switches file {path} must have a `switches:` mapping of "
                                "switch names to their settings")
    configs: dict[str, SwitchConfig] = {}
    macs: dict[str, str] = {}
    for name, values in switches.items():
        if not isinstance(values, Mapping):
            raise SwitchesFileError(f"{path}: switch {name!r} must be a mapping of settings")
        try:
            config = SwitchConfig.model_validate({**values, "name": str(name)})
        except ValidationError as exc:
            raise SwitchesFileError(f"{path}: switch {name!r}: "
                                    f"{_validation_message(exc)}") from None
        if config.mac is not None:
            if config.mac in macs:
                raise SwitchesFileError(f"{path}: switches {macs[config.mac]!r} and {name!r} "
                                        f"have the same mac {config.mac}")
            macs[config.mac] = config.name
        configs[config.name] = config
    return configs


def find_switch(switches: Mapping[str, SwitchConfig],
                local_link: Mapping[str, Any]) -> SwitchConfig | None:
    """The switch a port's local_link_connection names: by switch_info, else by switch_id
    (a switch name or MAC)."""
    info = local_link.get("switch_info")
    if isinstance(info, str) and info in switches:
        return switches[info]
    switch_id = local_link.get("switch_id")
    if not isinstance(switch_id, str) or not switch_id:
        return None
    if switch_id in switches:
        return switches[switch_id]
    mac = parse_mac(switch_id)
    if mac is None:
        return None
    return next((s for s in switches.values() if s.mac == mac), None)
