"""PluginVersion: one content-addressed version of a plugin file."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginVersion:
    """The source of plugin `name` as it was when read; `hash` identifies it everywhere."""

    name: str  # plugins/NAME.js -> NAME
    path: str  # shown in load errors
    source: str
    hash: str  # the SHA-256 of the source, 64 hex digits (a prefix collides: issue 10 item 5)

    @classmethod
    def from_source(cls, name: str, source: str, *, path: str | None = None) -> PluginVersion:
        digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
        return cls(name=name, path=path or f"{name}.js", source=source, hash=digest)

    @classmethod
    def from_file(cls, path: Path) -> PluginVersion:
        """Read plugins/NAME.js (raises OSError / UnicodeDecodeError)."""
        return cls.from_source(path.stem, path.read_text(encoding="utf-8"), path=str(path))

    @property
    def short(self) -> str:
        """The first 12 hex digits, for display only (never for lookups)."""
        return self.hash[:12]
