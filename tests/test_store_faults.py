"""The store and dispatcher under faults (issue 12), on a real SQLite file: disk full as a
state, flat pruning, held rows, drain, Retry-After and clock steps (fake time sources)."""

from __future__ import annotations

import gc
import math
import random
from pathlib import Path
from typing import Any

import pytest
import trio
from helpers import faults_rss_bytes, faults_seed_queue
from test_delivery import LIVE, FakePool, throwing
from test_store_helpers import FakeClock, event, store_at

from segfuncd.clock import SteadyClock
from segfuncd.config import FunctionConfig
from segfuncd.delivery import Dispatcher
from segfuncd.errors import Backpressure, StoreError
from segfuncd.functions import Target
from segfuncd.outcomes import (
    InvocationResult,
    Outcome,
    RequestRecord,
    next_attempt_at,
    requested_delay_s,
    retry_after_header,
)
from segfuncd.store import LogRecord, Store, open_store

DEAD = Target(version=None, config=FunctionConfig(), reason="function fails to load: SyntaxError")


def _log(i: int) -> LogRecord:
    return LogRecord(time=float(i), level="info", source="daemon", message=f"line {i} " + "z" * 8000)


async def _limit_pages(store: Store, pages: int) -> None:
    """Make the database 'full' at `pages` pages (SQLite's own SQLITE_FULL, as on a full disk)."""
    await store._write(lambda c, now: c.execute(f"PRAGMA max_page_count = {pages}").fetchall(), "test")


async def test_a_full_database_is_a_fault_with_its_real_cause_and_clears_by_itself(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(0)])
        (pages,) = await store._read(lambda c, now: c.execute("PRAGMA page_count").fetchone(), "test")
        await _limit_pages(store, pages + 2)
        pad = "x" * 20_000
        with pytest.raises(StoreError) as info:
            for i in range(1, 100):
                await store.accept([event(i, pad=pad)])
        assert info.value.kind == "full"
        assert str(info.value).startswith("storage full: ")
        assert "cannot rollback" not in str(info.value)
        # Logs wait in memory instead of raising (the daemon used to die here).
        await store.append_logs([_log(i) for i in range(10)])
        stats = await store.stats()
        assert stats.fault is not None and stats.fault.condition == "storage full"
        assert stats.logs_buffered == 10 and not store.healthy
        # A stuck queue (logs cannot be written) refuses intake at once: 503, not a wait.
        with pytest.raises(Backpressure, match="storage full"):
            await store.accept([event(500)])
        # Space returns: the probe (or the next log flush) clears the fault by itself.
        await _limit_pages(store, 1_000_000)
        with trio.fail_after(10):
            while not store.healthy:
                await trio.sleep(0.1)
        assert await store.accept([event(501)]) == [True]
        await store.append_logs([])
        lines = await store.read_logs(limit=100)
        assert [x.message.split()[1] for x in lines if x.source == "daemon"] == [str(i) for i in range(10)]


async def test_log_lines_beyond_the_memory_buffer_are_dropped_and_counted(tmp_path: Path) -> None:
    from segfuncd.store import service

    async with store_at(tmp_path / "q.db", FakeClock()) as store:
        (pages,) = await store._read(lambda c, now: c.execute("PRAGMA page_count").fetchone(), "test")
        await _limit_pages(store, pages)
        big = "y" * 2000
        for _ in range(0, service.LOG_BACKLOG + 500, 5_000):
            await store.append_logs(
                [LogRecord(time=1.0, level="info", source="daemon", message=big) for _i in range(5_000)]
            )
        stats = await store.stats()
        assert stats.logs_buffered == service.LOG_BACKLOG
        assert stats.logs_dropped == 25_000 - service.LOG_BACKLOG


async def test_pruning_200k_rows_keeps_rss_within_20_mb(tmp_path: Path) -> None:
    """Constant-size statements: the statement cache cannot grow with the rows pruned."""
    db = tmp_path / "q.db"
    faults_seed_queue(db, function="f", n=200_000, state="delivered", at=1000.0)
    async with open_store(db, clock=lambda: 10_000_000.0, retention_s=3600, prune_interval_s=math.inf) as store:
        gc.collect()
        before = faults_rss_bytes()
        result = await store.prune()
        gc.collect()
        after = faults_rss_bytes()
        assert (result.deliveries, result.attempts, result.events) == (200_000, 200_000, 200_000)
        assert after - before < 20 * 1024 * 1024, f"RSS grew by {(after - before) / 2**20:.1f} MB"
        (free,) = await store._read(lambda c, now: c.execute("PRAGMA freelist_count").fetchone(), "test")
        assert free == 0  # incremental auto-vacuum handed the pages back
    assert db.stat().st_size < 2 * 1024 * 1024
    wal = db.with_name("q.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0


# --- held rows ----------------------------------------------------------------------------------


async def test_a_function_that_cannot_run_has_its_whole_backlog_held_in_one_go(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(i) for i in range(1_000)])
        pool: Any = FakePool()
        target = {"f": DEAD}
        d = Dispatcher(store, pool, resolve=lambda f: target[f], clock=clock, batch_size=100)
        assert await d.run_once() == 100  # one lease meets the failure...
        assert await d.run_once() == 0  # ...and every other row of the function is on hold
        clock.advance(3600)
        assert await d.run_once() == 0  # still nothing to lease an hour later: no periodic work
        assert await store.held_functions() == ["f"]
        (row,) = await store.deliveries(limit=1)
        assert row.state.value == "pending" and row.note == DEAD.reason
        assert not pool.calls
        assert (await store.stats()).functions["f"].pending == 1_000
        # It loads again: the rows are due at once.
        assert await store.wake("f") == 1_000
        target["f"] = LIVE
        assert await d.run_once() == 100


