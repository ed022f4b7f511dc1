"""The dispatcher against a real SQLite store and a fake runner pool (the edge it drives)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import trio
from test_store_helpers import FakeClock, event, store_at

from segfuncd.config import BatchConfig, FilterConfig, FunctionConfig
from segfuncd.delivery import Dispatcher
from segfuncd.errors import RunnerError, StoreError
from segfuncd.filters import compile_filters
from segfuncd.functions import Target
from segfuncd.outcomes import DeliveryState, InvocationResult, LogLine, Outcome, next_delay_s
from segfuncd.runner.version import PluginVersion
from segfuncd.spec import EncodedEvent
from segfuncd.store import Store

VERSION = PluginVersion.from_source("f", "async function onTrack(event, settings) {}")
LIVE = Target(version=VERSION, config=FunctionConfig(settings={"url": "x"}), handlers=("onTrack",))

Answer = Callable[[list[dict[str, Any]], bool], list[InvocationResult]]


def ok(events: list[dict[str, Any]], batch: bool) -> list[InvocationResult]:
    return [InvocationResult(outcome=Outcome.DELIVERED, duration_ms=2.0) for _ in events]


def throwing(name: str, outcome: Outcome) -> Answer:
    return lambda events, batch: [
        InvocationResult(outcome=outcome, error_name=name, error_message="nope") for _ in events
    ]


class FakePool:
    """Stands in for RunnerPool.invoke: records calls, answers with `answer`."""

    def __init__(self, answer: Answer = ok, *, delay_s: float = 0.0) -> None:
        self.answer = answer
        self.delay_s = delay_s
        self.calls: list[tuple[str, list[dict[str, Any]], Mapping[str, Any], bool]] = []
        self.running = 0
        self.most_running = 0

    async def invoke(
        self, version: PluginVersion, encoded: list[EncodedEvent], settings: Mapping[str, Any], *, batch: bool = False
    ) -> list[InvocationResult]:
        events: list[dict[str, Any]] = [json.loads(e.json) for e in encoded]  # as a runner parses them
        self.calls.append((version.name, events, settings, batch))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await trio.sleep(self.delay_s)
            return self.answer(events, batch)
        finally:
            self.running -= 1


def dispatcher(
    store: Store, pool: Any, clock: FakeClock, resolve: Callable[[str], Target] = lambda f: LIVE, **kwargs: Any
) -> Dispatcher:
    return Dispatcher(store, pool, resolve=resolve, clock=clock, rng=random.Random(7), **kwargs)


async def test_due_deliveries_reach_the_function_with_its_settings_and_are_recorded(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(i) for i in range(3)])
        pool = FakePool()
        seen: list[tuple[str, Outcome]] = []
        d = dispatcher(store, pool, clock, on_result=lambda f, r: seen.append((f, r.outcome)))
        assert await d.run_once() == 3
        (call,) = pool.calls
        assert [e["event"] for e in call[1]] == ["E0", "E1", "E2"] and call[2] == {"url": "x"} and call[3] is False
        f = (await store.stats()).functions["f"]
        assert (f.delivered, f.attempts, f.pending) == (3, 3, 0)
        assert seen == [("f", Outcome.DELIVERED)] * 3
        assert await d.run_once() == 0


async def test_the_full_retry_schedule_spans_about_four_hours_then_dead_letters(tmp_path: Path) -> None:
    """10 attempts (first try + 9 retries) at 30 s doubling with jitter, on an injected clock."""
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(1)])
        pool = FakePool(throwing("FetchError", Outcome.RETRY))
        d = dispatcher(store, pool, clock)
        expected_rng = random.Random(7)
        started = clock.now
        attempt_times = []
        for attempt in range(1, 11):
            assert await d.run_once() == 1, f"attempt {attempt} was not due"
            attempt_times.append(clock.now)
            due = await store.next_due()
            if attempt == 10:
                assert due is None
                break
            assert due is not None
            delay = due - clock.now
            assert delay == pytest.approx(next_delay_s(attempt, base_delay_s=30.0, rng=expected_rng))
            assert 0.8 * 30 * 2 ** (attempt - 1) <= delay <= 1.2 * 30 * 2 ** (attempt - 1)
            clock.now = due - 1
            assert await d.run_once() == 0  # not due one second early
            clock.now = due
        span_h = (attempt_times[-1] - started) / 3600
        assert 0.8 * 4.26 <= span_h <= 1.2 * 4.26
        (dead,) = await store.deliveries(state="dead")
        detail = await store.delivery(dead.id)
        assert detail is not None and len(detail.attempts) == 10
        assert {a.error for a in detail.attempts} == {"FetchError: nope"} and dead.version == VERSION.hash
        f = (await store.stats()).functions["f"]
        assert (f.retried, f.dead, f.dead_lettered, f.retrying, f.pending) == (10, 1, 1, 0, 0)


async def test_discarded_events_are_never_retried_and_bugs_dead_letter_at_once(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(1, functions=("v",)), event(2, functions=("bug",))])

        def answer(events: list[dict[str, Any]], batch: bool) -> list[InvocationResult]:
            name = "ValidationError" if events[0]["event"] == "E1" else "TypeError"
            return throwing(name, Outcome.DISCARDED if name == "ValidationError" else Outcome.FAILED)(events, batch)

        d = dispatcher(store, FakePool(answer), clock)
        assert await d.run_once() == 2
        assert await store.next_due() is None
        stats = await store.stats()
        assert stats.functions["v"].discarded_by_reason == {"ValidationError": 1}
        assert stats.functions["bug"].dead == 1 and stats.functions["bug"].failed == 1
        # The fix is deployed: replay delivers the dead letter.
        d = dispatcher(store, FakePool(), clock)
        assert await store.replay(function="bug") == 1
        assert await d.run_once() == 1
        assert (await store.stats()).functions["bug"].delivered == 1


async def test_a_function_that_cannot_load_keeps_its_deliveries_until_the_fix(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(i) for i in range(3)])
        broken = Target(version=None, config=FunctionConfig(), reason="f.js:2: SyntaxError: unexpected token")
        current = {"f": broken}
        pool = FakePool()
        d = dispatcher(store, pool, clock, resolve=lambda name: current[name])
        assert await d.run_once() == 3
        assert pool.calls == []
        waiting = await store.deliveries(function="f")
        assert {(x.state, x.attempts, x.note) for x in waiting} == {
            (DeliveryState.PENDING, 0, "f.js:2: SyntaxError: unexpected token")
        }
        assert await d.run_once() == 0  # postponed, not spinning
        current["f"] = LIVE  # the file is fixed; the registry wakes the function
        assert await store.wake("f") == 3
        assert await d.run_once() == 3
        f = (await store.stats()).functions["f"]
        assert (f.delivered, f.attempts) == (3, 3)


async def test_filtered_events_never_reach_the_function_and_are_counted(tmp_path: Path) -> None:
    clock = FakeClock()
    chain = compile_filters(
        "f",
        (
            FilterConfig(if_="event = 'E1'", action="drop"),
            FilterConfig(if_="all", action="drop_properties", fields={"properties": ("i",)}),
        ),
    )
    target = Target(version=VERSION, config=FunctionConfig(), filters=chain, handlers=("onTrack",))

    class Exploding:
        def apply(self, event: dict[str, Any]) -> Any:
            raise RuntimeError("bug in a filter")

    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(i) for i in range(3)] + [event(9, functions=("g",))])
        pool = FakePool()
        targets = {"f": target, "g": Target(version=VERSION, config=FunctionConfig(), filters=Exploding())}  # type: ignore[arg-type]
        d = dispatcher(store, pool, clock, resolve=lambda name: targets[name])
        assert await d.run_once() == 4
        (call,) = pool.calls
        assert [e["event"] for e in call[1]] == ["E0", "E2"]
        assert all("i" not in e["properties"] for e in call[1])  # drop_properties applied
        stats = await store.stats()
        assert stats.functions["f"].filtered_by_reason == {"dropped": 1}
        assert stats.functions["g"].filtered_by_reason == {"filter_error": 1}
        assert (stats.functions["f"].delivered, stats.functions["f"].attempts) == (2, 2)


async def test_onbatch_groups_per_function_and_retries_only_failed_positions(tmp_path: Path) -> None:
    clock = FakeClock()
    batching = Target(
        version=VERSION,
        config=FunctionConfig(batch=BatchConfig(max_events=3, max_wait_ms=50)),
        handlers=("onBatch", "onTrack"),
    )

    def answer(events: list[dict[str, Any]], batch: bool) -> list[InvocationResult]:
        return [InvocationResult(outcome=Outcome.RETRY if e["event"] == "E4" else Outcome.DELIVERED) for e in events]

    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(i) for i in range(7)])
        pool = FakePool(answer)
        d = dispatcher(store, pool, clock, resolve=lambda name: batching)
        assert await d.run_once() == 7
        shapes = sorted((len(events), batch) for _, events, _, batch in pool.calls)
        assert shapes == [(1, False), (3, True), (3, True)]  # a lone event goes to onTrack
        (retrying,) = await store.deliveries(state="pending")
        assert retrying.message_id == "msg-4" and retrying.attempts == 1
        assert (await store.stats()).functions["f"].delivered == 6


async def test_a_runner_failure_is_retried_and_function_logs_are_kept(tmp_path: Path) -> None:
    clock = FakeClock()

    class Failing(FakePool):
        async def invoke(self, *args: Any, **kwargs: Any) -> list[InvocationResult]:
            raise RunnerError("no runner process is available")

    def chatty(events: list[dict[str, Any]], batch: bool) -> list[InvocationResult]:
        return [
            InvocationResult(outcome=Outcome.DELIVERED, logs=(LogLine(level="warn", message="hi", time=1.0),))
            for _ in events
        ]

    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(1)])
        assert await dispatcher(store, Failing(), clock).run_once() == 1
        (row,) = await store.deliveries()
        assert row.state is DeliveryState.PENDING and row.last_error == "RunnerCrashed: no runner process is available"
        clock.now = await store.next_due() or 0
        assert await dispatcher(store, FakePool(chatty), clock).run_once() == 1
        (line,) = await store.read_logs(function="f")
        assert (line.message, line.level, line.source, line.message_id, line.version) == (
            "hi",
            "warn",
            "function",
            "msg-1",
            VERSION.hash,
        )


async def test_secrets_never_reach_the_store(tmp_path: Path) -> None:
    clock = FakeClock()
    secret = "sk-live-0123456789"
    target = Target(version=VERSION, config=FunctionConfig(settings={"apiKey": secret}), handlers=("onTrack",))

    def leaky(events: list[dict[str, Any]], batch: bool) -> list[InvocationResult]:
        line = LogLine(level="log", message=f"key={secret}", time=1.0)
        return [
            InvocationResult(
                outcome=Outcome.RETRY, error_name="RetryError", error_message=f"bad key {secret}", logs=(line,)
            )
            for _ in events
        ]

    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(1)])
        assert await dispatcher(store, FakePool(leaky), clock, resolve=lambda f: target).run_once() == 1
        (line,) = await store.read_logs()
        (row,) = await store.deliveries()
        assert line.message == "key=[redacted]" and row.last_error == "RetryError: bad key [redacted]"
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("q.db*"))
    assert secret.encode() not in stored


async def test_a_failed_completion_lets_go_of_the_rows_so_they_come_back(tmp_path: Path) -> None:
    """A store error costs a duplicate at worst, never a row stuck in memory."""
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(1)])
        d = dispatcher(store, FakePool(), clock, lease_s=60)
        real_complete = store.complete

        async def failing(completions: Any) -> None:
            raise StoreError("SQLite failed during complete: disk I/O error")

        store.complete = failing  # type: ignore[method-assign]
        assert await d.run_once() == 1
        store.complete = real_complete  # type: ignore[method-assign]
        assert d.statistics().held == 0
        assert await d.run_once() == 0  # still leased in the file
        clock.advance(61)
        assert await d.run_once() == 1  # the lease expired: delivered now
        assert (await store.stats()).functions["f"].delivered == 1


async def test_a_large_group_is_split_into_invocations_of_invoke_size(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(i) for i in range(60)])
        pool = FakePool()
        assert await dispatcher(store, pool, clock, invoke_size=25).run_once() == 60
        assert sorted(len(events) for _, events, _, _ in pool.calls) == [10, 25, 25]
        assert (await store.stats()).functions["f"].delivered == 60


def test_redacted_returns_a_clean_result_as_is_and_scrubs_the_rest() -> None:
    from segfuncd.delivery import redacted
    from segfuncd.redact import redactor_for

    redact = redactor_for(("s3cret",))
    clean = InvocationResult(outcome=Outcome.DELIVERED)
    assert redacted(clean, redact) is clean
    dirty = InvocationResult(outcome=Outcome.RETRY, error_name="Error", error_message="bad s3cret")
    assert "s3cret" not in (redacted(dirty, redact).error_message or "")


def test_debug_enabled_follows_the_configured_level() -> None:
    import segfuncd.log as seglog

    before = seglog._threshold
    try:
        seglog._threshold = 20  # info
        assert not seglog.debug_enabled()
        seglog._threshold = 10
        assert seglog.debug_enabled()
    finally:
        seglog._threshold = before
