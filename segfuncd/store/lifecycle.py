"""`open_store()`: check, migrate, recover, start the owner threads and the checkpointer,
serve, stop them in order."""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import trio

from ..clock import steady_time
from ..errors import StoreError
from ..log import get_logger
from ..private_files import FILE_MODE, private_database
from . import integrity
from . import logs as logs_sql
from .checkpoints import WRITER_AUTOCHECKPOINT_PAGES, Checkpointer
from .ingest import IdCounters, Ingest
from .schema import connect, migrate
from .service import Clock, Store
from .writer import GroupWriter, OwnerThread

DEFAULT_PRUNE_INTERVAL_S = 300.0

log = get_logger()


@asynccontextmanager
async def open_store(
    path: Path,
    *,
    synchronous: str = "normal",
    max_pending: int = 1_000_000,
    retention_s: float = 86_400,
    log_lines: int = 50_000,
    clock: Clock = steady_time,
    commit_window_s: float = 0.002,
    commit_max_rows: int = 5_000,
    prune_interval_s: float | None = None,
    accept_state_loss: bool = False,
    file_mode: int = FILE_MODE,
) -> AsyncIterator[Store]:
    """Open (create, migrate) the database at `path` and serve it until the block exits.

    First the state directory's record is checked (integrity.py): a missing, empty or
    replaced database, a lost WAL after an unclean stop or a failed quick_check raises
    DamagedState, unless `accept_state_loss`, which logs it loudly and goes on.

    The database and its WAL / SHM files get `file_mode` whatever the umask (private_files.py).

    Leases left by a previous process are released at once: this process owns the file
    (the daemon holds the state directory's lock), so nothing else can be delivering them.
    """
    path = Path(path)
    problems = await trio.to_thread.run_sync(integrity.check_state, path)
    if problems and not accept_state_loss:
        raise integrity.damaged(path, problems)
    for problem in problems:
        log.critical("state_loss_accepted", database=str(path), problem=problem)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        private_database(path, file_mode)
    except OSError as exc:
        raise StoreError(f"cannot create the database {path}: {exc.strerror or exc}") from exc
    await trio.to_thread.run_sync(migrate, path)
    try:
        db_id = await trio.to_thread.run_sync(integrity.mark_started, path)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot record the database identity beside {path}: {exc}") from exc
    conns: list[sqlite3.Connection] = []
    try:
        wconn = connect(path, synchronous=synchronous, wal_autocheckpoint=WRITER_AUTOCHECKPOINT_PAGES)
        conns.append(wconn)
        rconn = connect(path, synchronous=synchronous)
        conns.append(rconn)
        cconn = connect(path, synchronous=synchronous)
        conns.append(cconn)
        ids, pending, newest_log = await trio.to_thread.run_sync(_recover, wconn, clock())
    except (sqlite3.Error, StoreError) as exc:
        for conn in reversed(conns):
            conn.close()
        if isinstance(exc, StoreError):
            raise
        raise StoreError(f"cannot read the database {path}: {exc}") from exc
    ingest = Ingest(ids)
    writer = GroupWriter(wconn, clock=clock, merge=ingest.merge, window_s=commit_window_s, max_rows=commit_max_rows)
    reader = OwnerThread(rconn, name="segfuncd-store-reader", clock=clock)
    checkpointer = Checkpointer(cconn, commits=lambda: writer.commits)
    writer.start()
    reader.start()
    checkpointer.start()
    store = Store(
        checkpoints=lambda: checkpointer.checkpoints,
        free_bytes=partial(_free_bytes, path),
        writer=writer,
        reader=reader,
        ingest=ingest,
        clock=clock,
        max_pending=max_pending,
        retention_s=retention_s,
        log_lines=log_lines,
        pending=pending,
        newest_log_id=newest_log,
    )
    try:
        async with trio.open_nursery() as nursery:
            interval = prune_interval_s or min(DEFAULT_PRUNE_INTERVAL_S, max(1.0, retention_s / 4))
            if math.isfinite(interval):
                nursery.start_soon(store._prune_forever, interval)
            nursery.start_soon(store._probe_forever)
            try:
                yield store
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The pruning task does not raise, so a lone exception is the caller's own: hand
        # it back as raised instead of wrapped in the nursery's group.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from group.exceptions[0].__cause__
        raise
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(checkpointer.close)  # first: the last close removes the WAL
            await writer.aclose()
            await reader.aclose()
            if writer.closed_cleanly and reader.closed_cleanly:
                with contextlib.suppress(OSError):
                    await trio.to_thread.run_sync(integrity.mark_stopped, path, db_id)


def _free_bytes(path: Path) -> int | None:
    """Bytes this process may still write on the database's file system (None: unknown).

    statvfs follows a symlinked database to its real file system; root may also use the
    blocks reserved for it, so it counts those."""
    try:
        st = os.statvfs(path if path.exists() else path.parent)
    except OSError:
        return None
    return (st.f_bfree if os.geteuid() == 0 else st.f_bavail) * st.f_frsize


def _recover(conn: sqlite3.Connection, now: float) -> tuple[IdCounters, int, int]:
    """At open: release stale leases, load id counters, pending total, newest log id."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("UPDATE deliveries SET state = 'pending', due_at = ? WHERE state = 'leased'", (now,))
        ids = IdCounters.load(conn)
        (pending,) = conn.execute("SELECT coalesce(sum(pending), 0) FROM function_stats").fetchone()
        newest = logs_sql.newest_id(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return ids, int(pending), newest
