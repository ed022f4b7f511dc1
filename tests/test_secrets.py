"""Secret setting references: env, file and credential values, and errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import write_toml

from segfuncd.config import parse_config_file
from segfuncd.errors import ConfigError
from segfuncd.redact import secret_values


def test_env_file_and_credential_values_are_read_and_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token.txt").write_text("file-secret-value\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "hook").write_text("credential-secret-value")
    monkeypatch.setenv("SEGFUNCD_TEST_KEY", "env-secret-value")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    p = write_toml(
        tmp_path,
        '[functions.f]\nsettings = { apiKey = { env = "SEGFUNCD_TEST_KEY" }, token = { file = "token.txt" },'
        ' hook = { credential = "hook" }, plain = "visible" }\n',
    )
    fn = parse_config_file(p).functions["f"]
    assert fn.settings == {
        "apiKey": "env-secret-value",
        "token": "file-secret-value",  # one trailing newline dropped
        "hook": "credential-secret-value",
        "plain": "visible",
    }
    assert set(fn.secret_settings) == {"apiKey", "token", "hook"}
    assert set(secret_values(fn)) == {"env-secret-value", "file-secret-value", "credential-secret-value"}


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ('{ env = "SEGFUNCD_TEST_MISSING" }', "environment variable SEGFUNCD_TEST_MISSING is not set"),
        ('{ file = "nope.txt" }', "nope.txt"),
        ('{ credential = "nope" }', "CREDENTIALS_DIRECTORY is not set"),
        ('{ credential = "../etc/passwd" }', "a name, not a path"),
        ('{ env = "A", file = "b" }', "exactly one of"),
        ("{ env = 3 }", "expected a non-empty string"),
    ],
)
def test_an_unreadable_reference_is_a_config_error_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str, expected: str
) -> None:
    monkeypatch.delenv("SEGFUNCD_TEST_MISSING", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    p = write_toml(tmp_path, f"[functions.teams]\nsettings = {{ apiKey = {setting} }}\n")
    with pytest.raises(ConfigError) as info:
        parse_config_file(p)
    assert info.value.key is not None and info.value.key.startswith("functions.teams.settings.apiKey")
    assert expected in str(info.value)


def test_a_missing_credential_in_the_directory_names_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    p = write_toml(tmp_path, '[functions.teams]\nsettings = { hook = { credential = "absent" } }\n')
    with pytest.raises(ConfigError, match=r"functions\.teams\.settings\.hook: credential 'absent': cannot read"):
        parse_config_file(p)


def test_segfuncctl_reads_the_config_without_the_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    p = write_toml(tmp_path, '[admin]\nsocket = "a.sock"\n[functions.t]\nsettings = { k = { credential = "x" } }\n')
    config = parse_config_file(p, read_secrets=False)
    assert config.admin_socket == tmp_path / "a.sock"
    assert config.functions["t"].secret_settings == ("k",)


def test_a_nested_table_without_reference_keys_stays_a_plain_setting(tmp_path: Path) -> None:
    p = write_toml(tmp_path, '[functions.t]\nsettings = { map = { a = "1" } }\n')
    assert parse_config_file(p).functions["t"].settings == {"map": {"a": "1"}}
