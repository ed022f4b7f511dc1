"""The queue on a real SQLite file: leases and their expiry, outcomes, dead letters, replay."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_store_helpers import FakeClock, done, event, store_at

from segfuncd.outcomes import DeliveryState, Outcome


async def test_lease_hands_out_due_deliveries_once(tmp_path: Path) -> None:
    async with store_at(tmp_path / "q.db", FakeClock()) as store:
        await store.accept([event(i, functions=("a", "b")) for i in range(3)])
        first = await store.lease(limit=4, lease_s=60)
        second = await store.lease(limit=4, lease_s=60)
        assert len(first) == 4 and len(second) == 2
        assert not {x.id for x in first} & {x.id for x in second}
        assert await store.lease(limit=4, lease_s=60) == []
        assert (await store.stats()).leased == 6
        assert first[0].attempts == 0 and first[0].event["event"] == "E0"


async def test_each_lease_gets_its_own_copy_of_the_event(tmp_path: Path) -> None:
    async with store_at(tmp_path / "q.db", FakeClock()) as store:
        await store.accept([event(1, functions=("a", "b"))])
        a, b = await store.lease(limit=2, lease_s=60)
        a.event["properties"]["i"] = "changed"
        assert b.event["properties"]["i"] == 1


async def test_an_expired_lease_makes_the_delivery_due_again(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(1), event(2)])
        leased = await store.lease(limit=10, lease_s=60)
        assert await store.next_due() == clock.now + 60
        clock.advance(59)
        assert await store.lease(limit=10, lease_s=60) == []
        clock.advance(2)
        again = await store.lease(limit=10, lease_s=60)
        assert [x.id for x in again] == [x.id for x in leased]
        assert all(x.attempts == 0 for x in again)  # an expired lease uses no attempt


async def test_reopening_the_store_releases_leases_of_the_dead_process(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(1)])
        assert len(await store.lease(limit=10, lease_s=3600)) == 1
    # As after kill -9: the lease is still in the file, but nobody holds it any more.
    async with store_at(tmp_path / "q.db", clock) as store:
        assert len(await store.lease(limit=10, lease_s=3600)) == 1


async def test_next_due_is_none_for_an_empty_queue_and_the_earliest_due_otherwise(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock) as store:
        assert await store.next_due() is None
        await store.accept([event(1), event(2)])
        assert await store.next_due() == clock.now
        a, b = await store.lease(limit=2, lease_s=60)
        await store.complete(
            [done(a, Outcome.RETRY, state=DeliveryState.PENDING, error="RetryError", next_attempt_at=clock.now + 30)]
        )
        await store.complete([done(b, Outcome.DELIVERED, state=DeliveryState.DELIVERED)])
        assert await store.next_due() == clock.now + 30


async def test_outcomes_move_rows_and_counters_in_one_transaction(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(i) for i in range(5)])
        l0, l1, l2, l3, l4 = await store.lease(limit=5, lease_s=60)
        await store.complete(
            [
                done(l0, Outcome.DELIVERED, state=DeliveryState.DELIVERED),
                done(l1, Outcome.DISCARDED, state=DeliveryState.DISCARDED, error="ValidationError"),
                done(l2, Outcome.FAILED, state=DeliveryState.DEAD, error="TypeError"),
                done(
                    l3, Outcome.RETRY, state=DeliveryState.PENDING, error="FetchError", next_attempt_at=clock.now + 30
                ),
                done(l4, Outcome.DISCARDED, state=DeliveryState.FILTERED, error="Filtered"),
            ]
        )
        stats = await store.stats()
        f = stats.functions["f"]
        assert (f.accepted, f.delivered, f.discarded, f.failed, f.retried, f.filtered) == (5, 1, 1, 1, 1, 1)
        assert (f.pending, f.retrying, f.dead, f.dead_lettered) == (1, 1, 1, 1)
        assert f.attempts == 4  # a filtered delivery used no attempt
        assert f.discarded_by_reason == {"ValidationError": 1}
        assert f.filtered_by_reason == {"boom": 1}
        assert f.last_error == "FetchError: boom"
        assert f.duration_ms_total == 20.0
        assert (stats.pending, stats.leased, stats.dead) == (1, 0, 1)
        assert stats.oldest_pending_age_s == 0.0
        clock.advance(10)
        assert (await store.stats()).oldest_pending_age_s == 10.0
        detail = await store.delivery(l3.id)
        assert detail is not None
        assert detail.summary.state is DeliveryState.PENDING
        assert detail.summary.next_attempt_at == clock.now - 10 + 30
        assert [a.outcome for a in detail.attempts] == ["retry"]
        assert detail.event["event"] == l3.event["event"]


async def test_completing_a_delivery_twice_counts_it_once(tmp_path: Path) -> None:
    async with store_at(tmp_path / "q.db", FakeClock()) as store:
        await store.accept([event(1)])
        (lease,) = await store.lease(limit=1, lease_s=60)
        await store.complete([done(lease, Outcome.DELIVERED, state=DeliveryState.DELIVERED)])
        await store.complete([done(lease, Outcome.DELIVERED, state=DeliveryState.DELIVERED)])
        f = (await store.stats()).functions["f"]
        assert (f.delivered, f.attempts, f.pending) == (1, 1, 0)
        assert store.pending_count == 0


async def test_postponed_deliveries_keep_their_attempts_and_wake_when_the_function_loads(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(1, functions=("broken", "ok"))])
        leases = await store.lease(limit=2, lease_s=60)
        broken = [x for x in leases if x.function == "broken"]
        await store.postpone([x.id for x in broken], until=clock.now + 3600, reason="broken.js:3: SyntaxError")
        await store.release([x.id for x in leases if x.function == "ok"])
        assert [x.function for x in await store.lease(limit=5, lease_s=60)] == ["ok"]
        (summary,) = await store.deliveries(function="broken")
        assert summary.state is DeliveryState.PENDING and summary.note == "broken.js:3: SyntaxError"
        assert await store.wake("ok") == 0  # released rows are not "postponed"
        assert await store.wake("broken") == 1
        (again,) = await store.lease(limit=5, lease_s=60)
        assert again.function == "broken" and again.attempts == 0
        assert (await store.stats()).leased == 2


async def test_dead_letters_keep_event_errors_and_version_and_replay_resets_attempts(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(i, functions=("a", "b")) for i in range(3)])
        leases = await store.lease(limit=10, lease_s=60)
        await store.complete(
            [done(x, Outcome.FAILED, state=DeliveryState.DEAD, error="TypeError", version="abc123") for x in leases]
        )
        assert (await store.stats()).dead == 6
        dead = await store.deliveries(state="dead", limit=100)
        assert len(dead) == 6
        detail = await store.delivery(dead[0].id)
        assert detail is not None
        assert detail.summary.version == "abc123" and detail.summary.last_error == "TypeError: boom"
        assert detail.attempts[0].error == "TypeError: boom" and detail.attempts[0].version == "abc123"
        assert detail.event["type"] == "track"

        one = dead[0]
        assert await store.replay(delivery_id=one.id) == 1
        assert await store.replay(delivery_id=one.id) == 0  # no longer dead
        assert await store.replay(function="a") == 3 - (one.function == "a")
        stats = await store.stats()
        assert stats.dead == 6 - 1 - (3 - (one.function == "a"))
        assert await store.replay() == stats.dead
        stats = await store.stats()
        assert stats.dead == 0 and stats.pending == 6
        assert store.pending_count == 6
        assert stats.functions["a"].replayed == 3 and stats.functions["a"].dead_lettered == 3
        again = await store.lease(limit=10, lease_s=60)
        assert len(again) == 6 and all(x.attempts == 0 for x in again)
        # History is kept across the replay.
        detail = await store.delivery(one.id)
        assert detail is not None and len(detail.attempts) == 1


async def test_listing_refuses_an_unknown_state(tmp_path: Path) -> None:
    async with store_at(tmp_path / "q.db", FakeClock()) as store:
        with pytest.raises(ValueError):
            await store.deliveries(state="lost")
        assert await store.delivery(12345) is None
