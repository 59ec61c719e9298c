"""Every ENCLUME_* variable operators use lands in its section's field: from the environment,
from the ENCLUME_CONFIG_FILE file, and a bad value is refused with the variable's name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import pytest
from pydantic import ValidationError

from services.common.config import Settings
from tests.unit.test_configuration_doc import REPO_ROOT, documented_settings

# The variables of the flat settings class before it had sections (commit 71039c2): operators'
# files use these names, so none may disappear.
OPERATORS_NAMES = {
    "ENCLUME_DATA_DIR", "ENCLUME_DATABASE_URL", "ENCLUME_API_HOST", "ENCLUME_API_PORT",
    "ENCLUME_PUBLIC_URL", "ENCLUME_AUTH_STRATEGY", "ENCLUME_HTPASSWD_FILE", "ENCLUME_USERS_FILE",
    "ENCLUME_ICAL_MAX_BYTES", "ENCLUME_ICAL_MAX_EVENTS", "ENCLUME_OCCURRENCE_HORIZON_DAYS",
    "ENCLUME_RESTORE_LEAD_S", "ENCLUME_CLASSROOM_INTERVAL_S", "ENCLUME_OCCURRENCE_GRACE_S",
    "ENCLUME_ALLOW_NOAUTH_OFF_LOOPBACK", "ENCLUME_MAX_REQUEST_BODY_BYTES",
    "ENCLUME_MAX_PAGE_SIZE", "ENCLUME_DEFAULT_RESOURCE_CLASS", "ENCLUME_CONDUCTOR_WORKERS",
    "ENCLUME_MAX_CONCURRENT_DEPLOYS", "ENCLUME_CONDUCTOR_HOSTNAME", "ENCLUME_CONDUCTOR_GROUP",
    "ENCLUME_HEARTBEAT_INTERVAL_S", "ENCLUME_HEARTBEAT_TIMEOUT_S", "ENCLUME_RESERVATION_LEASE_S",
    "ENCLUME_RING_REFRESH_S", "ENCLUME_PERIODIC_INTERVAL_S", "ENCLUME_POWER_SYNC_INTERVAL_S",
    "ENCLUME_POWER_SYNC_WORKERS", "ENCLUME_CALLBACK_TIMEOUT_S", "ENCLUME_RPC_HOST",
    "ENCLUME_RPC_PORT", "ENCLUME_RPC_ADDRESS", "ENCLUME_RPC_SECRET", "ENCLUME_RPC_SECRET_FILE",
    "ENCLUME_RPC_TIMEOUT_S", "ENCLUME_RPC_RETRIES", "ENCLUME_ENABLED_HARDWARE_TYPES",
    "ENCLUME_DEFAULT_BOOT_MODE", "ENCLUME_POWER_STATE_CHANGE_TIMEOUT_S",
    "ENCLUME_POWER_POLL_INTERVAL_S", "ENCLUME_POWER_SYNC_MAX_RETRIES",
    "ENCLUME_POWER_FAILURE_RECOVERY", "ENCLUME_IPMI_TIMEOUT_S", "ENCLUME_IPMI_MAX_CONCURRENCY",
    "ENCLUME_REDFISH_TIMEOUT_S", "ENCLUME_REDFISH_MAX_CONCURRENCY",
    "ENCLUME_REDFISH_CONNECT_RETRIES", "ENCLUME_WOL_DEFAULT_HOST", "ENCLUME_WOL_DEFAULT_PORT",
    "ENCLUME_AGENT_COMMAND_TIMEOUT_S", "ENCLUME_AGENT_HEARTBEAT_TIMEOUT_S",
    "ENCLUME_IMAGE_DOWNLOAD_SOURCE", "ENCLUME_AUTOMATED_CLEAN_STEPS",
    "ENCLUME_CONDUCTOR_IMAGE_CACHE_DIR", "ENCLUME_ISCSI_PORTAL_PORT",
    "ENCLUME_ISCSI_WRITE_TIMEOUT_S", "ENCLUME_FAKE_POWER_DELAY_S",
    "ENCLUME_FAKE_MANAGEMENT_DELAY_S", "ENCLUME_FAKE_BOOT_DELAY_S", "ENCLUME_FAKE_DEPLOY_DELAY_S",
    "ENCLUME_FAKE_NETWORK_DELAY_S", "ENCLUME_BOOT_HTTP_HOST", "ENCLUME_BOOT_HTTP_PORT",
    "ENCLUME_BOOT_PUBLIC_URL", "ENCLUME_BOOT_FILES_DIR", "ENCLUME_DEPLOY_KERNEL",
    "ENCLUME_DEPLOY_RAMDISK", "ENCLUME_KERNEL_APPEND_PARAMS", "ENCLUME_AGENT_API_URL",
    "ENCLUME_BOOT_FILE_CHECK_TIMEOUT_S", "ENCLUME_TFTP_HOST", "ENCLUME_TFTP_PORT",
    "ENCLUME_TFTP_ROOT", "ENCLUME_TFTP_FILES", "ENCLUME_TFTP_TIMEOUT_S", "ENCLUME_TFTP_RETRIES",
    "ENCLUME_TFTP_MAX_SESSIONS", "ENCLUME_IMAGE_CACHE_DIR", "ENCLUME_IMAGE_CACHE_MAX_BYTES",
    "ENCLUME_IMAGE_DOWNLOAD_TIMEOUT_S", "ENCLUME_IMAGE_STORE_DIR",
    "ENCLUME_IMAGE_STORE_MAX_BYTES", "ENCLUME_BOOT_INTERFACE", "ENCLUME_AIO_BOOT_READY_TIMEOUT_S",
    "ENCLUME_BOOT_DHCP_MODE", "ENCLUME_BOOT_DHCP_RANGE_START", "ENCLUME_BOOT_DHCP_RANGE_END",
    "ENCLUME_BOOT_DHCP_NETMASK", "ENCLUME_BOOT_DHCP_LEASE_TIME_S", "ENCLUME_BOOT_DHCP_ROUTER",
    "ENCLUME_BOOT_DHCP_NO_PING", "ENCLUME_BOOT_DISCOVERY", "ENCLUME_BOOT_ROUTER_ADVERTISEMENT",
    "ENCLUME_BOOT_DHCP_FILTER", "ENCLUME_BOOT_DNSMASQ_BINARY", "ENCLUME_BOOT_DNSMASQ_USER",
    "ENCLUME_BOOT_DNSMASQ_DIR", "ENCLUME_BOOT_POLL_INTERVAL_S", "ENCLUME_BOOT_RESYNC_INTERVAL_S",
    "ENCLUME_DISCOVERY_DRIVER", "ENCLUME_DISCOVERY_RULES_FILE",
    "ENCLUME_DISCOVERY_MAX_ENROLL_NODES", "ENCLUME_SWITCHES_FILE",
    "ENCLUME_NETWORK_PROVISIONING_VLAN", "ENCLUME_NETWORK_CLEANING_VLAN",
    "ENCLUME_NETWORK_TENANT_VLAN", "ENCLUME_SWITCH_BATCH_WINDOW_S", "ENCLUME_SWITCH_TIMEOUT_S",
    "ENCLUME_LOG_LEVEL", "ENCLUME_ACCESS_LOG",
}
# Values a validator restricts beyond the field's type.
RESTRICTED = {"ENCLUME_DEFAULT_BOOT_MODE": "bios", "ENCLUME_RESTORE_LEAD_SAMPLES": 7,
              "ENCLUME_RESTORE_LEAD_FACTOR": 2.5}


def sample(var: str, index: int, annotation: Any, default: Any) -> tuple[str, Any]:
    """A value for `var` (as written in a file) that is not its default, and what it reads as."""
    if var in RESTRICTED:
        return str(RESTRICTED[var]), RESTRICTED[var]
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    if get_origin(annotation) is Literal:
        choice = next(a for a in reversed(get_args(annotation)) if a != default)
        return choice, choice
    if annotation is bool:
        return str(not default).lower(), not default
    if annotation is int:
        return str(200 + index), 200 + index  # inside every range: VLANs, days, lease times
    if annotation is float:
        return str(1.5 + index), 1.5 + index
    if annotation is Path:
        return f"/srv/enclume-test/{index}", Path(f"/srv/enclume-test/{index}")
    if annotation is IPv4Address:
        return f"10.9.0.{index}", IPv4Address(f"10.9.0.{index}")
    if get_origin(annotation) is list:
        return json.dumps([f"item-{index}"]), [f"item-{index}"]
    if get_origin(annotation) is dict:
        value_type = get_args(annotation)[1]
        value = "student" if value_type is str else [f"item-{index}"]  # roles are checked
        return json.dumps({f"group-{index}": value}), {f"group-{index}": value}
    if get_origin(annotation) is tuple:
        return json.dumps([index, index + 1]), (float(index), float(index + 1))
    assert annotation is str, (var, annotation)
    return f"value-{index}", f"value-{index}"


def samples() -> dict[str, tuple[str, str, str, Any]]:
    """variable -> (section, field, raw value, expected value), for every documented variable."""
    found = {}
    for index, (var, (section, field)) in enumerate(sorted(documented_settings().items())):
        section_class = Settings.model_fields[section].annotation
        assert section_class is not None and field in section_class.model_fields, (var, section)
        info = section_class.model_fields[field]
        found[var] = (section, field, *sample(var, index, info.annotation, info.default))
    return found


def read(settings: Settings, section: str, field: str) -> Any:
    return getattr(getattr(settings, section), field)  # settings-codemod: keep


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("ENCLUME_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_no_operator_variable_is_lost() -> None:
    assert OPERATORS_NAMES - set(documented_settings()) == set()


def test_every_variable_lands_in_its_section_field_from_the_environment(
        clean_env: pytest.MonkeyPatch) -> None:
    values = samples()
    for var, (_, _, raw, _) in values.items():
        clean_env.setenv(var, raw)
    settings = Settings()
    wrong = {var: read(settings, section, field) for var, (section, field, _, expected)
             in values.items() if read(settings, section, field) != expected}
    assert wrong == {}


def test_every_variable_lands_in_its_section_field_from_the_config_file(tmp_path: Path) -> None:
    values = samples()
    config = tmp_path / "enclume.env"
    config.write_text("".join(f"{var}='{raw}'\n" for var, (_, _, raw, _) in values.items()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLUME_")}
    dump = ("import json, sys\nfrom services.common.config import Settings\n"
            "print(Settings().model_dump_json())")
    result = subprocess.run([sys.executable, "-c", dump], capture_output=True, text=True,
                            env={**env, "ENCLUME_CONFIG_FILE": str(config)}, cwd=REPO_ROOT,
                            check=True, timeout=60)
    settings = Settings.model_validate_json(result.stdout)
    wrong = {var: read(settings, section, field) for var, (section, field, _, expected)
             in values.items() if read(settings, section, field) != expected}
    assert wrong == {}


@pytest.mark.parametrize(("var", "value"), [
    ("ENCLUME_API_PORT", "not-a-port"),
    ("ENCLUME_NETWORK_TENANT_VLAN", "4095"),
    ("ENCLUME_NETWORK_PROVISIONING_VLAN", "0"),
    ("ENCLUME_FAKE_DEPLOY_DELAY_S", "[3, 1]"),
    ("ENCLUME_DEFAULT_BOOT_MODE", "efi"),
    ("ENCLUME_BOOT_DHCP_MODE", "half"),
    ("ENCLUME_IMAGE_DOWNLOAD_SOURCE", "ftp"),
    ("ENCLUME_OCCURRENCE_HORIZON_DAYS", "400"),
    ("ENCLUME_BOOT_DHCP_RANGE_START", "10.0.0.300"),
])
def test_a_bad_value_is_refused_naming_its_variable(clean_env: pytest.MonkeyPatch, var: str,
                                                    value: str) -> None:
    clean_env.setenv(var, value)
    with pytest.raises(ValidationError, match=var):
        Settings()


def test_a_section_dict_overrides_its_fields_and_the_environment_fills_the_rest(
        clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ENCLUME_API_HOST", "192.0.2.7")
    clean_env.setenv("ENCLUME_API_PORT", "7000")
    settings = Settings(api={"port": 7001})
    assert (settings.api.host, settings.api.port) == ("192.0.2.7", 7001)


def test_flat_names_and_unknown_fields_are_refused(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="api_port"):
        Settings(api_port=1)  # type: ignore[call-arg]  # settings-codemod: keep
    with pytest.raises(ValidationError, match="api has no setting prot"):
        Settings(api={"prot": 1})
