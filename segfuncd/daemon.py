"""`segfuncd`: load the config, then run everything in one root nursery until a signal.

Start order (each service is started with `nursery.start`, so READY=1 reaches systemd only
once everything listens): state lock -> store -> (cluster mode: NATS JetStream, streams)
-> runner pool -> plugins (first scan) -> delivery -> intake -> metrics -> console -> admin
socket (last, so a `segfuncctl status` that answers means every listener is open).

Shutdown on SIGTERM / SIGINT, staged:
  1. STOPPING=1; intake answers 503 to new events (nothing half-accepted: a request that
     was committing still gets its 200);
  2. delivery stops leasing and lets in-flight invocations finish for up to
     runtime.drain_timeout_s;
  3. deliveries still leased go back to pending (shielded, short deadline), SQLite closes;
  4. exit 0.
A second signal skips the drain: leases expire on their own, so nothing committed is lost.
Runner processes ignore SIGINT/SIGTERM sent to the process group (Ctrl-C, systemd's
control-group kill); they stop when the pool closes their stdin, or when we die.
SIGHUP, `segfuncctl reload` and a save of the config file re-read the config (reload.py
says what applies at once and what needs a restart) and rescan the plugins.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from pathlib import Path
from typing import TextIO

import trio

from . import __version__
from .admin import Admin
from .collector import freeze_startup_objects
from .config import AdminConfig, Config, load_config
from .console import serve_console, token_path
from .delivery import serve_delivery
from .errors import AlreadyRunning, ConfigError, SegfuncdError, StoreError
from .fdlimits import ADMIN_MAX_CONNECTIONS, connection_budget, raise_nofile_limit
from .functions import compile_all_filters
from .intake import Intake, serve_intake
from .jetstream import JetStreamStore, ack_wait_for, open_jetstream_store
from .log import LogTap, configure, get_logger
from .metrics import Metrics
from .pausing import Pauses
from .plugins import PluginRegistry
from .private_files import make_private_dir, modes
from .reload import Reloader, lease_seconds, watch_config
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
from .sources import connected, named_sources
from .storage import Storage
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
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
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
    """The running daemon: its log tap, start time and the config in force (`reloader`)."""

    def __init__(self, config: Config, *, tap: LogTap, accept_state_loss: bool = False) -> None:
        self.reloader = Reloader(config)
        self.tap = tap
        self.accept_state_loss = accept_state_loss  # --accept-state-loss: start on damaged state
        self.started_at = time.time()
        self.nofile = 1024  # the soft RLIMIT_NOFILE, once run() raised it

    @property
    def config(self) -> Config:
        return self.reloader.config


async def pump_logs(tap: LogTap, store: Storage) -> None:
    """Copy the daemon's own log events into the store's log table, so `segfuncctl logs` shows them."""
    try:
        while True:
            await trio.sleep(LOG_PUMP_INTERVAL_S)
            await _flush_logs(tap, store)
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(2):
            await _flush_logs(tap, store)


async def _flush_logs(tap: LogTap, store: Storage) -> None:
    items = tap.drain()
    if items:
        await store.append_logs(
            [LogRecord(id=None, source="daemon", message_id=None, outcome=None, **i) for i in items]
        )


async def follow_pauses(pauses: Pauses, interval_s: float = 1.0) -> None:
    """Cluster mode: re-read the cluster's paused set every `interval_s` (another node may
    have paused or resumed a function); a resume here is woken by the dispatcher's look at
    held functions."""
    while True:
        await trio.sleep(interval_s)
        try:
            await pauses.load()
        except StoreError as exc:
            log.warning("pauses_unreadable", error=str(exc))


async def wake_quietly(store: Storage, function: str) -> None:
    """store.wake for the registry: a failing store (disk full) must not stop plugin loading;
    the dispatcher wakes held functions again by itself."""
    try:
        await store.wake(function)
    except StoreError as exc:
        log.error("wake_failed", function=function, error=str(exc))


async def ping_watchdog(interval_s: float, store: Storage | None = None) -> None:
    """WATCHDOG=1 from the trio loop: if the loop stalls, systemd notices and restarts us.

    A faulted store (disk full) keeps the pings going (a restart would not free the disk)
    and says so in STATUS=, which `systemctl status` shows.
    """
    shown = "ok"
    while True:
        fault = store.fault if store is not None else None
        if fault is None:
            status = "ok"
        elif fault.message.startswith(fault.condition):  # "storage full: SQLite failed during ..."
            status = fault.message
        else:
            status = f"{fault.condition}: {fault.message}"
        if status != shown:
            shown = status
            notify(f"WATCHDOG=1\nSTATUS={status}")
        else:
            notify("WATCHDOG=1")
        await trio.sleep(interval_s)


async def run(daemon: Daemon, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The daemon's life: start everything in order, serve until a signal, drain, stop."""
    config = daemon.config
    daemon.nofile = raise_nofile_limit()  # before any listener: runners inherit it too
    dir_mode, file_mode = modes(bool(config.admin.group))
    for folder, private in (
        (config.db_path.parent, True),
        (config.admin_socket.parent, True),
        (config.plugins_dir, False),
    ):
        try:
            if private:
                make_private_dir(folder, dir_mode)  # state: 0700 (0750 with admin.group) whatever the umask
            else:
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
                accept_state_loss=daemon.accept_state_loss,
                file_mode=file_mode,
            ) as local,
            open_storage(config, local) as store,
            open_runner_pool(
                workers=config.workers,
                timeout_ms=config.runtime.timeout_ms,
                cpu_ms=config.runtime.cpu_ms,
                memory_mb=config.runtime.memory_mb,
                egress_deny=config.runtime.egress_deny,
                egress_allow=config.runtime.egress_allow,
                recycle_after=config.runtime.recycle_after,
            ) as pool,
        ):
            await _serve(daemon, store, pool, task_status=task_status)


