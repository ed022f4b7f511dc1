"""Config reload: the config in force, what a reload applies and to which part, watching the file.

Rules:
  * A reload applies every key it can at once: [retry], [functions.*] (settings, filters,
    enabled, batch), intake write keys and CORS, storage limits, runtime limits (the runners
    are replaced once idle) and runtime.drain_timeout_s.
  * The keys in RESTART_KEYS are bound to things opened at start (listeners, sockets, the
    SQLite file, the plugins directory, the number of runners). A reload names each one
    that differs from what is *running* ("restart needed for: intake.listen"), every time,
    until a restart; everything else in the same file is applied.
  * A config that does not parse is not applied at all: the old one stays in force.
  * The config file is watched like the plugins directory: saving it is a reload. Content
    that did not change (a touch, a save of the same text) is not a reload.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from .config import Config, parse_config_file
from .errors import ConfigError
from .functions import Functions, compile_all_filters
from .log import get_logger
from .peers import TrustedProxies
from .sources import named_sources
from .watch import watch_dir

if TYPE_CHECKING:
    from .delivery import Dispatcher
    from .filters import FilterChain
    from .intake import Intake
    from .pausing import Pauses
    from .plugins import PluginRegistry, PluginState
    from .runner import RunnerPool
    from .storage import Storage

log = get_logger()

# dotted key -> how to read its running value from a Config (paths resolved)
RESTART_KEYS: dict[str, Callable[[Config], Any]] = {
    "intake.listen": lambda c: c.intake.listen,
    "intake.unix_socket": lambda c: c.intake_socket,
    "intake.max_connections": lambda c: c.intake.max_connections,
    "intake.idle_timeout_s": lambda c: c.intake.idle_timeout_s,
    "intake.read_timeout_s": lambda c: c.intake.read_timeout_s,
    "admin.socket": lambda c: c.admin_socket,
    "admin.group": lambda c: c.admin.group,
    "admin.metrics_listen": lambda c: c.admin.metrics_listen,
    "admin.console_listen": lambda c: c.admin.console_listen,
    "storage.path": lambda c: c.db_path,
    "storage.synchronous": lambda c: c.storage.synchronous,
    "storage.backend": lambda c: c.storage.backend,
    "storage.jetstream": lambda c: c.storage.jetstream,
    "runtime.plugins_dir": lambda c: c.plugins_dir,
    "runtime.workers": lambda c: c.workers,
}


def restart_needed(running: Config, new: Config) -> list[str]:
    """The keys of `new` that differ from the `running` daemon's and only a restart applies."""
    return [key for key, read in RESTART_KEYS.items() if read(running) != read(new)]


def reload_message(restart: list[str]) -> str:
    """What `segfuncctl reload` prints after a reload that parsed."""
    message = "config reloaded"
    if restart:
        message += f"; restart needed for: {', '.join(restart)}"
    return message


