"""Retention, migrations from older schemas, and the bounded log table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio
from test_store_helpers import T0, FakeClock, done, event, store_at

from segfuncd.errors import StoreError
from segfuncd.outcomes import DeliveryState, Outcome
from segfuncd.store import DEDUPE_WINDOW_S, SCHEMA_VERSION, LogRecord, queue
from segfuncd.store.schema import ACTIVE, FINISHED

HOUR = 3600.0


async def test_retention_prunes_finished_rows_and_keeps_dead_letters_and_pending(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock, retention_s=HOUR) as store:
        await store.accept([event(i) for i in range(4)] + [event(9, functions=("a", "b"))])
        leases = {x.event["event"]: x for x in await store.lease(limit=10, lease_s=60)}
        await store.complete(
            [
                done(leases["E0"], Outcome.DELIVERED, state=DeliveryState.DELIVERED),
                done(leases["E1"], Outcome.DISCARDED, state=DeliveryState.DISCARDED, error="EventNotSupported"),
                done(leases["E2"], Outcome.FAILED, state=DeliveryState.DEAD, error="TypeError"),
                done(
                    leases["E3"],
                    Outcome.RETRY,
                    state=DeliveryState.PENDING,
                    error="RetryError",
                    next_attempt_at=clock.now + 2 * HOUR,
                ),
            ]
        )
        delivered_9 = [x for x in leases.values() if x.event["event"] == "E9"][0]
        await store.complete([done(delivered_9, Outcome.DELIVERED, state=DeliveryState.DELIVERED)])

        assert await store.prune() == type(await store.prune())()  # nothing is old yet
        clock.advance(HOUR + 1)
        result = await store.prune()
        assert result.deliveries == 3 and result.attempts == 3
        # E0, E1 had one delivery each; E9 still has its other (leased) delivery.
        assert result.events == 2
        left = {(d.message_id, d.state.value) for d in await store.deliveries(limit=100)}
        assert left == {("msg-2", "dead"), ("msg-3", "pending"), ("msg-9", "leased")}
        dead = await store.deliveries(state="dead")
        detail = await store.delivery(dead[0].id)
        assert detail is not None and detail.event["event"] == "E2" and len(detail.attempts) == 1
        # Counters are history: pruning rows does not change them.
        assert (await store.stats()).functions["f"].delivered == 1

        # Dedupe outlives retention (24 h) ...
        assert result.dedupe_keys == 0
        assert await store.accept([event(0)]) == [False]
        clock.advance(DEDUPE_WINDOW_S)
        result = await store.prune()
        assert result.dedupe_keys >= 4
        assert await store.accept([event(1)]) == [True]


async def test_pruning_keeps_ids_unique_even_when_tables_empty(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock, retention_s=HOUR) as store:
        await store.accept([event(1)])
        (lease,) = await store.lease(limit=1, lease_s=60)
        await store.complete([done(lease, Outcome.DELIVERED, state=DeliveryState.DELIVERED)])
        clock.advance(HOUR + 1)
        await store.prune()
        assert await store.deliveries() == []
    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(2)])
        (again,) = await store.lease(limit=1, lease_s=60)
        assert again.id > lease.id


async def test_the_database_does_not_grow_under_steady_load(tmp_path: Path) -> None:
    """With retention, rows in the file stay bounded while events keep flowing."""
    clock = FakeClock()
    path = tmp_path / "q.db"
    async with store_at(path, clock, retention_s=HOUR) as store:
        counts = []
        for round_ in range(6):
            await store.accept([event(round_ * 100 + i) for i in range(100)])
            leases = await store.lease(limit=200, lease_s=60)
            await store.complete([done(x, Outcome.DELIVERED, state=DeliveryState.DELIVERED) for x in leases])
            clock.advance(HOUR / 2)
            await store.prune()
            counts.append(
                await store._read(
                    lambda conn, now: conn.execute(
                        "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM deliveries)"
                    ).fetchone()[0],
                    "test",
                )
            )
        assert max(counts[2:]) <= 400 and counts[-1] == counts[-2]


V1_SCHEMA = """
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL, type TEXT NOT NULL,
    body TEXT NOT NULL, received_at REAL NOT NULL);
