"""The parts of the login prompt (#20) that need no server: its French text, the refusals a
user reads, the agent's CA and console settings, the kernel parameter that hands the CA over,
and the login record on a node."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent import api_client, login_prompt, login_texts
from agent.api_client import ApiError
from agent.config import load
from agent.console import printable
from services.classroom.pc_logins import (
    PC_LOGIN,
    clear_login,
    end_login,
    ended_with_unsaved_work,
    login_of,
    record_login,
)
from services.common.bootconfig.params import UnsafeScriptValue, agent_kernel_params
from services.common.config import Settings
from services.common.identity import Identity
from services.common.models import Node
from tests.support.throwaway_ca import create_ca

AGENT = Path(__file__).resolve().parents[2] / "agent"


def _texts_used_by_the_prompt() -> set[str]:
    """Every literal key passed to ``text(language, KEY, ...)`` in agent/login_prompt.py."""
    found: set[str] = set()
    for node in ast.walk(ast.parse((AGENT / "login_prompt.py").read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "text":
            for argument in node.args[1:2]:
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                    found.add(argument.value)
    return found | {"fresh start", "resume", "maintenance"}


def test_every_text_of_the_prompt_has_its_french_translation() -> None:
    used = _texts_used_by_the_prompt()
    assert len(used) > 15
    assert used <= set(login_texts.FRENCH), used - set(login_texts.FRENCH)
    assert login_texts.text("fr", "Room {room}", room="B12") == "Salle B12"
    assert login_texts.text("de", "Room {room}", room="B12") == "Room B12"


@pytest.mark.parametrize(("error", "choosing", "said"), [
    (ApiError("x", 401), False, "Wrong user name or password."),
    (ApiError("x", 401), True, "Your login has expired: log in again."),
    (ApiError("x", 429, retry_after_s=300), False, "wait 5 min"),
    (ApiError("x", 429, retry_after_s=61), False, "wait 2 min"),
    (ApiError("x", 503), False, "The user directory cannot be reached"),
    (ApiError("x"), False, "The Enclume server cannot be reached"),
    (ApiError("x", tls_failed=True), False, "not secure"),
    (ApiError("x", 409, fault="No class is on in room B12: ask your teacher."), False,
     "Refused: No class is on in room B12: ask your teacher."),
])
def test_what_the_user_reads_of_each_refusal(error: ApiError, choosing: bool, said: str
                                             ) -> None:
    assert said in login_prompt.refusal("en", error, choosing)


def test_what_the_api_sends_cannot_redraw_the_screen() -> None:
    assert printable("lab\x1b[2J 3\r\n") == "lab[2J 3"
    line = login_prompt.choice_line("en", {"action": "resume", "state": {
        "label": "a\x1bb", "last_used_at": "2026-12-01T14:03:09Z", "size_bytes": 3 << 30}},
        None)
    assert line == 'Resume "ab" (saved 2026-12-01 14:03, 3.0 GiB)'


def test_credentials_go_to_an_https_api_only() -> None:
    api = login_prompt.LoginApi("http://192.0.2.1:6385", "node", "token", 1.0)
    with pytest.raises(ApiError) as refused:
        api.login("sam", "secret")
    assert refused.value.tls_failed


def test_the_agent_trusts_only_a_real_ca(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a PEM CA"):
        api_client.trust_ca("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
    api_client.trust_ca(create_ca(tmp_path).cert_file.read_text())
    assert api_client._tls is not None and api_client._tls.get_ca_certs()
    api_client._tls = None


def test_the_ca_and_the_console_come_from_the_kernel_command_line(tmp_path: Path) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("enclume.api_url=https://10.0.0.1:6385 enclume.node=n1 "
                       "enclume.api_ca_url=http://10.0.0.1:8080/agent-api-ca.pem "
                       "enclume.login_console=/dev/ttyS0\n")
    config, _ = load(["--cmdline-file", str(cmdline)])
    assert config.api_ca_url == "http://10.0.0.1:8080/agent-api-ca.pem"
    assert config.login_console == "/dev/ttyS0" and config.api_ca_file is None
    config, _ = load(["--cmdline-file", str(cmdline), "--login-console", "/dev/pts/3",
                      "--api-ca-file", "/etc/ca.pem"])
    assert config.login_console == "/dev/pts/3" and config.api_ca_file == "/etc/ca.pem"
    cmdline.write_text("enclume.api_url=https://10.0.0.1:6385\n")
    assert load(["--cmdline-file", str(cmdline)])[0].login_console == "/dev/console"


def test_the_kernel_parameters_name_the_ca_when_one_is_configured(tmp_path: Path) -> None:
    assert "api_ca_url" not in agent_kernel_params("https://api:6385", "n1")
    settings = Settings(process={"data_dir": tmp_path},
                        boot={"public_url": "http://10.0.0.1:8080/"},
                        deploy={"agent_api_ca_file": tmp_path / "ca.pem"})
    assert settings.agent_api_ca_url == "http://10.0.0.1:8080/agent-api-ca.pem"
    assert agent_kernel_params("https://api:6385", "n1", "console=ttyS0",
                               settings.agent_api_ca_url) == (
        "enclume.api_url=https://api:6385 enclume.node=n1 "
        "enclume.api_ca_url=http://10.0.0.1:8080/agent-api-ca.pem console=ttyS0")
    assert Settings(process={"data_dir": tmp_path}).agent_api_ca_url is None
    with pytest.raises(UnsafeScriptValue):
        agent_kernel_params("https://api:6385", "n1", ca_url="http://x/$ca")


def test_a_login_is_recorded_and_cleared_on_the_node() -> None:
    node = Node(driver_internal_info={"agent_url": "http://10.0.0.5:9999"})
    at = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    record_login(node, Identity("sam", frozenset({"student"}), frozenset({"B12"})),
                 {"action": "resume", "user": "sam", "image_version": "v-uuid",
                  "state": {"uuid": "s-uuid", "label": "lab 3"}}, at)
    assert node.driver_internal_info[PC_LOGIN] == {
        "user": "sam", "action": "resume", "state": "s-uuid", "image_version": "v-uuid",
        "at": "2026-12-05T10:00:00+00:00"}
    assert login_of(node) == node.driver_internal_info[PC_LOGIN]
    clear_login(node)
    assert node.driver_internal_info == {"agent_url": "http://10.0.0.5:9999"}
    assert login_of(node) is None


def test_an_ended_login_with_work_to_save_is_what_the_room_page_reads() -> None:
    """A log-out keeps a student's login marked ``ended_at`` (the room page's card says the
    work waits for the next restore); a login still on, or a maintenance one, says nothing."""
    at = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    sam, tina = Node(driver_internal_info={}), Node(driver_internal_info={})
    record_login(sam, Identity("sam", frozenset({"student"}), frozenset()),
                 {"action": "fresh", "image_version": "v-uuid"}, at)
    record_login(tina, Identity("tina", frozenset({"teacher"}), frozenset()),
                 {"action": "maintenance"}, at)
    assert ended_with_unsaved_work(sam) is None  # still logged in
    for node in (sam, tina):
        end_login(node, at)
    ended = ended_with_unsaved_work(sam)
    assert ended is not None and (ended["user"], ended["ended_at"]) == (
        "sam", "2026-12-05T12:00:00+00:00")
    assert ended_with_unsaved_work(tina) is None and login_of(tina) is None
