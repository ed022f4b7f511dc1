"""Config reload rules: what a reload cannot apply, and watching the config file.

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
from typing import Any

import trio

from .config import Config
from .errors import ConfigError
from .log import get_logger
from .watch import watch_dir

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
    "storage.path": lambda c: c.db_path,
    "storage.synchronous": lambda c: c.storage.synchronous,
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