CREATE TABLE deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id INTEGER NOT NULL, function TEXT NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, due_at REAL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, version TEXT, last_error TEXT, note TEXT, held INTEGER NOT NULL DEFAULT 0);
CREATE INDEX ix_deliveries_due ON deliveries(due_at) WHERE state IN ('pending', 'leased');
CREATE INDEX ix_deliveries_event ON deliveries(event_id);
CREATE INDEX ix_deliveries_done ON deliveries(updated_at) WHERE state IN ('delivered', 'discarded', 'filtered');
CREATE INDEX ix_deliveries_dead ON deliveries(function) WHERE state = 'dead';
CREATE TABLE attempts (id INTEGER PRIMARY KEY, delivery_id INTEGER NOT NULL, number INTEGER NOT NULL, at REAL NOT NULL,
    version TEXT, outcome TEXT NOT NULL, error TEXT, duration_ms REAL NOT NULL DEFAULT 0);
CREATE INDEX ix_attempts_delivery ON attempts(delivery_id);
CREATE TABLE logs (id INTEGER PRIMARY KEY, time REAL NOT NULL, level TEXT NOT NULL, source TEXT NOT NULL,
    function TEXT, version TEXT, message_id TEXT, outcome TEXT, message TEXT NOT NULL, fields TEXT NOT NULL DEFAULT '{}');
CREATE TABLE _sqlite_migrations (id INTEGER PRIMARY KEY, migration_set TEXT, name TEXT, applied_at TEXT);
CREATE UNIQUE INDEX idx__sqlite_migrations_migration_set_name ON _sqlite_migrations (migration_set, name);
INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('segfuncd', 'm001_queue', '2026-01-01');
PRAGMA user_version = 1;
"""


def write_v1_database(path: Path) -> None:
    """A queue as schema version 1 left it: no counters table, no dedupe table."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.executescript(V1_SCHEMA)
    conn.executemany(
        "INSERT INTO events (id, message_id, type, body, received_at) VALUES (?, ?, 'track', ?, ?)",
        [(i, f"old-{i}", f'{{"type":"track","event":"Old {i}"}}', T0) for i in (1, 2, 3)],
    )
    conn.executemany(
        "INSERT INTO deliveries (event_id, function, state, attempts, due_at, created_at, updated_at, last_error, note) "
        "VALUES (?, 'f', ?, ?, ?, ?, ?, ?, ?)",
        [
            (1, "pending", 2, T0, T0, T0, "FetchError: down", None),
            (2, "dead", 10, None, T0, T0, "RetryError: 503", None),
            (3, "discarded", 1, None, T0, T0, "ValidationError: no email", "ValidationError"),
        ],
    )
    conn.close()


