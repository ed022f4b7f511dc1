"""The database schema, its migrations, and how a connection is opened.

Rules:
* Every schema change is a named migration in `MIGRATIONS` (sqlite-utils records applied
  ones in `_sqlite_migrations`); never edit one that shipped, add the next. An upgrade
  migrates in place and keeps the queue; `PRAGMA user_version` mirrors the count, so a
  database written by a newer segfuncd is refused instead of being misread.
* The journal is WAL: readers never block the writer. `synchronous = normal` survives a
  crash of the process (kill -9) but may lose the last commits on power loss; `full`
  fsyncs every commit and survives power loss (group commit keeps that affordable).
* Hot-path indexes are partial, so a row is indexed only while the index serves it: due
  rows (pending / leased) for leasing, finished rows for retention, dead rows for replay.
* Disk comes back (issue 12): `auto_vacuum = INCREMENTAL` (set on a new file; an older
  file is converted by one VACUUM at its upgrade) lets retention hand freed pages back
  with `PRAGMA incremental_vacuum`, and `journal_size_limit` truncates the WAL after a
  checkpoint, so a drained backlog does not keep its WAL for the life of the process.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils
from sqlite_utils.migrations import Migrations

from ..errors import StoreError
from ..log import get_logger

MIGRATION_SET = "segfuncd"
SYNCHRONOUS = ("normal", "full")

# SQL fragments shared by queries that must match the partial indexes' WHERE clauses
# exactly (SQLite uses a partial index only when the query repeats its condition).
# Written with OR, not IN (...): SQLite evaluates a partial index's condition for every row
# an UPDATE touches, and an IN list costs it far more there (m013: lease ~19 -> 13 µs and
# complete ~29 -> 24 µs per row).
ACTIVE = "(state = 'pending' OR state = 'leased')"
FINISHED = "(state = 'delivered' OR state = 'discarded' OR state = 'filtered')"

MIGRATIONS = Migrations(MIGRATION_SET)
log = get_logger()


@MIGRATIONS(name="m001_queue")
def _m001_queue(db: sqlite_utils.Database) -> None:
    """Events, one delivery row per (event, function), attempts, the log table."""
    db.executescript(
        f"""
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, even once pruned empty
            message_id TEXT NOT NULL,
            type TEXT NOT NULL,
            body TEXT NOT NULL,           -- the enriched event, JSON
            received_at REAL NOT NULL
        );
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id INTEGER NOT NULL,
            function TEXT NOT NULL,
            state TEXT NOT NULL,          -- DeliveryState values
            attempts INTEGER NOT NULL DEFAULT 0,
            due_at REAL,                  -- pending: next attempt; leased: lease expiry
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            version TEXT,                 -- plugin hash of the latest attempt
            last_error TEXT,
            note TEXT,                    -- postpone / filter / discard reason
            held INTEGER NOT NULL DEFAULT 0  -- 1: postponed, wake() makes it due now
        );
        CREATE INDEX ix_deliveries_due ON deliveries(due_at) WHERE {ACTIVE};
        CREATE INDEX ix_deliveries_event ON deliveries(event_id);
        CREATE INDEX ix_deliveries_done ON deliveries(updated_at) WHERE {FINISHED};
        CREATE INDEX ix_deliveries_dead ON deliveries(function) WHERE state = 'dead';
        CREATE TABLE attempts (
            id INTEGER PRIMARY KEY,
            delivery_id INTEGER NOT NULL,
            number INTEGER NOT NULL,
            at REAL NOT NULL,
            version TEXT,
            outcome TEXT NOT NULL,
            error TEXT,
            duration_ms REAL NOT NULL DEFAULT 0
        );
        CREATE INDEX ix_attempts_delivery ON attempts(delivery_id);
        CREATE TABLE logs (
            id INTEGER PRIMARY KEY,
            time REAL NOT NULL,
            level TEXT NOT NULL,
            source TEXT NOT NULL,
            function TEXT,
            version TEXT,
            message_id TEXT,
            outcome TEXT,
            message TEXT NOT NULL,
            fields TEXT NOT NULL DEFAULT '{{}}'
        );
        """
    )


@MIGRATIONS(name="m002_counters")
def _m002_counters(db: sqlite_utils.Database) -> None:
    """Per-function counters, so status never scans deliveries; backfilled once here."""
    db.executescript(
        f"""
        CREATE TABLE function_stats (
            function TEXT PRIMARY KEY,
            accepted INTEGER NOT NULL DEFAULT 0,
            delivered INTEGER NOT NULL DEFAULT 0,
            discarded INTEGER NOT NULL DEFAULT 0,
            filtered INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0,
            retried INTEGER NOT NULL DEFAULT 0,
            dead_lettered INTEGER NOT NULL DEFAULT 0,
            replayed INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            duration_ms_total REAL NOT NULL DEFAULT 0,
            pending INTEGER NOT NULL DEFAULT 0,
            retrying INTEGER NOT NULL DEFAULT 0,
            dead INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            last_error_at REAL,
            last_delivered_at REAL
        ) WITHOUT ROWID;
        CREATE TABLE function_reasons (
            function TEXT NOT NULL,
            kind TEXT NOT NULL,           -- 'discarded' | 'filtered'
            reason TEXT NOT NULL,
            count INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (function, kind, reason)
        ) WITHOUT ROWID;
        INSERT INTO function_stats (function, accepted, delivered, discarded, filtered,
                                    dead_lettered, attempts, pending, retrying, dead)
        SELECT function, count(*), sum(state = 'delivered'), sum(state = 'discarded'),
               sum(state = 'filtered'), sum(state = 'dead'), sum(attempts),
               sum({ACTIVE}), sum({ACTIVE} AND attempts > 0), sum(state = 'dead')
        FROM deliveries GROUP BY function;
        INSERT INTO function_reasons (function, kind, reason, count)
        SELECT function, state, coalesce(note, last_error, 'unknown'), count(*)
        FROM deliveries WHERE state IN ('discarded', 'filtered')
        GROUP BY function, state, coalesce(note, last_error, 'unknown');
        """
    )


@MIGRATIONS(name="m003_dedupe")
def _m003_dedupe(db: sqlite_utils.Database) -> None:
    """messageId dedupe keys, kept apart from events so retention can differ."""
    db.executescript(
        """
        CREATE TABLE seen (message_id TEXT PRIMARY KEY, at REAL NOT NULL) WITHOUT ROWID;
        CREATE INDEX ix_seen_at ON seen(at);
        INSERT OR REPLACE INTO seen (message_id, at)
        SELECT message_id, max(received_at) FROM events WHERE message_id != ''
        GROUP BY message_id;
        """
    )


@MIGRATIONS(name="m004_logs_by_time")
def _m004_logs_by_time(db: sqlite_utils.Database) -> None:
    """`logs -n` shows the newest lines by time: daemon lines reach the table late."""
    db.execute("CREATE INDEX ix_logs_time ON logs(time)")


@MIGRATIONS(name="m005_oldest_pending")
def _m005_oldest_pending(db: sqlite_utils.Database) -> None:
    """The age of the oldest pending delivery in O(log n): status must not scan the queue."""
    db.execute(f"CREATE INDEX ix_deliveries_active_created ON deliveries(created_at) WHERE {ACTIVE}")


@MIGRATIONS(name="m006_held_and_identity")
def _m006_held_and_identity(db: sqlite_utils.Database) -> None:
    """Rows of a function that cannot run are held per function (an index by function, so
    holding and waking them never scans the queue); `segfuncd_meta` keeps the database's
    identity, which the state directory records (integrity.py)."""
    db.executescript(
        f"""
        CREATE INDEX ix_deliveries_active_function ON deliveries(function, due_at) WHERE {ACTIVE};
        CREATE TABLE segfuncd_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        """
    )


@MIGRATIONS(name="m007_dedupe_per_source")
def _m007_dedupe_per_source(db: sqlite_utils.Database) -> None:
    """Dedupe keys become `source:messageId` (store/ingest.py dedupe_key), so one source cannot
    suppress another's events. Keys seen before the upgrade did not record their source: they
    become the default source's (""), and expire within the 24 h window as before."""
    db.execute("UPDATE seen SET message_id = ':' || message_id")