async def test_the_dispatcher_wakes_held_functions_when_they_can_run_again(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(i) for i in range(50)])
        pool: Any = FakePool()
        target = {"f": DEAD}
        async with trio.open_nursery() as nursery:
            d = await nursery.start(Dispatcher(store, pool, resolve=lambda f: target[f], clock=clock).serve)
            with trio.fail_after(20):
                while await store.held_functions() != ["f"]:
                    await trio.sleep(0.05)
            assert not pool.calls
            target["f"] = LIVE  # e.g. enabled by a config reload: no registry wake-up
            with trio.fail_after(20):
                while (await store.stats()).functions["f"].delivered < 50:
                    await trio.sleep(0.1)
            await d.drain(timeout_s=5)
            nursery.cancel_scope.cancel()


# --- drain --------------------------------------------------------------------------------------


async def test_drain_finishes_running_invocations_and_hands_the_rest_back_at_once(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(i) for i in range(400)])
        pool: Any = FakePool(delay_s=1.0)
        async with trio.open_nursery() as nursery:
            d = await nursery.start(
                Dispatcher(store, pool, resolve=lambda f: LIVE, clock=clock, concurrency=2, invoke_size=10).serve
            )
            with trio.fail_after(20):  # two invocations run, the rest of the leased rows wait for a slot
                while len(pool.calls) < 2 or (await store.stats()).leased < 100:
                    await trio.sleep(0.01)
            running = len(pool.calls)
            assert running == 2
            await d.drain(timeout_s=60)
            assert len(pool.calls) == running  # no new invocation
            stats = await store.stats()
            assert stats.leased == 0 and stats.pending == 400 - 20
            assert stats.functions["f"].delivered == 20
            nursery.cancel_scope.cancel()


# --- Retry-After ----------------------------------------------------------------------------------


def _retry(*, retry_after: float | None = None, status: int | None = None, header: float | None = None) -> Any:
    requests = (
        ()
        if status is None
        else (RequestRecord(method="POST", url="u", status=status, duration_ms=1, retry_after=header),)
    )
    return InvocationResult(
        outcome=Outcome.RETRY, error_name="RetryError", error_message="x", retry_after=retry_after, requests=requests
    )


def test_requested_delay_comes_from_retry_error_or_the_last_429_or_503() -> None:
    assert requested_delay_s(_retry(retry_after=30)) == 30
    assert requested_delay_s(_retry(status=429, header=30)) == 30
    assert requested_delay_s(_retry(status=503, header=12)) == 12
    assert requested_delay_s(_retry(status=500, header=30)) is None  # only 429 / 503
    assert requested_delay_s(_retry(status=429, header=None)) is None
    assert requested_delay_s(_retry(retry_after=10 * 3600)) == 3600  # capped
    assert requested_delay_s(_retry(retry_after=-5)) is None
    fetch_error = InvocationResult(outcome=Outcome.RETRY, error_name="FetchError", retry_after=30)
    assert requested_delay_s(fetch_error) is None  # the function decides: only RetryError


def test_retry_after_header_reads_seconds_and_http_dates() -> None:
    now = 1_800_000_000.0
    assert retry_after_header([("Retry-After", "30")], now=now) == 30
    assert retry_after_header([("retry-after", "Fri, 15 Jan 2027 08:00:30 GMT")], now=1_800_000_000.0) == 30
    assert retry_after_header([("retry-after", "Fri, 15 Jan 2027 08:00:30 GMT")], now=1_800_000_100.0) == 0
    assert retry_after_header([("retry-after", "soon")], now=now) is None
    assert retry_after_header([("content-type", "x")], now=now) is None


def test_next_attempt_waits_at_least_the_requested_delay() -> None:
    rng = random.Random(1)
    assert next_attempt_at(1, now=100.0, base_delay_s=30, rng=rng, retry_after_s=600) == 700.0
    assert 124 <= next_attempt_at(1, now=100.0, base_delay_s=30, rng=rng, retry_after_s=1) <= 136
    assert next_attempt_at(1, now=0.0, base_delay_s=1, rng=rng, retry_after_s=1e9) == 3600.0


