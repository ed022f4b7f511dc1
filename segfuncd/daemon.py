"""`segfuncd`: load the config, then run everything in one root nursery until a signal.

Start order (each service is started with `nursery.start`, so READY=1 reaches systemd only
once everything listens): state lock -> store -> runner pool -> plugins (first scan) ->
delivery -> intake -> admin.

Shutdown on SIGTERM / SIGINT, staged:
  1. STOPPING=1; intake answers 503 to new events (nothing half-accepted: a request that
     was committing still gets its 200);
  2. delivery stops leasing and lets in-flight invocations finish for up to
     runtime.drain_timeout_s;
  3. deliveries still leased go back to pending (shielded, short deadline), SQLite closes;
  4. exit 0.
A second signal skips the drain: leases expire on their own, so nothing committed is lost.
SIGHUP (and `segfuncctl reload`) re-reads the config and rescans the plugins.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TextIO

import trio

from . import __version__
from .admin import Admin
from .config import AdminConfig, Config, load_config, parse_config_file
from .console import serve_console, token_path
from .delivery import Target, serve_delivery
from .errors import AlreadyRunning, ConfigError, SegfuncdError
from .filters import FilterChain, compile_filters
from .intake import Intake, serve_intake
from .log import LogTap, configure, get_logger
from .metrics import Metrics
from .plugins import PluginRegistry
from .runner import RunnerPool, open_runner_pool
from .server import (
    Handler,
    Request,
    Response,
    ServerLimits,
    json_response,
    open_tcp_listeners_for,
    open_unix_listener,
    serve_http,
)
from .spec import route_event
from .store import LogRecord, Store, open_store
from .systemd import notify, watchdog_interval_s

log = get_logger()

EXIT_OK = 0
EXIT_ERROR = 1  # a runtime problem (state dir locked, socket in use, ...)
EXIT_CONFIG = 2  # the config is invalid

LOG_PUMP_INTERVAL_S = 0.25


@contextmanager
def state_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` so two daemons never share one state directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid_text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            raise AlreadyRunning(str(path), int(pid_text) if pid_text.isdigit() else None) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


class Daemon:
    """The running daemon's parts; `config` is swapped by reload, nothing else is global."""

    def __init__(self, config: Config, *, tap: LogTap) -> None:
        self.config = config
        self.tap = tap
        self.started_at = time.time()
        self.registry: PluginRegistry | None = None  # set by run() once the pool is up
        self.filters: dict[str, FilterChain] = {}

    def target(self, name: str) -> Target:
        """What delivery needs to run function `name` now: live version, config, filters."""
        assert self.registry is not None
        state = self.registry.get(name)
        config = self.config.function(name)
        reason = None
        if state is None:
            reason = f"no plugin file {name}.js in {self.config.plugins_dir}"
        elif state.removed:
            reason = f"plugin file {state.path} was removed"
        elif state.version is None:
            reason = f"function fails to load: {state.error}"
        elif not config.enabled:
            reason = "function is disabled in the config"
        return Target(
            version=state.version if reason is None and state is not None else None,
            config=config,
            filters=self.filters.get(name),
            reason=reason,
            handlers=state.handlers if state is not None else (),
        )

    # --- config ---------------------------------------------------------------------

    def enabled(self, name: str) -> bool:
        return self.config.function(name).enabled

    async def reload(self) -> str:
        """Re-read the config file and rescan plugins; keeps the old config if the new one is bad."""
        if self.config.source.startswith("<"):
            message = "no config file: plugins rescanned"
        else:
            try:
                new = await trio.to_thread.run_sync(parse_config_file, Path(self.config.source))
                filters = compile_all_filters(new)
            except ConfigError as exc:
                log.error("config_reload_failed", error=str(exc))
                # Plugins still get rescanned: a reload is also how an operator says "look now".
                await self._rescan()
                raise ConfigError(f"config not reloaded, the old one stays in force: {exc}") from exc
            restart = _needs_restart(self.config, new)
            self.config = new
            self.filters = filters
            message = "config reloaded"
            if restart:
                message += f"; restart to apply: {', '.join(restart)}"
                log.warning("config_reload_needs_restart", keys=restart)
        await self._rescan()
        log.info("reloaded", message=message)
        return message

    async def _rescan(self) -> None:
        assert self.registry is not None
        self.registry.set_enabled(self.enabled)
        await self.registry.reload()


def _needs_restart(old: Config, new: Config) -> list[str]:
    """Keys whose change only takes effect on restart (listeners, storage, pool size)."""
    keys = []
    for section in ("intake", "admin", "storage"):
        if getattr(old, section) != getattr(new, section):
            keys.append(f"[{section}]")
    for key in ("plugins_dir", "workers", "timeout_ms", "cpu_ms", "memory_mb", "egress_deny"):
        if getattr(old.runtime, key) != getattr(new.runtime, key):
            keys.append(f"runtime.{key}")
    return keys