class Reloader:
    """The config in force, and how a new one reaches each running part.

    `config` is what every part reads now (swapped by reload); `running` is what the
    listeners, sockets, store and pool were opened with (RESTART_KEYS compare to it).
    The parts are attached by the daemon as they start; reload applies to those present.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.running = config
        self.filters: dict[str, FilterChain] = compile_all_filters(config)
        self.registry: PluginRegistry | None = None
        self.intake: Intake | None = None
        self.store: Storage | None = None
        self.pool: RunnerPool | None = None
        self.dispatcher: Dispatcher | None = None
        self.pauses: Pauses | None = None  # the paused set (pausing.py), once the store is open
        self.functions = Functions(_NoRegistry(), lambda: self.config, lambda: self.filters)

    def attach_registry(self, registry: PluginRegistry) -> Functions:
        """Start answering about functions from `registry`; the Functions every part shares."""
        self.registry = registry
        self.functions = Functions(registry, lambda: self.config, lambda: self.filters, paused=self.paused_names)
        return self.functions

    def enabled(self, name: str) -> bool:
        return self.config.function(name).enabled

    def paused_names(self) -> frozenset[str]:
        """Functions paused with `segfuncctl pause` (none until the daemon hands `pauses` in)."""
        return self.pauses.names if self.pauses is not None else frozenset()

    async def reload(self) -> str:
        """Re-read the config file, apply what can be applied, rescan plugins.

        A config that does not parse changes nothing (ConfigError); see the module's rules.
        """
        if self.config.source.startswith("<"):
            message = "no config file: plugins rescanned"
        else:
            try:
                new = await trio.to_thread.run_sync(parse_config_file, Path(self.config.source))
                filters = compile_all_filters(new)
            except ConfigError as exc:
                log.error("config_reload_failed", error=str(exc))
                # Plugins still get rescanned: a reload is also how an operator says "look now".
                await self.rescan()
                raise ConfigError(f"config not reloaded, the old one stays in force: {exc}") from exc
            self.config = new
            self.filters = filters
            self.apply(new)
            restart = restart_needed(self.running, new)
            message = reload_message(restart)
            if restart:
                log.warning("config_reload_needs_restart", keys=restart)
        await self.rescan()
        log.info("reloaded", message=message)
        return message

    def apply(self, new: Config) -> None:
        """Hand the reloaded values to each running part (the RESTART_KEYS excepted)."""
        if self.intake is not None:
            self.intake.set_keys(new.intake.write_keys, named_sources(new))
            self.intake.allow_remote_without_key = new.intake.allow_remote_without_key
            self.intake.cors_origins = frozenset(new.intake.cors_origins)
            self.intake.trusted_proxies = TrustedProxies.parse(new.intake.trusted_proxies)
        if self.store is not None:
            self.store.set_limits(
                max_pending=new.storage.max_pending,
                retention_s=new.storage.retention_hours * 3600,
                log_lines=new.storage.log_lines,
            )
        if self.pool is not None:
            self.pool.reconfigure(
                timeout_ms=new.runtime.timeout_ms,
                recycle_after=new.runtime.recycle_after,
                cpu_ms=new.runtime.cpu_ms,
                memory_mb=new.runtime.memory_mb,
                egress_deny=new.runtime.egress_deny,
                egress_allow=new.runtime.egress_allow,
            )
        if self.dispatcher is not None:
            self.dispatcher.set_retry(
                max_attempts=new.retry.max_attempts,
                base_delay_s=new.retry.base_delay_s,
                lease_s=lease_seconds(new),
            )

    async def rescan(self) -> None:
        """Rescan the plugins (with `enabled` as the config says now) and warn about stray tables."""
        if self.registry is None:
            return
        self.registry.set_enabled(self.enabled)
        await self.registry.reload()
        self.warn_about_config()

    def warn_about_config(self) -> None:
        """Log a warning per `[functions.NAME]` table that matches no plugin file."""
        for w in self.functions.warnings():
            log.warning(
                "function_config_without_plugin", function=w.function, did_you_mean=w.did_you_mean, message=w.message
            )


def lease_seconds(config: Config) -> float:
    """A lease outlives the slowest invocation (timeout plus queueing) with a margin."""
    return max(60.0, 3 * config.runtime.timeout_ms / 1000)


class _NoRegistry:
    """Before the registry is up: no plugins."""

    def get(self, name: str) -> PluginState | None:
        return None

    def states(self) -> list[PluginState]:
        return []


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


async def watch_config(
    path: Path,
    reload: Callable[[], Awaitable[object]],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Call `reload()` whenever the content of the config file at `path` changes.

    Watches the file's folder (an editor's save replaces the file: a watch on the file
    itself would be lost). A reload that fails keeps the old config (ConfigError, logged
    by `reload` itself); the next save tries again.
    """
    path = path.resolve()
    seen = _digest(path)

    async def changed(paths: set[Path]) -> None:
        nonlocal seen
        if not any(p.name == path.name for p in paths):
            return
        digest = await trio.to_thread.run_sync(_digest, path)
        if digest is None or digest == seen:
            return  # gone for now (mid-save) or unchanged
        seen = digest
        log.info("config_file_changed", path=str(path))
        try:
            await reload()
        except ConfigError:
            pass  # logged as config_reload_failed; the old config stays in force

    await watch_dir(path.parent, changed, task_status=task_status)
