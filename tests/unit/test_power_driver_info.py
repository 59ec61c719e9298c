"""driver_info of the ipmi, redfish and wol interfaces: Ironic's keys, clear reasons when wrong."""

from __future__ import annotations

import pytest

from services.common.config import Settings
from services.drivers import ipmi, redfish, wol
from services.drivers.base import DriverError, MissingParameters
from services.drivers.driver_info import InvalidParameter


def test_ipmi_access_uses_ironic_keys_and_defaults() -> None:
    access = ipmi.access_of({"ipmi_address": "10.0.0.5", "ipmi_username": "admin",
                             "ipmi_password": "s3cret"})
    assert (access.address, access.port, access.username, access.password) == (
        "10.0.0.5", 623, "admin", "s3cret")
    assert access.privilege == 4 and access.kg is None
    tuned = ipmi.access_of({"ipmi_address": "bmc", "ipmi_port": "6230",
                            "ipmi_priv_level": "operator", "ipmi_hex_kg_key": "00ff" * 5})
    assert (tuned.port, tuned.privilege, tuned.kg) == (6230, 3, b"\x00\xff" * 5)


@pytest.mark.parametrize(("info", "reason"), [
    ({}, "Missing the following IPMI credentials in node's driver_info: ipmi_address."),
    ({"ipmi_address": ""}, "ipmi_address"),
    ({"ipmi_address": "b", "ipmi_port": "http"}, "ipmi_port must be a port number"),
    ({"ipmi_address": "b", "ipmi_port": 70000}, "between 1 and 65535"),
    ({"ipmi_address": "b", "ipmi_priv_level": "ROOT"}, "ipmi_priv_level must be one of"),
    ({"ipmi_address": "b", "ipmi_hex_kg_key": "xyz"}, "hexadecimal"),
    ({"ipmi_address": "b", "ipmi_hex_kg_key": "ab" * 21}, "at most 20 bytes"),
    ({"ipmi_address": ["b"]}, "ipmi_address must be a string"),
])
def test_ipmi_driver_info_errors_name_the_key(info: dict[str, object], reason: str) -> None:
    with pytest.raises(DriverError, match=reason.replace("(", r"\(").replace(".", r"\.")):
        ipmi.access_of(info)  # type: ignore[arg-type]


def test_redfish_access_defaults_to_https_and_verification() -> None:
    access = redfish.access_of({"redfish_address": "bmc.example:8443",
                                "redfish_username": "u", "redfish_password": "p"})
    assert access.base_url == "https://bmc.example:8443"
    assert access.verify is True and access.system_id is None
    plain = redfish.access_of({"redfish_address": "http://127.0.0.1:8000/",
                               "redfish_system_id": "/redfish/v1/Systems/1",
                               "redfish_verify_ca": "False"})
    assert (plain.base_url, plain.system_id, plain.verify) == (
        "http://127.0.0.1:8000", "/redfish/v1/Systems/1", False)
    assert redfish.access_of({"redfish_address": "h", "redfish_verify_ca": "/etc/ca.pem"}
                             ).verify == "/etc/ca.pem"


@pytest.mark.parametrize(("info", "reason"), [
    ({}, "Missing the following Redfish parameters in node's driver_info: redfish_address"),
    ({"redfish_address": "ftp://bmc"}, "redfish_address must be an http"),
    ({"redfish_address": "https://bmc:99999"}, "invalid port"),
    ({"redfish_address": "bmc", "redfish_system_id": "Systems/1"}, "must be the path"),
    ({"redfish_address": "bmc", "redfish_verify_ca": "maybe"}, "redfish_verify_ca must be"),
])
def test_redfish_driver_info_errors_name_the_key(info: dict[str, object], reason: str) -> None:
    with pytest.raises(DriverError, match=reason):
        redfish.access_of(info)  # type: ignore[arg-type]


def test_magic_packet_is_six_ff_then_sixteen_macs_then_password() -> None:
    packet = wol.magic_packet("52:54:00:AB:cd:01", "01-02-03-04")
    assert packet[:6] == b"\xff" * 6
    assert packet[6:102] == bytes.fromhex("525400abcd01") * 16
    assert packet[102:] == b"\x01\x02\x03\x04" and len(packet) == 106
    with pytest.raises(DriverError, match="not a MAC"):
        wol.magic_packet("52:54:00:ab:cd")


@pytest.mark.parametrize(("info", "reason"), [
    ({"wol_host": "classroom-broadcast"}, "wol_host must be an IPv4"),
    ({"wol_port": 0}, "wol_port must be between"),
    ({"wol_password": "secret"}, "wol_password"),
])
def test_wol_driver_info_errors(info: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidParameter, match=reason):
        wol._target(info, Settings())  # type: ignore[arg-type]


def test_missing_parameters_is_a_driver_error() -> None:
    assert issubclass(MissingParameters, DriverError)
