"""store/timeline.py: per-minute counters and error groups, bumped with the completions they count."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils
from test_store_helpers import T0, FakeClock, done, event, store_at

from segfuncd.outcomes import DeliveryState, Outcome
from segfuncd.store import schema
from segfuncd.store.timeline import MAX_ERROR_MESSAGE, MINUTES_KEPT

MINUTE0 = (T0 // 60) * 60


async def test_completions_land_in_their_minute_with_outcome_counts_and_latency(tmp_path: Path) -> None:
    clock = FakeClock(MINUTE0 + 5)
    async with store_at(tmp_path / "s.db", clock) as store:
        await store.accept([event(i, functions=("f", "g")) for i in range(6)])
        leases = await store.lease(limit=12, lease_s=60)
        f = [x for x in leases if x.function == "f"]
        g = [x for x in leases if x.function == "g"]
        await store.complete(
            [
                done(f[0], Outcome.DELIVERED, state=DeliveryState.DELIVERED),
                done(f[1], Outcome.DELIVERED, state=DeliveryState.DELIVERED),
                done(f[2], Outcome.RETRY, state=DeliveryState.PENDING, error="RetryError", next_attempt_at=T0 + 9e3),
                done(f[3], Outcome.FAILED, state=DeliveryState.DEAD, error="TypeError"),
                done(f[4], Outcome.DISCARDED, state=DeliveryState.DISCARDED, error="ValidationError"),
                done(g[0], Outcome.DELIVERED, state=DeliveryState.DELIVERED),
            ]
        )
        clock.advance(60)  # the next minute
        await store.complete([done(f[5], Outcome.RETRY, state=DeliveryState.DEAD, error="RetryError")])

        buckets = await store.timeline(function="f", since=MINUTE0 - 600, until=MINUTE0 + 600)
        assert [b.start for b in buckets] == [MINUTE0, MINUTE0 + 60]
        first, second = buckets
        assert (first.delivered, first.retried, first.dead, first.discarded, first.failed, first.attempts) == (
            2,
            1,
            1,
            1,
            1,
            5,
        )
        assert first.mean_ms == 5.0 and first.success_rate == 2 / 5
        # A retry outcome that ends the delivery dead counts as dead, not as retried.
        assert (second.retried, second.dead, second.attempts) == (0, 1, 1)

        both = await store.timeline(since=MINUTE0, until=MINUTE0 + 120, step_minutes=15)
        assert {(b.function, b.delivered, b.attempts) for b in both} == {("f", 2, 6), ("g", 1, 1)}
        assert await store.timeline(function="f", since=MINUTE0 + 120, until=MINUTE0 + 600) == []

        groups = await store.error_groups("f")
        assert [(e.name, e.message, e.count) for e in groups] == [
            ("RetryError", "boom", 2),
            ("TypeError", "boom", 1),
            ("ValidationError", "boom", 1),
        ]
        assert groups[0].first_at == MINUTE0 + 5 and groups[0].last_at == MINUTE0 + 65
        assert await store.error_groups("g") == []


async def test_retrying_lists_failed_active_deliveries_newest_first(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "s.db", clock) as store:
        for i in range(4):
            await store.accept([event(i)])
            clock.advance(1)
        leases = await store.lease(limit=4, lease_s=60)
        await store.complete(
            [
                done(x, Outcome.RETRY, state=DeliveryState.PENDING, error="RetryError", next_attempt_at=T0 + 9e3)
                for x in leases[:3]
            ]
        )
        rows = await store.retrying("f", limit=2)
        assert [r.id for r in rows] == [leases[2].id, leases[1].id]
        assert all(r.attempts == 1 and r.last_error == "RetryError: boom" for r in rows)
        assert await store.retrying("other") == []


async def test_long_error_messages_are_cut_so_groups_stay_bounded(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "s.db", clock) as store:
        await store.accept([event(1)])
        (lease,) = await store.lease(limit=1, lease_s=60)
        c = done(lease, Outcome.FAILED, state=DeliveryState.DEAD, error="Error")
        long = type(c.result)(outcome=Outcome.FAILED, error_name="Error", error_message="x" * 10_000, duration_ms=1.0)
        await store.complete([type(c)(**{**{f: getattr(c, f) for f in c.__dataclass_fields__}, "result": long})])
        (group,) = await store.error_groups("f")
        assert len(group.message) == MAX_ERROR_MESSAGE


async def test_prune_drops_old_minutes_and_errors(tmp_path: Path) -> None:
    clock = FakeClock(MINUTE0)
    async with store_at(tmp_path / "s.db", clock) as store:
        await store.accept([event(1)])
        (lease,) = await store.lease(limit=1, lease_s=60)
        await store.complete([done(lease, Outcome.FAILED, state=DeliveryState.DEAD, error="TypeError")])
        clock.advance((MINUTES_KEPT + 2) * 60)
        await store.prune()
        assert await store.timeline(function="f", since=0, until=clock.now) == []
        assert await store.error_groups("f") == []


def test_the_migration_backfills_from_attempts_kept(tmp_path: Path) -> None:
    """An upgraded database shows its recent past: m011 derives minutes and errors from attempts."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(str(path), isolation_level=None)
    db = sqlite_utils.Database(conn)
    schema.MIGRATIONS.apply(db, stop_before="m011_timeline")  # a database from before the console
    conn.executescript(
        f"""
        INSERT INTO events (id, message_id, type, body, received_at) VALUES (1, 'm', 'track', '{{}}', {T0});
        INSERT INTO deliveries (id, event_id, function, state, attempts, created_at, updated_at)
            VALUES (1, 1, 'f', 'dead', 2, {T0}, {T0}), (2, 1, 'g', 'delivered', 1, {T0}, {T0});
        INSERT INTO attempts (delivery_id, number, at, outcome, error, duration_ms) VALUES
            (1, 1, {MINUTE0 + 1}, 'retry', 'RetryError: later', 4),
            (1, 2, {MINUTE0 + 61}, 'retry', 'RetryError: later', 6),
            (2, 1, {MINUTE0 + 2}, 'delivered', NULL, 2);
        """
    )
    conn.close()
    schema.migrate(path)
    conn = sqlite3.connect(str(path))
    rows = conn.execute(
        "SELECT function, minute, delivered, retried, dead, attempts, duration_ms_total FROM function_minutes "
        "ORDER BY function, minute"
    ).fetchall()
    m = int(MINUTE0 // 60)
    assert rows == [("f", m, 0, 1, 0, 1, 4.0), ("f", m + 1, 0, 0, 1, 1, 6.0), ("g", m, 1, 0, 0, 1, 2.0)]
    assert conn.execute("SELECT function, name, message, count FROM function_errors").fetchall() == [
        ("f", "RetryError", "later", 2)
    ]
