"""The plugin registry: watches plugins_dir, checks each new version in a runner, swaps it live.

(being written by the lead; PluginState is the shape admin/status reads)
"""

from __future__ import annotations

from dataclasses import dataclass

from .runner.version import PluginVersion


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginState:
    """What the registry knows about one plugin name right now."""

    name: str
    path: str
    enabled: bool
    version: PluginVersion | None  # the live version (None: never loaded successfully)
    loaded_at: float | None  # when `version` went live
    handlers: tuple[str, ...] = ()
    error: str | None = None  # the newest load error ("file:line: message"), None when the file loads
    error_at: float | None = None
    removed: bool = False  # the file is gone: no new events; pending ones are kept

    @property
    def live(self) -> bool:
        return self.version is not None and not self.removed and self.enabled
