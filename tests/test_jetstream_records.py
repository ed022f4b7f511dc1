"""store/cluster_records.py and jetstream/summaries.py: cluster mode's delivery records (real SQLite file)."""

from __future__ import annotations

import json
from pathlib import Path

from test_store_helpers import T0, FakeClock, store_at

from segfuncd.jetstream import summaries
from segfuncd.outcomes import DeliveryState, InvocationResult, Outcome
from segfuncd.store import Completion
from segfuncd.store.cluster_records import ClusterRecord

BODY = json.dumps({"type": "track", "event": "E", "messageId": "m1"})


def rec(
    delivery: int,
    outcome: Outcome,
    state: DeliveryState,
    *,
    before: int = 0,
    at: float = T0,
    node: str = "n1",
    function: str = "f",
    due: float | None = None,
    detail: str | None = '{"outcome":"x"}',
) -> ClusterRecord:
    error = None if outcome is Outcome.DELIVERED else "RetryError"
    result = InvocationResult(
        outcome=outcome, error_name=error, error_message="boom" if error else None, duration_ms=4.0
    )
    completion = Completion(
        delivery_id=99,  # the node's lease id: never what is recorded
        function=function,
        result=result,
        version="v1",
        state=state,
        next_attempt_at=due,
        detail=detail,
    )
    return ClusterRecord(
        delivery_id=delivery,
        completion=completion,
        message_id="m1",
        type="track",
        source="web",
        body=BODY,
        attempts_before=before,
        at=at,
        node=node,
    )


async def test_records_list_show_and_chart_a_delivery_across_its_attempts(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "s.db", clock) as store:
        await store.record_cluster(
            [
                rec(10_000, Outcome.RETRY, DeliveryState.PENDING, due=T0 + 5),
                rec(20_000, Outcome.DELIVERED, DeliveryState.DELIVERED),
                rec(20_001, Outcome.DELIVERED, DeliveryState.FILTERED, function="g"),
            ]
        )
        await store.record_cluster([rec(10_000, Outcome.RETRY, DeliveryState.DEAD, before=1, at=T0 + 6)])
        rows = await store.cluster_deliveries()
        assert [(r.id, r.state, r.attempts) for r in rows] == [
            (20_001, DeliveryState.FILTERED, 0),
            (20_000, DeliveryState.DELIVERED, 1),
            (10_000, DeliveryState.DEAD, 2),
        ]
        assert [r.id for r in await store.cluster_deliveries(state="dead")] == [10_000]
        assert [r.id for r in await store.cluster_deliveries(function="g")] == [20_001]
        assert len(await store.cluster_deliveries(message_id="m1")) == 3
        assert await store.cluster_deliveries(message_id="nope") == []
        detail = await store.cluster_delivery(10_000)
        assert detail is not None and detail.event["messageId"] == "m1" and detail.summary.source == "web"
        assert [(a.number, a.outcome, a.node, a.detail) for a in detail.attempts] == [
            (1, "retry", "n1", '{"outcome":"x"}'),
            (2, "retry", "n1", '{"outcome":"x"}'),
        ]
        assert await store.cluster_delivery(30_000) is None
        # Another node's later attempt (a summary) joins this node's two, by time; the state is the newest.
        later = summaries.encode(rec(10_000, Outcome.DELIVERED, DeliveryState.DELIVERED, before=2, at=T0 + 9, node="b"))
        merged = summaries.merge(detail, [later], 10_000, node="n1")
        assert merged is not None and [(a.number, a.node) for a in merged.attempts] == [(1, "n1"), (2, "n1"), (3, "b")]
        assert merged.summary.state is DeliveryState.DELIVERED and merged.attempts[0].detail is not None
        assert summaries.merge(detail, [], 10_000, node="n1") is detail
        # Its own summaries, published under an older name (before a restart), are not shown twice.
        own = summaries.encode(rec(10_000, Outcome.RETRY, DeliveryState.PENDING, due=T0 + 5, node="n1-old"))
        assert summaries.merge(detail, [own], 10_000, node="n1") is detail
        # The SQLite queue's own tables stay empty: nothing here is leased or replayed by it.
        assert await store.deliveries() == [] and await store.lease(limit=10, lease_s=60) == []
        assert await store.replay() == 0
        buckets = await store.timeline(function="f", since=T0 - 60, until=T0 + 120)
        assert sum(b.delivered for b in buckets) == 1 and sum(b.dead for b in buckets) == 1
        assert sum(b.retried for b in buckets) == 1 and sum(b.attempts for b in buckets) == 3
        await store.replayed_cluster(delivery_ids=[10_000, 20_000])
        after = {r.id: r for r in await store.cluster_deliveries()}
        assert after[10_000].state is DeliveryState.PENDING and after[10_000].attempts == 0
        assert after[20_000].state is DeliveryState.DELIVERED  # only dead ones are replayed
        retrying = await store.cluster_deliveries(retrying=True)
        assert retrying == []  # attempts reset by the replay: waiting, not retrying
        await store.record_cluster(
            [
                rec(30_000, Outcome.RETRY, DeliveryState.DEAD, before=2, function="f"),
                rec(30_001, Outcome.RETRY, DeliveryState.DEAD, before=2, function="g"),
            ]
        )
        await store.replayed_cluster(function="g")  # `replay g`: only g's dead records move
        states = {r.id: r.state for r in await store.cluster_deliveries()}
        assert states[30_000] is DeliveryState.DEAD and states[30_001] is DeliveryState.PENDING
        await store.replayed_cluster()  # `replay`: every one
        assert (await store.cluster_deliveries(state="dead")) == []