# --- clock steps ------------------------------------------------------------------------------------


class SteppableWall:
    """The system's wall clock, stepped by the test (as `date -s` would); it runs with trio's
    MockClock, which (unlike trio.current_time) the store's threads may read too."""

    def __init__(self, mock: Any) -> None:
        self.mock = mock
        self.offset = 1_800_000_000.0

    def __call__(self) -> float:
        return self.offset + float(self.mock.current_time())


@pytest.mark.parametrize("step_s", [-3600.0, 3600.0, 25 * 3600.0])
async def test_a_wall_clock_step_moves_no_retry(tmp_path: Path, autojump_clock: Any, step_s: float) -> None:
    # Jump only once everything has waited 50 ms of real time: the store's threads finish
    # their jobs long before, so virtual time does not run away while they work.
    autojump_clock.autojump_threshold = 0.05
    wall = SteppableWall(autojump_clock)
    clock = SteadyClock(wall=wall, monotonic=autojump_clock.current_time)
    async with open_store(tmp_path / "q.db", clock=clock, prune_interval_s=math.inf) as store:
        await store.accept([event(1)])
        pool: Any = FakePool(throwing("RetryError", Outcome.RETRY))
        times: list[float] = []
        orig = pool.invoke

        async def invoke(*args: Any, **kw: Any) -> Any:
            times.append(trio.current_time())
            return await orig(*args, **kw)

        pool.invoke = invoke  # type: ignore[method-assign]
        d = Dispatcher(
            store, pool, resolve=lambda f: LIVE, clock=clock, rng=random.Random(3), base_delay_s=30, max_attempts=3
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(d.serve)
            with trio.fail_after(600):  # virtual time: autojump also jumps while threads work
                while not times:
                    await trio.sleep(0.01)
            wall.offset += step_s  # the clock is stepped while the retry is scheduled
            with trio.fail_after(7200):
                while len(times) < 2:
                    await trio.sleep(0.5)
            # 30 s x jitter 0.8..1.2, plus at most the idle wake-up: never an hour early or late.
            assert 24 <= times[1] - times[0] <= 36 + 5.1
            nursery.cancel_scope.cancel()


async def test_a_wall_clock_step_does_not_reopen_the_dedupe_window(tmp_path: Path, autojump_clock: Any) -> None:
    # Jump only once everything has waited 50 ms of real time: the store's threads finish
    # their jobs long before, so virtual time does not run away while they work.
    autojump_clock.autojump_threshold = 0.05
    wall = SteppableWall(autojump_clock)
    clock = SteadyClock(wall=wall, monotonic=autojump_clock.current_time)
    async with open_store(tmp_path / "q.db", clock=clock, prune_interval_s=math.inf) as store:
        assert await store.accept([event(1, message_id="m-1")]) == [True]
        wall.offset += 25 * 3600
        await trio.sleep(60)
        assert await store.accept([event(2, message_id="m-1")]) == [False]  # still a duplicate


async def test_a_lease_that_fails_at_run_time_turns_intake_away_until_it_works_again(tmp_path: Path) -> None:
    async with store_at(tmp_path / "q.db", FakeClock()) as store:
        await store.accept([event(1)])
        # A table the lease needs becomes unreadable (as a damaged page would make it).
        await store._write(lambda c, now: c.execute("ALTER TABLE events RENAME TO events_gone"), "test")
        with pytest.raises(StoreError):
            await store.lease(limit=10, lease_s=60)
        fault = (await store.stats()).fault
        assert fault is not None and fault.what == "lease" and not store.healthy
        with pytest.raises(Backpressure, match="lease fails"):
            await store.accept([event(2)])  # 503 at intake: the queue cannot move
        await store._write(lambda c, now: c.execute("ALTER TABLE events_gone RENAME TO events"), "test")
        assert len(await store.lease(limit=10, lease_s=60)) == 1
        assert store.healthy and await store.accept([event(3)]) == [True]


async def test_the_watchdog_keeps_pinging_and_says_storage_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from segfuncd.daemon import ping_watchdog
    from segfuncd.store import StoreFault

    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))

    class Faulted:
        fault: StoreFault | None = StoreFault(
            what="append_logs", kind="full", message="storage full: database or disk is full", since=0.0
        )

    store = Faulted()
    with trio.move_on_after(0.35):
        await ping_watchdog(0.1, store)  # type: ignore[arg-type]
    store.fault = None
    with trio.move_on_after(0.15):
        await ping_watchdog(0.1, store)  # type: ignore[arg-type]
    got = []
    while True:
        try:
            got.append(sock.recv(4096).decode())
        except BlockingIOError:
            break
    sock.close()
    assert got[0] == "WATCHDOG=1\nSTATUS=storage full: database or disk is full"
    assert got[1:3] == ["WATCHDOG=1", "WATCHDOG=1"]  # still pinging: a restart would not free the disk
    assert all(g.startswith("WATCHDOG=1") for g in got)
