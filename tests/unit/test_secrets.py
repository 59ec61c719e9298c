"""The one secret scrubber (services/common/secrets.py) and where it is applied: URL passwords
holding "@", secret-named pairs, secret values of any type seen in a driver_info, every log
line (third-party loggers included), and BMC library errors of unexpected types."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common import secrets
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.models import Node, NodeHistory
from services.drivers import ipmi, redfish
from services.drivers.base import DriverError
from services.drivers.driver_info import InvalidParameter


def test_a_url_password_is_masked_up_to_the_last_at_before_the_host() -> None:
    text = "GET https://admin:p@ss@w0rd@bmc.example:8000/redfish/v1 failed"
    assert secrets.scrub(text) == "GET https://admin:******@bmc.example:8000/redfish/v1 failed"
    assert secrets.scrub("http://u:simple@h/ and http://v:x@y@z/") == (
        "http://u:******@h/ and http://v:******@z/")
    assert secrets.scrub("http://host/path@v1 and mailto:x@y") == (
        "http://host/path@v1 and mailto:x@y")


def test_secret_named_pairs_are_masked_in_any_notation() -> None:
    text = ("body: {'UserName': 'admin', 'Password': 'hunter22'} ipmi_password=abc123 "
            '"redfish_password": 918273645, X-Auth-Token: tok-en-12, user=admin')
    scrubbed = secrets.scrub(text)
    for secret in ("hunter22", "abc123", "918273645", "tok-en-12"):
        assert secret not in scrubbed
    assert "'UserName': 'admin'" in scrubbed and "user=admin" in scrubbed


def test_known_secret_values_of_any_type_are_scrubbed_wherever_they_appear() -> None:
    secrets.remember({"ipmi_password": 73914562, "redfish_password": ["in-a-list-91"],
                      "x": {"kg_key": {"deep": "in-a-dict-42"}},
                      "redfish_address": "https://admin:from-the-url-7@bmc"})
    text = ("login 73914562 refused; [ 'in-a-list-91' ] {'deep': 'in-a-dict-42'} "
            "from-the-url-7")
    scrubbed = secrets.scrub(text)
    for secret in ("73914562", "in-a-list-91", "in-a-dict-42", "from-the-url-7"):
        assert secret not in scrubbed, scrubbed
    assert secrets.scrub("port 623") == "port 623"  # not secrets: left alone
    assert secrets.secret_values({"ipmi_password": "abc"}) == set()  # too short to scrub
    assert secrets.secret_values({"configdrive": "x" * 100_000}) == set()  # masked by key


def test_every_log_line_is_scrubbed_third_party_and_tracebacks_included() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    secrets.scrub_logs([handler])
    secrets.scrub_logs([handler])  # once only
    assert sum(isinstance(f, secrets.LogScrubber) for f in handler.filters) == 1
    logger = logging.getLogger("sushy.connector.test")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    secrets.remember({"redfish_password": "value-only-known-5"})
    try:
        logger.debug("HTTP request: POST %s; body: %s", "http://a:b@c@bmc/x",
                     {"UserName": "u", "Password": "value-only-known-5"})
        try:
            raise ValueError("login with value-only-known-5 failed")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert "value-only-known-5" not in written and "b@c" not in written, written
    assert "http://a:******@bmc/x" in written and "ValueError" in written


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'secrets.sqlite'}"
    upgrade_schema(url)
    yield Database(url)


def test_stored_outward_text_is_scrubbed_and_loaded_secrets_are_remembered(
        db: Database) -> None:
    with db.session() as session:
        node = Node(driver="fake-hardware", driver_info={"ipmi_password": 55501234})
        session.add(node)
        session.flush()
        node.last_error = "power on failed at http://u:pw@x@bmc: code 55501234"
        session.add(NodeHistory(node_id=node.id, event_type="x", severity="ERROR",
                                event="again 55501234"))
    with db.session() as session:
        stored = session.get(Node, node.id)
        assert stored is not None
        assert stored.last_error == "power on failed at http://u:******@bmc: code ******"
        history = session.query(NodeHistory).one()
        assert history.event == "again ******"


def test_a_non_string_password_is_never_echoed_by_driver_info_checks() -> None:
    with pytest.raises(InvalidParameter) as refused:
        ipmi.access_of({"ipmi_address": "b", "ipmi_password": ["list-pw-1234"]})
    assert "list-pw-1234" not in str(refused.value)
    assert "ipmi_password must be a string, not a list" in str(refused.value)


class _Boom(Exception):
    pass


@pytest.mark.parametrize("raised", [KeyError("x"), TypeError("'NoneType' object is not "
                                    "subscriptable: pw=hunter-9"), _Boom("raw")])
def test_an_unexpected_pyghmi_exception_is_a_clean_driver_error(
        tmp_path: Path, raised: Exception) -> None:
    sessions = ipmi.IpmiSessions(Settings(
        process={"data_dir": tmp_path},
        ipmi={"timeout_s": 5},
    ))
    access = ipmi.access_of({"ipmi_address": "192.0.2.9", "ipmi_password": "hunter-9"})
    sessions._commands[access] = object()  # type: ignore[assignment] # no real session needed

    def fails(_command: object) -> None:
        raise raised

    with pytest.raises(DriverError) as failed:
        sessions.run(access, "power status", fails)
    message = str(failed.value)
    assert message.startswith("IPMI call failed: power status at 192.0.2.9")
    assert type(raised).__name__ in message and "hunter-9" not in message
    assert "raw" not in message and "subscriptable" not in message
    assert access not in sessions._commands  # the session that failed is dropped


def test_an_unexpected_sushy_exception_is_a_clean_driver_error(tmp_path: Path) -> None:
    sessions = redfish.RedfishSessions(Settings(
        process={"data_dir": tmp_path},
        redfish={"timeout_s": 5},
    ))
    access = redfish.access_of({"redfish_address": "https://u:pw@with@at@bmc.example",
                                "redfish_password": "pw-x"})
    assert access.where == "https://u:******@bmc.example"

    def fails(_system: object) -> None:
        raise AttributeError("'NoneType' has no attribute 'Members'")

    sessions.system = lambda _access: object()  # type: ignore[method-assign]
    with pytest.raises(DriverError) as failed:
        sessions.run(access, "power status", fails)
    message = str(failed.value)
    assert message.startswith("Redfish call failed: power status at https://u:******@bmc")
    assert "Members" not in message and "with@at" not in message


def test_snmp_keys_are_masked_as_ironic_masks_them() -> None:
    # Ironic's node_sanitize masks snmp_auth_key and snmp_priv_key of driver_info too.
    masked = secrets.mask({"snmp_auth_key": "k1", "snmp_priv_key": "k2", "snmp_version": "3"})
    assert masked == {"snmp_auth_key": secrets.MASK, "snmp_priv_key": secrets.MASK,
                      "snmp_version": "3"}