@MIGRATIONS(name="m008_event_source")
def _m008_event_source(db: sqlite_utils.Database) -> None:
    """The source ([sources.NAME]) each event came in through; "" is the unnamed default source."""
    db.execute("ALTER TABLE events ADD COLUMN source TEXT NOT NULL DEFAULT ''")


@MIGRATIONS(name="m009_paused_functions")
def _m009_paused_functions(db: sqlite_utils.Database) -> None:
    """Functions paused by `segfuncctl pause`: their deliveries wait, across restarts."""
    db.execute("CREATE TABLE paused_functions (function TEXT PRIMARY KEY, paused_at REAL NOT NULL) WITHOUT ROWID")


@MIGRATIONS(name="m010_attempt_details")
def _m010_attempt_details(db: sqlite_utils.Database) -> None:
    """Attempt records (segfuncd.attempts): return value, logs, requests, stack, as JSON."""
    db.execute("ALTER TABLE attempts ADD COLUMN detail TEXT")
    db.execute("CREATE INDEX ix_attempts_detail ON attempts(delivery_id, id) WHERE detail IS NOT NULL")


@MIGRATIONS(name="m011_timeline")
def _m011_timeline(db: sqlite_utils.Database) -> None:
    """Per-minute counters and error groups for the web console's charts (store/timeline.py).

    Backfilled from the attempts still kept, so an upgraded daemon shows its recent past.
    """
    from .timeline import CREATE_SQL  # the table definitions live with their queries

    db.executescript(
        CREATE_SQL
        + """
        INSERT INTO function_minutes (function, minute, delivered, retried, dead, discarded, failed,
                                      attempts, duration_ms_total, duration_ms_max)
        SELECT d.function, CAST(a.at / 60 AS INTEGER) AS m, sum(a.outcome = 'delivered'),
               sum(a.outcome = 'retry' AND NOT (d.state = 'dead' AND a.number = d.attempts)),
               sum(d.state = 'dead' AND a.number = d.attempts), sum(a.outcome = 'discarded'),
               sum(a.outcome = 'failed'), count(*), sum(a.duration_ms), max(a.duration_ms)
        FROM attempts AS a JOIN deliveries AS d ON d.id = a.delivery_id
        GROUP BY d.function, m;
        INSERT INTO function_errors (function, name, message, count, first_at, last_at)
        SELECT d.function,
               CASE WHEN instr(a.error, ': ') > 0 THEN substr(a.error, 1, instr(a.error, ': ') - 1) ELSE a.error END,
               CASE WHEN instr(a.error, ': ') > 0 THEN substr(substr(a.error, instr(a.error, ': ') + 2), 1, 300)
                    ELSE '' END AS msg,
               count(*), min(a.at), max(a.at)
        FROM attempts AS a JOIN deliveries AS d ON d.id = a.delivery_id
        WHERE a.error IS NOT NULL GROUP BY 1, 2, 3;
        """
    )


