"""`[storage] backend` and `[storage.jetstream]` (issue 16): parsed, defaulted, mistakes named by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from segfuncd.config import parse_config_file
from segfuncd.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "segfuncd.toml"
    p.write_text(text)
    return p


def test_sqlite_stays_the_default(tmp_path: Path) -> None:
    config = parse_config_file(_write(tmp_path, ""))
    assert config.storage.backend == "sqlite"
    assert config.storage.jetstream.servers == ("nats://127.0.0.1:4222",)


def test_a_full_jetstream_table_parses(tmp_path: Path) -> None:
    text = """
[storage]
backend = "jetstream"
[storage.jetstream]
servers = ["nats://10.0.0.1:4222", "tls://10.0.0.2:4222"]
stream = "PROD-1"
replicas = 3
credentials = "nats.creds"
tls_ca = "ca.pem"
max_bytes = 2_000_000
duplicate_window = 3600
"""
    js = parse_config_file(_write(tmp_path, text)).storage.jetstream
    assert js.servers == ("nats://10.0.0.1:4222", "tls://10.0.0.2:4222")
    assert (js.stream, js.replicas, js.max_bytes, js.duplicate_window) == ("PROD-1", 3, 2_000_000, 3600.0)
    assert js.credentials == "nats.creds" and js.tls_ca == "ca.pem"


@pytest.mark.parametrize(
    "text, message",
    [
        ('[storage]\nbackend = "kafka"\n', 'storage.backend: expected "sqlite" or "jetstream", got "kafka"'),
        ("[storage.jetstream]\nreplicas = 2\n", "storage.jetstream.replicas: expected 1, 3 or 5, got 2"),
        ('[storage.jetstream]\nservers = ["127.0.0.1:4222"]\n', "storage.jetstream.servers[0]: expected a URL"),
        ("[storage.jetstream]\nservers = []\n", "storage.jetstream.servers: expected at least one server URL"),
        ('[storage.jetstream]\nservers = "nats://x:4222"\n', "storage.jetstream.servers: expected an array"),
        ('[storage.jetstream]\nstream = "a.b"\n', "storage.jetstream.stream: expected 1-32 letters"),
        ('[storage.jetstream]\nstream = "a b>"\n', "storage.jetstream.stream: expected 1-32 letters"),
        ("[storage.jetstream]\nmax_bytes = 0\n", "storage.jetstream.max_bytes: must be greater than 0"),
        ("[storage.jetstream]\nduplicate_window = -1\n", "storage.jetstream.duplicate_window: must be greater"),
        ("[storage.jetstream]\norphan_grace_s = -5\n", "storage.jetstream.orphan_grace_s: expected seconds, 0 or more"),
        ("[storage.jetstream]\norphan_grace_s = inf\n", "storage.jetstream.orphan_grace_s: expected seconds"),
        ('[storage.jetstream]\norphan_grace_s = "1h"\n', "storage.jetstream.orphan_grace_s"),
        ('[storage.jetstream]\ntls_cert = "c.pem"\n', "storage.jetstream: tls_cert and tls_key go together"),
        ('[storage.jetstream]\ncredentials = "a"\nnkey = "b"\n', "set credentials or nkey, not both"),
        ('[storage.jetstream]\nsevers = ["nats://x:1"]\n', "storage.jetstream.severs: unknown key 'severs'"),
    ],
)
def test_mistakes_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        parse_config_file(p)
    assert str(info.value).startswith(f"{p}: ")
    assert message in str(info.value)
