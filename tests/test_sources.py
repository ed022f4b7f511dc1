"""Sources in the config, and which functions a source feeds."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import write_toml

from segfuncd.config import parse_config_file
from segfuncd.errors import ConfigError
from segfuncd.sources import connected, display_name, named_sources, source_names


def test_sources_and_their_keys(tmp_path: Path) -> None:
    c = parse_config_file(
        write_toml(
            tmp_path,
            '[intake]\nwrite_keys = ["d"]\n[sources.web]\nwrite_key = "w1"\nwrite_keys = ["w2", "w1"]\n'
            '[functions.f]\nsources = ["web", "default"]\n',
        )
    )
    assert named_sources(c) == {"web": ("w1", "w2")}
    assert source_names(c) == ["", "web"]
    assert c.functions["f"].sources == ("web", "default")
    assert c.function("other").sources is None


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("[sources.web]\n", "sources.web", "needs write_key or write_keys"),
        ('[sources.default]\nwrite_key = "k"\n', "sources.default", "unnamed source"),
        ('[sources.a]\nwrite_key = "k"\n[sources.b]\nwrite_keys = ["k"]\n', "sources.b.write_keys", "also in"),
        ('[intake]\nwrite_keys = ["k"]\n[sources.b]\nwrite_key = "k"\n', "sources.b.write_keys", "intake.write_keys"),
        ('[functions.f]\nsources = ["nope"]\n', "functions.f.sources[0]", "unknown source 'nope'"),
        ("[sources.web]\nwrite_key = 5\n", "sources.web.write_key", "expected a string"),
        ('[intake]\ntrusted_proxies = ["10.0.0.0/33"]\n', "intake.trusted_proxies[0]", "not an IP address"),
    ],
)
def test_source_mistakes_name_the_key(tmp_path: Path, text: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_file(write_toml(tmp_path, text))
    assert info.value.key == key and message in str(info.value)


def test_connected_defaults_to_every_source() -> None:
    assert connected(None, "web") and connected(None, "")
    assert connected(("web",), "web") and not connected(("web",), "")
    assert connected(("default",), "") and display_name("") == "default"