@MIGRATIONS(name="m012_cluster_records")
def _m012_cluster_records(db: sqlite_utils.Database) -> None:
    """Cluster mode's record of the deliveries this node ran (store/cluster_records.py): tables
    of their own, so nothing the SQLite queue leases or replays."""
    from .cluster_records import CREATE_SQL  # the table definitions live with their queries

    db.executescript(CREATE_SQL)


@MIGRATIONS(name="m013_partial_indexes_without_in")
def _m013_partial_indexes_without_in(db: sqlite_utils.Database) -> None:
    """The partial indexes on deliveries rebuilt with their conditions written with OR (see
    ACTIVE): the same rows, cheaper to keep up to date. On a new file they are empty."""
    from .timeline import RETRYING

    # on a big queue this takes a while, once: say so (the indexes cover every kept row)
    log.info("store_migrating", migration="m013_partial_indexes_without_in", work="rebuilding 5 indexes")
    db.executescript(
        f"""
        DROP INDEX ix_deliveries_due;
        CREATE INDEX ix_deliveries_due ON deliveries(due_at) WHERE {ACTIVE};
        DROP INDEX ix_deliveries_done;
        CREATE INDEX ix_deliveries_done ON deliveries(updated_at) WHERE {FINISHED};
        DROP INDEX ix_deliveries_active_created;
        CREATE INDEX ix_deliveries_active_created ON deliveries(created_at) WHERE {ACTIVE};
        DROP INDEX ix_deliveries_active_function;
        CREATE INDEX ix_deliveries_active_function ON deliveries(function, due_at) WHERE {ACTIVE};
        DROP INDEX ix_deliveries_retrying;
        CREATE INDEX ix_deliveries_retrying ON deliveries(function, created_at) WHERE {RETRYING};
        """
    )


