"""The store's accept path on a real SQLite file: group commit, dedupe, backpressure, errors."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import trio
from test_store_helpers import FakeClock, done, event, store_at

from segfuncd.errors import Backpressure, StoreError
from segfuncd.outcomes import DeliveryState, Outcome
from segfuncd.store import DEDUPE_WINDOW_S, NewEvent
from segfuncd.store.writer import Job


def committed_message_ids(path: Path) -> set[str]:
    """What another connection (another process, after a crash) would see."""
    conn = sqlite3.connect(str(path))
    try:
        return {row[0] for row in conn.execute("SELECT message_id FROM events")}
    finally:
        conn.close()


async def test_an_accepted_event_and_its_deliveries_are_in_the_file_when_accept_returns(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    async with store_at(path, FakeClock()) as store:
        assert await store.accept([event(1, functions=("a", "b"))]) == [True]
        assert committed_message_ids(path) == {"msg-1"}
        conn = sqlite3.connect(str(path))
        rows = conn.execute("SELECT function, state, attempts FROM deliveries ORDER BY function").fetchall()
        conn.close()
        assert rows == [("a", "pending", 0), ("b", "pending", 0)]
        assert store.pending_count == 2


async def test_concurrent_accepts_share_one_commit_and_each_returns_only_after_it(tmp_path: Path) -> None:
    """Group commit: callers queued behind a busy writer are committed together."""
    path = tmp_path / "q.db"
    gate = threading.Event()
    async with store_at(path, FakeClock()) as store:
        returned: list[int] = []

        async def hold_the_writer() -> None:
            await store._writer.submit(Job(lambda conn, now: gate.wait(10), what="test"), shield=True)

        async def accept(i: int) -> None:
            assert await store.accept([event(i)]) == [True]
            # Its own rows are committed (visible to another connection) when it returns.
            assert f"msg-{i}" in committed_message_ids(path)
            returned.append(i)

        commits_before = store.statistics().commits
        async with trio.open_nursery() as nursery:
            nursery.start_soon(hold_the_writer)
            await trio.sleep(0.05)
            for i in range(40):
                nursery.start_soon(accept, i)
            await trio.sleep(0.1)
            # Queued behind the busy writer: nobody has been told "stored", nothing is visible.
            assert returned == []
            assert committed_message_ids(path) == set()
            gate.set()
        assert sorted(returned) == list(range(40))
        stats = store.statistics()
        assert stats.largest_group == 40
        assert stats.commits - commits_before <= 2  # the held job's group + one group of 40
        assert stats.accept_calls == 40


async def test_a_message_id_seen_within_24_hours_is_a_duplicate(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock) as store:
        assert await store.accept([event(1), event(1), event(2)]) == [True, False, True]
        assert await store.accept([event(1)]) == [False]
        assert store.pending_count == 2  # duplicates created no delivery rows
        clock.advance(DEDUPE_WINDOW_S - 1)
        assert await store.accept([event(2)]) == [False]
        clock.advance(2)
        assert await store.accept([event(1)]) == [True]  # msg-1 was last seen > 24 h ago
        stats = store.statistics()
        assert stats.events_stored == 3 and stats.duplicates == 3


async def test_dedupe_is_per_scope_and_message_id(tmp_path: Path) -> None:
    def from_source(i: int, source: str) -> NewEvent:
        e = event(i)
        return NewEvent(message_id=e.message_id, type=e.type, body=e.body, functions=e.functions, dedupe_scope=source)

    async with store_at(tmp_path / "q.db", FakeClock()) as store:
        assert await store.accept([from_source(1, "aaaa"), from_source(1, "bbbb")]) == [True, True]
        assert await store.accept([from_source(1, "bbbb"), from_source(1, "")]) == [False, True]
        assert store.pending_count == 3


async def test_events_without_a_message_id_are_never_deduplicated(tmp_path: Path) -> None:
    async with store_at(tmp_path / "q.db", FakeClock()) as store:
        assert await store.accept([event(1, message_id=""), event(2, message_id="")]) == [True, True]
        assert store.pending_count == 2


async def test_an_event_for_no_function_is_acknowledged_and_remembered_for_dedupe(tmp_path: Path) -> None:
    async with store_at(tmp_path / "q.db", FakeClock()) as store:
        assert await store.accept([event(1, functions=())]) == [True]
        assert store.pending_count == 0
        assert await store.accept([event(1)]) == [False]


async def test_duplicate_functions_of_one_event_make_one_delivery_each(tmp_path: Path) -> None:
    async with store_at(tmp_path / "q.db", FakeClock()) as store:
        await store.accept([event(1, functions=("a", "a", "b"))])
        assert store.pending_count == 2


async def test_the_body_round_trips_exactly(tmp_path: Path) -> None:
    body = {
        "type": "track",
        "a": 0.1,
        "b": 1e100,
        "c": 'x\u00e9"\\',
        "d": [1, {"e": None}],
        "big": 12345678901234567890,
        "emoji": "😀",
        "t": True,
    }
    async with store_at(tmp_path / "q.db", FakeClock()) as store:
        await store.accept([NewEvent(message_id="m", type="track", body=body, functions=("f",))])
        (lease,) = await store.lease(limit=5, lease_s=60)
        assert lease.event == body
        assert lease.message_id == "m"


async def test_a_body_that_is_not_json_fails_only_its_own_call(tmp_path: Path) -> None:
    async with store_at(tmp_path / "q.db", FakeClock()) as store:
        with pytest.raises(TypeError):
            await store.accept([NewEvent(message_id="x", type="track", body={"s": {1, 2}}, functions=("f",))])
        with pytest.raises(ValueError):
            await store.accept([NewEvent(message_id="y", type="track", body={"n": float("nan")}, functions=("f",))])
        assert store.pending_count == 0
        assert await store.accept([event(1)]) == [True]


async def test_backpressure_refuses_accepts_at_the_limit_until_deliveries_finish(tmp_path: Path) -> None:
    async with store_at(tmp_path / "q.db", FakeClock(), max_pending=3) as store:
        await store.accept([event(1, functions=("a", "b"))])  # 2 pending
        await store.accept([event(2, functions=("a", "b"))])  # under the limit when asked: 4 pending
        with pytest.raises(Backpressure) as info:
            await store.accept([event(3)])
        assert info.value.retry_after_s > 0
        assert "max_pending" in str(info.value)
        assert store.pending_count == 4  # the refused call reserved nothing
        leases = await store.lease(limit=2, lease_s=60)
        await store.complete([done(lease, Outcome.DELIVERED, state=DeliveryState.DELIVERED) for lease in leases])
        assert store.pending_count == 2
        assert await store.accept([event(3)]) == [True]


async def test_pending_count_survives_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(i, functions=("a", "b")) for i in range(5)])
    async with store_at(tmp_path / "q.db", clock, max_pending=10) as store:
        assert store.pending_count == 10
        with pytest.raises(Backpressure):
            await store.accept([event(9)])


async def test_sqlite_failures_reach_the_caller_as_store_error(tmp_path: Path) -> None:
    async with store_at(tmp_path / "q.db", FakeClock()) as store:

        def broken(conn: sqlite3.Connection, now: float) -> None:
            conn.execute("INSERT INTO no_such_table VALUES (1)")

        with pytest.raises(StoreError) as info:
            await store._writer.submit(Job(broken, what="test"), shield=True)
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        assert "test" in str(info.value)
        # The failed job rolled back alone; the store keeps working.
        assert await store.accept([event(1)]) == [True]
        assert store.healthy


async def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError) as info:
        async with store_at(path, FakeClock()):
            pass
    assert str(path) in str(info.value)
    assert "not a database" in str(info.value)  # refused at the integrity check, before any write
    assert "--accept-state-loss" in str(info.value)


async def test_synchronous_full_is_applied_and_bad_values_refused(tmp_path: Path) -> None:
    async with store_at(tmp_path / "q.db", FakeClock(), synchronous="full") as store:
        (level,) = await store._read(lambda conn, now: conn.execute("PRAGMA synchronous").fetchone(), "test")
        assert level == 2  # FULL
        (mode,) = await store._read(lambda conn, now: conn.execute("PRAGMA journal_mode").fetchone(), "test")
        assert mode == "wal"
    with pytest.raises(ValueError):
        async with store_at(tmp_path / "r.db", FakeClock(), synchronous="sometimes"):
            pass