@asynccontextmanager
async def open_storage(config: Config, local: Store) -> AsyncIterator[Storage]:
    """The queue the daemon runs on: the SQLite store itself, or the NATS JetStream cluster
    (`[storage] backend = "jetstream"`) with the SQLite store kept for the node's logs and pauses."""
    if config.storage.backend != "jetstream":
        yield local
        return
    async with open_jetstream_store(
        config.storage.jetstream,
        local=local,
        resolve=config.resolve,
        ack_wait_s=ack_wait_for(config.runtime.timeout_ms),
        node=f"{socket.gethostname()}/{os.getpid()}",  # shown as node= by `logs --cluster`
    ) as cluster:
        yield cluster


async def _serve(daemon: Daemon, store: Storage, pool: RunnerPool, *, task_status: trio.TaskStatus[None]) -> None:
    config, reloader = daemon.config, daemon.reloader
    metrics = Metrics()
    pauses = reloader.pauses = Pauses(store)
    await pauses.load()
    registry = PluginRegistry(
        config.plugins_dir, pool=pool, enabled=reloader.enabled, on_live=partial(wake_quietly, store)
    )
    functions = reloader.attach_registry(registry)
    if isinstance(store, JetStreamStore):
        store.watch_functions(functions.routable)  # the functions this node fetches for
    intake = Intake(
        store,
        routable=functions.routable,
        write_keys=config.intake.write_keys,
        sources=named_sources(config),
        connected=lambda function, source: connected(reloader.config.function(function).sources, source),
        allow_remote_without_key=config.intake.allow_remote_without_key,
        cors_origins=config.intake.cors_origins,
        trusted_proxies=config.intake.trusted_proxies,
    )
    reloader.intake, reloader.store, reloader.pool = intake, store, pool
    admin = Admin(
        lambda: reloader.config,
        store,
        registry,
        pool,
        intake,
        metrics,
        reloader.reload,
        daemon.started_at,
        pauses=pauses,
    )
    stop = trio.Event()
    async with trio.open_nursery() as root:
        await root.start(serve_signals, reloader, stop, root.cancel_scope)
        root.start_soon(pump_logs, daemon.tap, store)
        if isinstance(store, JetStreamStore):
            root.start_soon(follow_pauses, pauses)  # a pause on any node holds the function here too
        await registry.scan()
        reloader.warn_about_config()
        await root.start(registry.watch)
        if not config.source.startswith("<"):
            await root.start(watch_config, Path(config.source), reloader.reload)
        async with trio.open_nursery() as delivery_nursery:
            dispatcher = await delivery_nursery.start(
                partial(
                    serve_delivery,
                    store,
                    pool,
                    resolve=functions.target,
                    max_attempts=config.retry.max_attempts,
                    base_delay_s=config.retry.base_delay_s,
                    lease_s=lease_seconds(config),
                    metrics=metrics,
                )
            )
            reloader.dispatcher = dispatcher
            budget = connection_budget(config.intake.max_connections, nofile=daemon.nofile, workers=config.workers)
            if budget < config.intake.max_connections:
                log.warning(
                    "max_connections_capped",
                    configured=config.intake.max_connections,
                    allowed=budget,
                    nofile=daemon.nofile,
                    hint="raise LimitNOFILE= (ulimit -n) to allow more",
                )
            intake_limits = ServerLimits(
                read_timeout_s=config.intake.read_timeout_s,
                idle_timeout_s=config.intake.idle_timeout_s,
                max_connections=budget,
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
            if config.admin.metrics_listen:
                metrics_listeners = await open_tcp_listeners_for(config.admin.metrics_listen)
                await root.start(partial(serve_http, metrics_only(admin.handle), metrics_listeners))
            if config.admin.console_listen:
                await start_console(root, admin, config)
            # The admin socket last: once `segfuncctl status` answers, every listener is open
            # (a taken metrics or console address has already stopped the start).
            admin_mode = 0o660 if config.admin.group else 0o600
            admin_listener = await open_unix_listener(config.admin_socket, mode=admin_mode)
            if config.admin.group:
                _chgrp(config.admin_socket, config.admin.group)
            admin_limits = ServerLimits(max_connections=ADMIN_MAX_CONNECTIONS)
            await root.start(partial(serve_http, admin.handle, [admin_listener], limits=admin_limits))
            if (interval := watchdog_interval_s()) is not None:
                root.start_soon(ping_watchdog, interval, store)
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
            drain_timeout_s = daemon.config.runtime.drain_timeout_s  # as reloaded
            log.info("daemon_stopping", drain_timeout_s=drain_timeout_s)
            intake.draining = True
            admin.close()  # ends `logs -f` streams, which would otherwise hold the stop
            await dispatcher.drain(timeout_s=drain_timeout_s)
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


def _chgrp(path: Path, group: str) -> None:
    import grp

    try:
        os.chown(path, -1, grp.getgrnam(group).gr_gid)
    except KeyError:
        raise ConfigError(f"no such group {group!r}", path=None, key="admin.group") from None


async def serve_signals(
    reloader: Reloader,
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
                    await reloader.reload()
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

signals: SIGHUP reloads config and plugins (so does saving the config file);
SIGTERM/SIGINT (also Ctrl-C, sent to the whole process group) drain and exit 0; a second
SIGTERM/SIGINT exits at once (nothing committed is lost).

exit status: 0 stopped cleanly, 1 runtime error (state directory locked, address in use,
damaged state: see --accept-state-loss), 2 invalid config.

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
    parser.add_argument(
        "--accept-state-loss",
        action="store_true",
        help="start even when the state directory's database is missing, replaced or damaged (logged loudly)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--version", action="version", version=f"segfuncd {__version__}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, *, stderr: TextIO = sys.stderr) -> int:
    """Entry point of `segfuncd`; operator mistakes print one line, bugs keep their traceback."""
    args = parse_args(argv)
    try:
        config = load_config(args.config)
        compile_all_filters(config)  # a bad FQL filter is a config error at start
    except ConfigError as exc:
        print(f"segfuncd: {exc}", file=stderr)
        return EXIT_CONFIG
    if args.check:
        print(f"segfuncd: {config.source}: ok", file=stderr)
        return EXIT_OK
    tap = LogTap()
    configure(level=args.log_level, tap=tap)
    freeze_startup_objects()
    try:
        trio.run(run, Daemon(config, tap=tap, accept_state_loss=args.accept_state_loss))
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
