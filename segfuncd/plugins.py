"""The plugin registry: watches plugins_dir, checks each new version in a runner, swaps it live.

Rules:
  * A plugin is `plugins_dir/NAME.js`, NAME of letters, digits, `_` and `-`. Dotfiles,
    editor temp files (`.swp`, `~`, `#...#`) and anything else are ignored.
  * A version is identified by the SHA-256 of its source; re-reading unchanged content
    (a save via rename fires several events) changes nothing, so a save is one reload.
  * A new version goes live only after a runner compiled it and found a handler. If it
    fails, the previous version stays live and the error is kept for `status` and logs.
  * The swap is atomic: delivery asks `get(name)` per batch, so in-flight invocations
    finish on the version they were handed and new ones get the new one.
  * A removed file receives no new events; its pending deliveries stay in the store.
  * Files are read by plugin_files.py: never through a symlink out of plugins_dir, and only
    once complete (unchanged for a short settle time), so an event never meets half a file.
  * Whether a function is live, routable or runnable is decided in functions.py, from
    what the registry knows and the config.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from .log import get_logger
from .plugin_files import PluginFileError, read_settled
from .runner import PluginVersion, RunnerPool
from .watch import watch_dir

PLUGIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
# Debounce so a burst of editor events is one scan, well inside the 1 s "live" budget.
WATCH_DEBOUNCE_MS = 150

log = get_logger()


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


def plugin_name(path: Path) -> str | None:
    """NAME for plugins_dir/NAME.js, None for files the registry ignores."""
    if path.suffix != ".js" or path.name.startswith("."):
        return None
    return path.stem if PLUGIN_NAME.match(path.stem) else None


class PluginRegistry:
    """Owns the live version of every plugin; fed by `scan()` and `watch()`."""

    def __init__(
        self,
        plugins_dir: Path,
        *,
        pool: RunnerPool,
        enabled: Callable[[str], bool],
        on_live: Callable[[str], Awaitable[object]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.plugins_dir = plugins_dir
        self._pool = pool
        self._enabled = enabled
        self._on_live = on_live
        self._clock = clock
        self._states: dict[str, PluginState] = {}
        self._lock = trio.Lock()  # one scan at a time: a watch burst and a reload may race

    # --- reading ----------------------------------------------------------------------

    def get(self, name: str) -> PluginState | None:
        """The state of plugin `name`, with `enabled` as the config says now."""
        state = self._states.get(name)
        return None if state is None else dataclasses.replace(state, enabled=self._enabled(name))

    def states(self) -> list[PluginState]:
        """Every plugin seen since start, sorted by name."""
        return [s for s in (self.get(n) for n in sorted(self._states)) if s is not None]

    def set_enabled(self, enabled: Callable[[str], bool]) -> None:
        """Swap the enabled predicate after a config reload."""
        self._enabled = enabled

    # --- loading ----------------------------------------------------------------------

    async def scan(self, names: set[str] | None = None) -> None:
        """Re-read plugins_dir (or just `names`) and load what changed."""
        async with self._lock:
            present = self._present()
            targets = set(present) | set(self._states) if names is None else names
            for name in sorted(targets):
                path = present.get(name)
                if path is None:
                    self._mark_removed(name)
                else:
                    await self._load(name, path)

    async def reload(self) -> None:
        """Rescan everything now (SIGHUP, `segfuncctl reload`)."""
        await self.scan()

    async def watch(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow plugins_dir with inotify (watchfiles) until cancelled."""
        self.plugins_dir.mkdir(parents=True, exist_ok=True)

        async def changed(paths: set[Path]) -> None:
            names = {n for p in paths if (n := plugin_name(p)) is not None}
            if names:
                await self.scan(names)

        await watch_dir(self.plugins_dir, changed, debounce_ms=WATCH_DEBOUNCE_MS, task_status=task_status)

    def _present(self) -> dict[str, Path]:
        try:
            entries = list(self.plugins_dir.iterdir())
        except FileNotFoundError:
            return {}
        return {n: p for p in entries if (n := plugin_name(p)) is not None and p.is_file()}

    async def _load(self, name: str, path: Path) -> None:
        old = self._states.get(name)
        try:
            version = await read_settled(self.plugins_dir, path)
        except FileNotFoundError:
            self._mark_removed(name)
            return
        except PluginFileError as exc:
            self._fail(name, path, old, str(exc))
            return
        except OSError as exc:
            self._fail(name, path, old, f"{path}: cannot read: {exc.strerror or exc}")
            return
        if old is not None and old.version is not None and old.version.hash == version.hash:
            if old.removed or old.error:
                self._states[name] = dataclasses.replace(old, removed=False, error=None, error_at=None)
                if old.removed:
                    await self._went_live(name)
            return
        report = await self._pool.check(version)
        if not report.ok:
            where = f"{path}:{report.line}" if report.line else str(path)
            self._fail(name, path, old, f"{where}: {report.error}")
            return
        self._states[name] = PluginState(
            name=name,
            path=str(path),
            enabled=self._enabled(name),
            version=version,
            loaded_at=self._clock(),
            handlers=tuple(report.handlers),
        )
        log.info("plugin_loaded", function=name, version=version.hash, handlers=list(report.handlers))
        await self._went_live(name)

    async def _went_live(self, name: str) -> None:
        if self._on_live is not None:
            await self._on_live(name)

    def _fail(self, name: str, path: Path, old: PluginState | None, error: str) -> None:
        if old is None:
            old = PluginState(name=name, path=str(path), enabled=self._enabled(name), version=None, loaded_at=None)
        if old.error == error and not old.removed:
            return
        self._states[name] = dataclasses.replace(old, error=error, error_at=self._clock(), removed=False)
        kept = old.version.hash if old.version else None
        log.error("plugin_load_failed", function=name, error=error, kept_version=kept)

    def _mark_removed(self, name: str) -> None:
        old = self._states.get(name)
        if old is None or old.removed:
            return
        self._states[name] = dataclasses.replace(old, removed=True)
        log.info("plugin_removed", function=name)
