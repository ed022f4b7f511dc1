"""Sources: which write key belongs to which source, and which functions a source feeds. Pure.

Segment wires destinations per source; here a `[sources.NAME]` table names a source and
its write key(s), and `[functions.X] sources = [...]` connects a function to some of them
(default: all). The plain `intake.write_keys` stay an unnamed default source, spelled
"default" in config and status and stored as "" (so events and dedupe keys written before
sources existed keep meaning the same thing).

What does not live here: authentication and counting (intake.py), the dedupe key
(store/ingest.py `dedupe_key`), config validation (config.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from .config import DEFAULT_SOURCE_NAME, Config

DEFAULT_SOURCE = ""  # the stored identity of the unnamed default source


def named_sources(config: Config) -> Mapping[str, tuple[str, ...]]:
    """Named source -> its write keys, as intake takes them."""
    return {name: table.keys for name, table in config.sources.items()}


def source_names(config: Config) -> list[str]:
    """Stored identities of every configured source: the default one first (when it has keys or nothing has)."""
    named = sorted(config.sources)
    default = [DEFAULT_SOURCE] if config.intake.write_keys or not named else []
    return default + named


def display_name(source: str) -> str:
    """How status and listings spell a source."""
    return source or DEFAULT_SOURCE_NAME


def connected(wanted: tuple[str, ...] | None, source: str) -> bool:
    """Is a function with `sources = wanted` (None: all) fed by events of `source`?"""
    return wanted is None or display_name(source) in wanted