def compile_all_filters(config: Config) -> dict[str, FilterChain]:
    """Every function's filters, compiled; a bad FQL string is a ConfigError naming it."""
    return {
        name: compile_filters(name, fn.filters, source=config.source)
        for name, fn in config.functions.items()
        if fn.filters
    }


async def pump_logs(tap: LogTap, store: Store) -> None:
    """Copy the daemon's own log events into the store's log table, so `segfuncctl logs` shows them."""
    try:
        while True:
            await trio.sleep(LOG_PUMP_INTERVAL_S)
            await _flush_logs(tap, store)
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(2):
            await _flush_logs(tap, store)


async def _flush_logs(tap: LogTap, store: Store) -> None:
    items = tap.drain()
    if items:
        await store.append_logs(
            [LogRecord(id=None, source="daemon", message_id=None, outcome=None, **i) for i in items]
        )


async def ping_watchdog(interval_s: float) -> None:
    """WATCHDOG=1 from the trio loop: if the loop stalls, systemd notices and restarts us."""
    while True:
        notify("WATCHDOG=1")
        await trio.sleep(interval_s)


async def run(daemon: Daemon, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The daemon's life: start everything in order, serve until a signal, drain, stop."""
    config = daemon.config
    for folder in (config.db_path.parent, config.admin_socket.parent, config.plugins_dir):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SegfuncdError(f"cannot create {folder}: {exc.strerror or exc}") from exc
    with state_lock(config.db_path.parent / "segfuncd.lock"):
        async with (
            open_store(
                config.db_path,
                synchronous=config.storage.synchronous,
                max_pending=config.storage.max_pending,
                retention_s=config.storage.retention_hours * 3600,
                log_lines=config.storage.log_lines,
            ) as store,
            open_runner_pool(
                workers=config.workers,
                timeout_ms=config.runtime.timeout_ms,
                cpu_ms=config.runtime.cpu_ms,
                memory_mb=config.runtime.memory_mb,
                egress_deny=config.runtime.egress_deny,
                recycle_after=config.runtime.recycle_after,
            ) as pool,
        ):
            await _serve(daemon, store, pool, task_status=task_status)


async def _serve(daemon: Daemon, store: Store, pool: RunnerPool, *, task_status: trio.TaskStatus[None]) -> None:
    config = daemon.config
    metrics = Metrics()
    registry = PluginRegistry(config.plugins_dir, pool=pool, enabled=daemon.enabled, on_live=store.wake)
    daemon.registry = registry
    daemon.filters = compile_all_filters(config)
    intake = Intake(
        store,
        route=lambda event: route_event(event, registry.routable()),
        write_keys=config.intake.write_keys,
        allow_remote_without_key=config.intake.allow_remote_without_key,
        cors_origins=config.intake.cors_origins,
    )
    admin = Admin(lambda: daemon.config, store, registry, pool, intake, metrics, daemon.reload, daemon.started_at)
    stop = trio.Event()
    async with trio.open_nursery() as root:
        await root.start(serve_signals, daemon, stop, root.cancel_scope)
        root.start_soon(pump_logs, daemon.tap, store)
        await registry.scan()
        await root.start(registry.watch)
        async with trio.open_nursery() as delivery_nursery:
            dispatcher = await delivery_nursery.start(
                partial(
                    serve_delivery,
                    store,
                    pool,
                    resolve=daemon.target,
                    max_attempts=config.retry.max_attempts,
                    base_delay_s=config.retry.base_delay_s,
                    lease_s=lease_seconds(config),
                    metrics=metrics,
                )
            )
            intake_limits = ServerLimits(
                read_timeout_s=config.intake.read_timeout_s,
                idle_timeout_s=config.intake.idle_timeout_s,
                max_connections=config.intake.max_connections,
            )
            if config.intake.listen or config.intake_socket is not None:
                await root.start(
                    partial(
                        serve_intake,
                        intake,
                        listen=config.intake.listen,
                        unix_socket=config.intake_socket,
                        limits=intake_limits,
                    )
                )
            admin_mode = 0o660 if config.admin.group else 0o600
            admin_listener = await open_unix_listener(config.admin_socket, mode=admin_mode)
            if config.admin.group:
                _chgrp(config.admin_socket, config.admin.group)
            await root.start(partial(serve_http, admin.handle, [admin_listener]))
            if config.admin.metrics_listen:
                metrics_listeners = await open_tcp_listeners_for(config.admin.metrics_listen)
                await root.start(partial(serve_http, metrics_only(admin.handle), metrics_listeners))
            if config.admin.console_listen:
                await start_console(root, admin, config)
            if (interval := watchdog_interval_s()) is not None:
                root.start_soon(ping_watchdog, interval)
            notify("READY=1")
            log.info(
                "daemon_started",
                version=__version__,
                pid=os.getpid(),
                config=config.source,
                intake=config.intake.listen or None,
                admin_socket=str(config.admin_socket),
                workers=config.workers,
                plugins=[s.name for s in registry.states()],
            )
            task_status.started()
            await stop.wait()
            notify("STOPPING=1")
            log.info("daemon_stopping", drain_timeout_s=config.runtime.drain_timeout_s)
            intake.draining = True
            admin.close()  # ends `logs -f` streams, which would otherwise hold the stop
            await dispatcher.drain(timeout_s=config.runtime.drain_timeout_s)
            delivery_nursery.cancel_scope.cancel()
        log.info("daemon_stopped")
        root.cancel_scope.cancel()


async def start_console(nursery: trio.Nursery, admin: Admin, config: Config) -> None:
    """The web console, one more service in the root nursery (segfuncd/console/).

    On by default, so a busy default port must not stop the daemon from delivering: then
    it logs why and runs without a console. An address the operator chose is an error.
    """
    listen = config.admin.console_listen
    try:
        await nursery.start(partial(serve_console, admin, listen=listen, state_dir=config.db_path.parent))
    except SegfuncdError as exc:
        if listen != AdminConfig().console_listen:
            raise ConfigError(str(exc), path=config.source, key="admin.console_listen") from exc
        log.warning("console_unavailable", listen=listen, error=str(exc))
        return
    log.info("console_listening", url=f"http://{listen}/", token_file=str(token_path(config.db_path.parent)))


def metrics_only(handler: Handler) -> Handler:
    """The admin handler restricted to GET /metrics, for the optional TCP metrics address."""

    async def handle(request: Request) -> Response:
        if request.method == "GET" and request.path == "/metrics":
            return await handler(request)
        return json_response(404, {"error": "only GET /metrics is served here"})

    return handle


def lease_seconds(config: Config) -> float:
    """A lease outlives the slowest invocation (timeout plus queueing) with a margin."""
    return max(60.0, 3 * config.runtime.timeout_ms / 1000)


def _chgrp(path: Path, group: str) -> None:
    import grp

    try:
        os.chown(path, -1, grp.getgrnam(group).gr_gid)
    except KeyError:
        raise ConfigError(f"no such group {group!r}", path=None, key="admin.group") from None


async def serve_signals(
    daemon: Daemon,
    stop: trio.Event,
    root: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """SIGHUP reloads; the first SIGTERM/SIGINT sets `stop` (drain); a second cancels `root` now."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        task_status.started()
        async for signum in signals:
            name = signal.Signals(signum).name
            if signum == signal.SIGHUP:
                log.info("signal_received", signal=name)
                try:
                    await daemon.reload()
                except ConfigError:
                    pass  # already logged as config_reload_failed; the old config stays
            elif stop.is_set():
                log.warning("daemon_stopping_now", signal=name)
                root.cancel()
            else:
                log.info("signal_received", signal=name)
                stop.set()


# --- command line ----------------------------------------------------------------------

HELP_EPILOG = """\
The config is found as: --config PATH, else $SEGFUNCD_CONFIG, else ./segfuncd.toml, else
/etc/segfuncd/segfuncd.toml, else built-in defaults (plugins in ./plugins, state in ./var,
intake on 127.0.0.1:8088, no write key).

signals: SIGHUP reloads config and plugins; SIGTERM/SIGINT drain and exit 0; a second
SIGTERM/SIGINT exits at once (nothing committed is lost).

exit status: 0 stopped cleanly, 1 runtime error (state directory locked, address in use),
2 invalid config.

example:
  segfuncd --config /etc/segfuncd/segfuncd.toml
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="segfuncd",
        description="Run Segment-style destination functions: intake, durable queue, sandboxed runners.",
        epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="PATH", help="config file (TOML)")
    parser.add_argument("--check", action="store_true", help="validate the config and exit")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--version", action="version", version=f"segfuncd {__version__}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, *, stderr: TextIO = sys.stderr) -> int:
    """Entry point of `segfuncd`; operator mistakes print one line, bugs keep their traceback."""
    args = parse_args(argv)
    try:
        config = load_config(args.config)
        compile_all_filters(config)
    except ConfigError as exc:
        print(f"segfuncd: {exc}", file=stderr)
        return EXIT_CONFIG
    if args.check:
        print(f"segfuncd: {config.source}: ok", file=stderr)
        return EXIT_OK
    tap = LogTap()
    configure(level=args.log_level, tap=tap)
    try:
        trio.run(run, Daemon(config, tap=tap))
    except KeyboardInterrupt:
        pass
    except BaseException as exc:
        error = operator_error(exc)
        if error is None:
            raise  # a bug: keep the traceback
        log.error("daemon_failed", error=str(error))
        print(f"segfuncd: {error}", file=stderr)
        return EXIT_ERROR
    return EXIT_OK


def operator_error(exc: BaseException) -> SegfuncdError | None:
    """The SegfuncdError behind `exc` when nothing else went wrong (nurseries wrap errors in groups)."""
    if isinstance(exc, SegfuncdError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        matched, rest = exc.split(SegfuncdError)
        if matched is not None and rest is None:
            first: BaseException = matched
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            return first if isinstance(first, SegfuncdError) else None
    return None