async def test_records_older_than_the_retention_are_pruned(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "s.db", clock, retention_s=3600) as store:
        await store.record_cluster([rec(10_000, Outcome.RETRY, DeliveryState.DEAD)])
        clock.advance(1800)
        await store.record_cluster([rec(20_000, Outcome.DELIVERED, DeliveryState.DELIVERED, at=clock())])
        clock.advance(1801)
        assert await store.prune_cluster() == 1
        assert [r.id for r in await store.cluster_deliveries()] == [20_000]
        assert await store.cluster_delivery(10_000) is None


def test_a_summary_is_shared_only_when_it_is_not_a_first_try_success() -> None:
    assert not summaries.worth_sharing(rec(1, Outcome.DELIVERED, DeliveryState.DELIVERED))
    assert not summaries.worth_sharing(rec(1, Outcome.DELIVERED, DeliveryState.FILTERED))
    assert summaries.worth_sharing(rec(1, Outcome.DELIVERED, DeliveryState.DELIVERED, before=1))
    assert summaries.worth_sharing(rec(1, Outcome.RETRY, DeliveryState.PENDING, due=T0))


def test_merge_shows_other_nodes_attempts_and_skips_what_is_malformed_or_another_delivery() -> None:
    mine = [summaries.encode(rec(10_000, Outcome.RETRY, DeliveryState.PENDING, due=T0 + 1, node="a"))]
    theirs = [
        summaries.encode(rec(10_000, Outcome.RETRY, DeliveryState.PENDING, before=1, at=T0 + 2, due=T0 + 3, node="b")),
        summaries.encode(rec(10_000, Outcome.RETRY, DeliveryState.DEAD, before=2, at=T0 + 4, node="b")),
    ]
    junk = [b"not json", b"[]", b'{"id": 10000}', summaries.encode(rec(20_000, Outcome.RETRY, DeliveryState.DEAD))]
    # Only the summaries: the node never ran it.
    alone = summaries.merge(None, [*mine, *theirs, *junk], 10_000, node="c")
    assert alone is not None and alone.summary.state is DeliveryState.DEAD and alone.summary.attempts == 3
    assert [(a.number, a.node) for a in alone.attempts] == [(1, "a"), (2, "b"), (3, "b")]
    assert alone.event["messageId"] == "m1" and alone.summary.message_id == "m1"
    assert summaries.merge(None, junk, 10_000, node="c") is None
    # Run here first (a), then elsewhere (b): a's local attempt keeps its record, b's are added.
    assert summaries.merge(None, mine, 10_000, node="a") is not None
    big = rec(10_000, Outcome.RETRY, DeliveryState.DEAD, node="b")
    assert "body" not in json.loads(
        summaries.encode(
            ClusterRecord(**{**{f: getattr(big, f) for f in big.__dataclass_fields__}, "body": "x" * 20_000})
        )
    )