async def test_a_version_1_database_is_migrated_in_place_without_losing_the_queue(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    write_v1_database(path)
    async with store_at(path, FakeClock(T0 + 60)) as store:
        stats = await store.stats()
        f = stats.functions["f"]
        assert (f.accepted, f.pending, f.retrying, f.dead, f.discarded) == (3, 1, 1, 1, 1)
        assert f.discarded_by_reason == {"ValidationError": 1}
        assert store.pending_count == 1
        (lease,) = await store.lease(limit=10, lease_s=60)
        assert lease.message_id == "old-1" and lease.attempts == 2 and lease.event["event"] == "Old 1"
        assert await store.replay() == 1
        assert await store.accept([event(1, message_id="old-3")]) == [False]  # dedupe keys backfilled
        assert await store.accept([event(4)]) == [True]
    conn = sqlite3.connect(str(path))
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    names = [row[0] for row in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
    conn.close()
    assert version == SCHEMA_VERSION
    assert names == [
        "m001_queue",
        "m002_counters",
        "m003_dedupe",
        "m004_logs_by_time",
        "m005_oldest_pending",
        "m006_held_and_identity",
        "m007_dedupe_per_source",
        "m008_event_source",
        "m009_paused_functions",
        "m010_attempt_details",
        "m011_timeline",
        "m012_cluster_records",
        "m013_partial_indexes_without_in",
    ]
    conn = sqlite3.connect(str(path))
    partial = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'"))
    conn.close()
    assert set(partial) >= {"ix_deliveries_due", "ix_deliveries_done", "ix_deliveries_active_function"}
    assert not [name for name, sql in partial.items() if "state IN" in sql]  # m013 rebuilt them with OR


async def test_the_hot_queries_still_use_their_partial_indexes(tmp_path: Path) -> None:
    """The partial indexes are used only when a query repeats their condition exactly: the
    queries the queue runs all the time are planned through them, not by scanning."""
    path = tmp_path / "q.db"
    async with store_at(path, FakeClock(T0)) as store:
        await store.accept([event(i) for i in range(50)])
    conn = sqlite3.connect(str(path))
    conn.execute("ANALYZE")

    def plan(sql: str, *args: object) -> str:
        return " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args))

    assert "ix_deliveries_due" in plan(queue._LEASE + "ORDER BY d.due_at LIMIT ?", T0, 25)
    assert "ix_deliveries_active_function" in plan(
        queue._LEASE + "AND d.function = ? ORDER BY d.due_at LIMIT ?", T0, "f", 25
    )
    assert "ix_deliveries_active_function" in plan(queue._ACTIVE_FUNCTIONS)
    assert "ix_deliveries_done" in plan(
        f"SELECT id FROM deliveries WHERE {FINISHED} AND updated_at < ? LIMIT ?", T0, 10
    )
    assert "SCAN deliveries" not in plan(f"SELECT min(due_at) FROM deliveries WHERE {ACTIVE}")
    conn.close()


async def test_a_database_from_a_newer_segfuncd_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    async with store_at(path, FakeClock()):
        pass
    conn = sqlite3.connect(str(path))
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer segfuncd"):
        async with store_at(path, FakeClock()):
            pass


def log(i: int, *, function: str | None = "f", level: str = "info") -> LogRecord:
    return LogRecord(
        time=T0 + i,
        level=level,
        source="function" if function else "daemon",
        function=function,
        message=f"line {i}",
        fields={"i": i},
    )


async def test_logs_are_bounded_and_read_newest_last(tmp_path: Path) -> None:
    async with store_at(tmp_path / "q.db", FakeClock(), log_lines=10) as store:
        await store.append_logs([log(i) for i in range(25)])
        lines = await store.read_logs(limit=3)
        assert [x.message for x in lines] == ["line 22", "line 23", "line 24"]
        assert lines[0].fields == {"i": 22}
        everything = await store.read_logs(limit=100)
        assert len(everything) == 10 and everything[0].message == "line 15"
        after = await store.read_logs(after_id=lines[0].id, limit=100)
        assert [x.message for x in after] == ["line 23", "line 24"]


async def test_logs_filter_by_function_and_minimum_level(tmp_path: Path) -> None:
    async with store_at(tmp_path / "q.db", FakeClock()) as store:
        await store.append_logs(
            [
                log(1, level="debug"),
                log(2, level="warn"),
                log(3, function="g", level="error"),
                log(4, function=None, level="error"),
            ]
        )
        assert [x.message for x in await store.read_logs(function="f")] == ["line 1", "line 2"]
        assert [x.message for x in await store.read_logs(level="warn")] == ["line 2", "line 3", "line 4"]
        assert [x.source for x in await store.read_logs(level="error")] == ["function", "daemon"]


async def test_the_newest_lines_are_the_latest_in_time_even_when_written_late(tmp_path: Path) -> None:
    async with store_at(tmp_path / "q.db", FakeClock()) as store:
        await store.append_logs([log(5), log(6)])
        await store.append_logs([log(1, function=None)])  # a daemon event pumped in late
        assert [x.message for x in await store.read_logs(limit=2)] == ["line 5", "line 6"]
        assert [x.message for x in await store.read_logs(limit=3)] == ["line 1", "line 5", "line 6"]
        first = (await store.read_logs(limit=1))[0].id
        assert [x.message for x in await store.read_logs(after_id=first)] == ["line 1"]  # cursors go by id


async def test_wait_logs_returns_when_a_newer_line_is_committed(tmp_path: Path) -> None:
    async with store_at(tmp_path / "q.db", FakeClock()) as store:
        await store.append_logs([log(1)])
        (first,) = await store.read_logs()
        assert first.id is not None
        woke: list[int] = []

        async def follower() -> None:
            await store.wait_logs(first.id)  # type: ignore[arg-type]
            woke.extend(x.id for x in await store.read_logs(after_id=first.id) if x.id is not None)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(follower)
            await trio.sleep(0.05)
            assert woke == []
            await store.append_logs([log(2)])
        assert woke == [first.id + 1]
        with trio.fail_after(5):
            await store.wait_logs(0)  # already newer: returns at once


async def test_the_checkpointer_thread_copies_the_wal_back_and_the_close_removes_it(tmp_path: Path) -> None:
    """The WAL is copied back by the checkpointer thread after the writer's commits (whose
    own threshold is pushed out to 64 MiB, so no commit waits for a copy); the checkpointer
    closes first, and the last close removes the WAL."""
    path = tmp_path / "q.db"
    pad = "x" * 2000
    async with store_at(path, FakeClock(T0)) as store:
        for chunk in range(12):  # ~6 MB of WAL frames in 12 commits
            await store.accept([event(chunk * 250 + i, pad=pad) for i in range(250)])
        with trio.fail_after(20):  # a real thread on real time: the wait is bounded, not timed
            while store.statistics().checkpoints == 0:
                await trio.sleep(0.05)
        assert (await store.stats()).functions["f"].pending == 3000
    assert not (tmp_path / "q.db-wal").exists()
