"""Config parsing: defaults, discovery, and errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from segfuncd.config import Config, find_config, load_config, parse_config_file
from segfuncd.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "segfuncd.toml"
    p.write_text(text)
    return p


def test_defaults_match_the_contract() -> None:
    c = Config(base_dir=Path("/srv"))
    assert c.intake.listen == "127.0.0.1:8088"
    assert c.plugins_dir == Path("/srv/plugins")
    assert c.db_path == Path("/srv/var/segfuncd.db")
    assert c.admin_socket == Path("/srv/var/admin.sock")
    assert c.intake.write_keys == ()
    assert c.retry.max_attempts == 10 and c.retry.base_delay_s == 30
    assert c.runtime.egress_deny == () and c.runtime.egress_allow == ()  # built-in deny list: runner/egress.py
    assert c.function("anything").enabled is True


def test_example_config_parses(tmp_path: Path) -> None:
    c = parse_config_file(ROOT / "config.example.toml")
    assert c.functions["example"].secret_settings == ("apiKey",)


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    p = write(tmp_path, '[storage]\npath = "state/q.db"\n[runtime]\nplugins_dir = "/abs/plugins"\n')
    c = parse_config_file(p)
    assert c.db_path == tmp_path / "state/q.db"
    assert c.plugins_dir == Path("/abs/plugins")


def test_function_tables_with_settings_filters_and_batch(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
[functions.teams]
enabled = false
settings = { apiKey = "k", channel = "ops" }
batch = { max_events = 50 }
[[functions.teams.filters]]
if = "type = 'track'"
action = "sample"
percent = 0.5
path = "userId"
""",
    )
    fn = parse_config_file(p).functions["teams"]
    assert fn.enabled is False
    assert fn.settings == {"apiKey": "k", "channel": "ops"}
    assert fn.batch is not None and fn.batch.max_events == 50 and fn.batch.max_wait_ms == 10_000
    assert fn.filters[0].if_ == "type = 'track'" and fn.filters[0].percent == 0.5


@pytest.mark.parametrize(
    "text, message",
    [
        ('[retry]\nmax_attempts = "ten"\n', 'retry.max_attempts: expected an integer, got "ten"'),
        ("[retyr]\n", "retyr: unknown key 'retyr'"),
        ('[runtime]\nplugin_dir = "x"\n', "runtime.plugin_dir: unknown key 'plugin_dir'"),
        ("[runtime]\nworkers = -1\n", "runtime.workers: must be 0"),
        ('[storage]\nsynchronous = "off"\n', 'storage.synchronous: expected "normal" or "full", got "off"'),
        ('[intake]\nlisten = "8088"\n', 'intake.listen: expected "host:port"'),
        ('[intake]\nwrite_keys = "k"\n', "intake.write_keys: expected an array"),
        ('[runtime]\negress_deny = ["nope"]\n', "runtime.egress_deny[0]: not an IP address or CIDR network"),
        ("[functions.a]\nenabled = 1\n", "functions.a.enabled: expected true or false, got 1"),
        ('[[functions.a.filters]]\naction = "explode"\n', "functions.a.filters[0].action: expected one of"),
        ("[functions.a]\nbatch = { max_events = 401 }\n", "functions.a.batch.max_events: must be between 1 and 400"),
        ("[intake\n", "invalid TOML"),
    ],
)
def test_mistakes_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        parse_config_file(p)
    assert str(info.value).startswith(f"{p}: ")
    assert message in str(info.value)


def test_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SEGFUNCD_CONFIG", raising=False)
    assert find_config() in (None, Path("/etc/segfuncd/segfuncd.toml"))
    local = write(tmp_path, "")
    assert find_config() == Path("segfuncd.toml")
    other = tmp_path / "other.toml"
    other.write_text("[retry]\nmax_attempts = 3\n")
    monkeypatch.setenv("SEGFUNCD_CONFIG", str(other))
    assert load_config().retry.max_attempts == 3
    assert find_config(local) == local  # --config wins over the environment


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        find_config(tmp_path / "nope.toml")