SCHEMA_VERSION = len(MIGRATIONS._migrations)
JOURNAL_SIZE_LIMIT = 8 * 1024 * 1024  # bytes the WAL is truncated to after a checkpoint
AUTO_VACUUM_INCREMENTAL = 2


def migrate(path: Path) -> int:
    """Create or upgrade the database at `path`; returns the schema version.

    Raises StoreError when the file is not a database or was written by a newer segfuncd.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the database {path}: {exc}") from exc
    try:
        (tables,) = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if not tables:  # a new file: auto_vacuum only takes effect before the first table
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
        (found,) = conn.execute("PRAGMA user_version").fetchone()
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"{path}: schema version {found} was written by a newer segfuncd "
                f"(this one knows up to {SCHEMA_VERSION}); refusing to touch it"
            )
        db = sqlite_utils.Database(conn, execute_plugins=False)
        known = {m.name for m in MIGRATIONS._migrations}
        unknown = [m.name for m in MIGRATIONS.applied(db) if m.name not in known]
        if unknown:
            raise StoreError(f"{path}: unknown migrations {unknown} (written by a newer segfuncd?)")
        MIGRATIONS.apply(db)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        _convert_auto_vacuum(conn)
        return SCHEMA_VERSION
    except sqlite3.Error as exc:
        raise StoreError(f"cannot migrate the database {path}: {exc}") from exc
    finally:
        conn.close()


def _convert_auto_vacuum(conn: sqlite3.Connection) -> None:
    """An older file gets incremental auto-vacuum by one VACUUM (once, at its upgrade).

    VACUUM needs room for a copy of the file; without it the file keeps working as before,
    only its free pages are not handed back.
    """
    (mode,) = conn.execute("PRAGMA auto_vacuum").fetchone()
    if mode == AUTO_VACUUM_INCREMENTAL:
        return
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    try:
        conn.execute("VACUUM")
    except sqlite3.Error:
        pass


def connect(path: Path, *, synchronous: str, wal_autocheckpoint: int | None = None) -> sqlite3.Connection:
    """A connection for one owner thread: autocommit mode, explicit transactions.

    `wal_autocheckpoint` (pages) replaces SQLite's default of 1000 (the writer's: see
    checkpoints.py)."""
    if synchronous not in SYNCHRONOUS:
        raise ValueError(f'synchronous must be "normal" or "full", got {synchronous!r}')
    try:
        # check_same_thread=False: it is created here, then used only by its owner thread.
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, cached_statements=256)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA cache_size = -32768")  # 32 MiB
        conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
        if wal_autocheckpoint is not None:
            conn.execute(f"PRAGMA wal_autocheckpoint = {int(wal_autocheckpoint)}")
        return conn
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the database {path}: {exc}") from exc
