"""Where the CLI's settings come from: flags, then environment, then file, then defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli.enclume.config import DEFAULT_URL, ConfigError, default_config_path, load_config


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("ENCLUME_URL", "ENCLUME_USERNAME", "ENCLUME_PASSWORD", "ENCLUME_API_VERSION",
                 "ENCLUME_TIMEOUT_S", "ENCLUME_FORMAT", "ENCLUME_CLI_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def test_defaults_without_file_or_environment() -> None:
    config = load_config()
    assert config.url == DEFAULT_URL and config.format == "table"
    assert config.username is None and config.password is None and config.api_version is None


def test_flag_beats_environment_beats_file(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    path = default_config_path()
    path.parent.mkdir(parents=True)
    path.write_text("url: http://file:1\nusername: file-user\nformat: yaml\ntimeout_s: 5\n")
    assert load_config().url == "http://file:1"
    monkeypatch.setenv("ENCLUME_URL", "http://env:2/")
    monkeypatch.setenv("ENCLUME_FORMAT", "json")
    config = load_config()
    assert (config.url, config.format, config.username, config.timeout_s) == \
        ("http://env:2", "json", "file-user", 5.0)
    config = load_config(url="http://flag:3", format=None, username="flag-user")
    assert (config.url, config.format, config.username) == ("http://flag:3", "json",
                                                            "flag-user")


def test_named_file_from_flag_or_environment(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("url: http://a:1\n")
    (tmp_path / "b.yaml").write_text("url: http://b:1\n")
    monkeypatch.setenv("ENCLUME_CLI_CONFIG", str(tmp_path / "a.yaml"))
    assert load_config().url == "http://a:1"
    assert load_config(cli_config=tmp_path / "b.yaml").url == "http://b:1"
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(cli_config=tmp_path / "missing.yaml")


@pytest.mark.parametrize(("content", "message"), [
    ("pasword: x\n", "unknown setting"),
    ("- a\n- b\n", "expected a mapping"),
    ("url: [unclosed\n", "is not valid YAML: line 2: while parsing a flow sequence"),
    ("url: ftp://x\n", "url: Value error, must start with http"),
    ("api_version: '2'\n", "api_version"),
    ("format: xml\n", "format"),
])
def test_bad_files_are_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "c.yaml").write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_config(cli_config=tmp_path / "c.yaml")


def test_password_is_secret(tmp_path: Path) -> None:
    config = load_config(password="hunter2-secret", username="admin")
    assert config.password is not None
    assert config.password.get_secret_value() == "hunter2-secret"
    assert "hunter2-secret" not in repr(config) and "hunter2-secret" not in str(config)
    (tmp_path / "c.yaml").write_text("password: hunter2-secret\nformat: xml\n")
    with pytest.raises(ConfigError) as caught:
        load_config(cli_config=tmp_path / "c.yaml")
    assert "hunter2-secret" not in str(caught.value)


def test_yaml_error_in_the_file_never_shows_its_text(tmp_path: Path) -> None:
    # PyYAML's own message quotes the offending line: here, the password.
    (tmp_path / "c.yaml").write_text('username: admin\npassword: "s3cr3t-pass\n')
    with pytest.raises(ConfigError) as caught:
        load_config(cli_config=tmp_path / "c.yaml")
    message = str(caught.value)
    assert "s3cr3t" not in message
    assert message.startswith(f"configuration file {tmp_path / 'c.yaml'} is not valid YAML: "
                              "line 3: while scanning a quoted scalar")
