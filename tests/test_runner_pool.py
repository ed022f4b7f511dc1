"""The runner pool end to end: real runner processes, a real HTTP sink on loopback."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import trio
from helpers import SINK_ALLOW, name_with_home

from segfuncd.attempts import attempt_detail
from segfuncd.outcomes import Outcome
from segfuncd.runner import LoadReport, PluginVersion, PoolStatistics, open_runner_pool

PLUGINS = Path(__file__).parent / "plugins"


def plugin(name: str, **replace: str) -> PluginVersion:
    source = (PLUGINS / f"{name}.js").read_text()
    for k, v in replace.items():
        source = source.replace(k, v)
    return PluginVersion.from_source(name, source, path=f"plugins/{name}.js")


def track(**props: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Test",
        "properties": props,
        "timestamp": "2024-01-02T03:04:05.000Z",
        "messageId": "m-1",
    }


async def test_outcome_table_rows() -> None:
    """Every row of DESIGN.md's outcome table, in one batch of events."""
    v = plugin("outcomes")
    actions = ["return", "retry", "invalid", "validation", "unsupported", "bug", "throw"]
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        results = await pool.invoke(v, [track(action=a) for a in actions] + [{"type": "screen"}], {})
    got = [(r.outcome, r.error_name) for r in results]
    assert got == [
        (Outcome.DELIVERED, None),
        (Outcome.RETRY, "RetryError"),
        (Outcome.DISCARDED, "InvalidEventPayload"),
        (Outcome.DISCARDED, "ValidationError"),
        (Outcome.DISCARDED, "EventNotSupported"),
        (Outcome.FAILED, "TypeError"),
        (Outcome.FAILED, "Error"),
        (Outcome.DISCARDED, "EventNotSupported"),  # no onScreen handler
    ]
    assert results[0].value == {"counter": 1, "event": {"action": "return"}}
    assert results[1].error_message == "try later"


async def test_seed_request_bin_example_runs_unchanged(sink: Any) -> None:
    v = plugin("seed_requestbin", __SINK__=sink.url)
    event = track(plan="pro")
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        [r] = await pool.invoke(v, [event], {"apiKey": "secret"})
    assert r.outcome is Outcome.DELIVERED and r.value == '{"ok":true}'
    [req] = sink.wait_for(1)
    assert req.method == "POST"
    assert req.path == "/bin?ts=2024-01-02T03%3A04%3A05.000Z"
    assert req.headers["authentication"] == "Basic c2VjcmV0Og=="
    assert req.headers["content-type"] == "application/json"
    assert req.headers["user-agent"].startswith("segfuncd/")
    assert req.json() == event
    assert r.requests[0].status == 200 and r.requests[0].method == "POST"


async def test_seed_error_examples() -> None:
    v = plugin("seed_errors")
    events = [
        {"type": "group"},
        {"type": "group", "company": "x"},
        {"type": "page"},
        {"type": "alias"},
        {"type": "track"},
        {"type": "delete"},
        {"type": "bogus"},
    ]
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        results = await pool.invoke(v, events, {})
    assert [(r.outcome, r.error) for r in results] == [
        (Outcome.DISCARDED, "InvalidEventPayload: company is required"),
        (Outcome.DELIVERED, None),
        (Outcome.DISCARDED, "ValidationError: Account ID is required"),
        (Outcome.DISCARDED, "EventNotSupported: alias is not supported"),
        (Outcome.DISCARDED, "EventNotSupported: track not supported"),
        (Outcome.DISCARDED, "EventNotSupported: delete not supported"),
        (Outcome.DELIVERED, None),  # a type outside the handler map is a no-op, as in Segment
    ]


async def test_promise_all_fetches_overlap(sink: Any) -> None:
    sink.behaviour.routes["/slow"] = (200, 0.5, b"ok")
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        start = trio.current_time()
        [r] = await pool.invoke(plugin("overlap"), [track()], {"url": sink.url})
        elapsed = trio.current_time() - start
    assert r.outcome is Outcome.DELIVERED and r.value["statuses"] == [200, 200]
    assert elapsed < 0.9  # two 0.5 s responses, in parallel


async def test_state_persists_per_version_and_each_invocation_gets_its_own_event() -> None:
    v = plugin("outcomes")
    shared = track(action="mutate", n=1)
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        a, b = await pool.invoke(v, [shared, shared], {})
        [c] = await pool.invoke(v, [track(action="return")], {})
    assert a.value == {"action": "mutate", "n": 1, "touched": True} and b.value == a.value
    assert "touched" not in shared["properties"]
    assert c.value["counter"] == 3


async def test_wall_clock_timeout_is_retryable(sink: Any) -> None:
    sink.behaviour.routes["/slow"] = (200, 3.0, b"late")
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW, timeout_ms=300) as pool:
        [r] = await pool.invoke(plugin("outcomes"), [track(action="fetch")], {"url": sink.url + "/slow"})
        [ok] = await pool.invoke(plugin("outcomes"), [track(action="return")], {})
    assert (r.outcome, r.error_name) == (Outcome.RETRY, "TimeoutError")
    assert ok.outcome is Outcome.DELIVERED


async def test_cpu_limit_is_retryable_and_runner_keeps_serving() -> None:
    v = plugin("outcomes")
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW, cpu_ms=200) as pool:
        spin, fine = await pool.invoke(v, [track(action="spin"), track(action="return")], {})
        [after] = await pool.invoke(v, [track(action="return")], {})
        assert pool.statistics().restarts == 0
    assert (spin.outcome, spin.error_name) == (Outcome.RETRY, "CPULimitError")
    assert fine.outcome is Outcome.DELIVERED and after.outcome is Outcome.DELIVERED


async def test_memory_limit_is_retryable_and_runner_keeps_serving() -> None:
    v = plugin("outcomes")
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW, memory_mb=64, cpu_ms=5000) as pool:
        [bomb] = await pool.invoke(v, [track(action="oom")], {})
        [after] = await pool.invoke(v, [track(action="return")], {})
    assert (bomb.outcome, bomb.error_name) == (Outcome.RETRY, "MemoryLimitError")
    assert after.outcome is Outcome.DELIVERED


async def test_stack_overflow_is_a_bug() -> None:
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        [r] = await pool.invoke(plugin("outcomes"), [track(action="recurse")], {})
    assert (r.outcome, r.error_name) == (Outcome.FAILED, "RangeError")


async def test_runner_crash_returns_retry_and_runner_is_replaced(sink: Any) -> None:
    sink.behaviour.routes["/slow"] = (200, 2.0, b"late")
    v = plugin("outcomes")
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        [runner] = pool._runners
        async with trio.open_nursery() as nursery:
            results: list[Any] = []

            async def call() -> None:
                results.extend(await pool.invoke(v, [track(action="fetch")], {"url": sink.url + "/slow"}))

            nursery.start_soon(call)
            await trio.sleep(0.5)
            os.kill(runner.proc.pid, signal.SIGKILL)
        assert (results[0].outcome, results[0].error_name) == (Outcome.RETRY, "RunnerCrashed")
        [after] = await pool.invoke(v, [track(action="return")], {})
        stats = pool.statistics()
    assert after.outcome is Outcome.DELIVERED
    assert isinstance(stats, PoolStatistics) and stats.restarts == 1 and stats.alive == 1


async def test_load_errors_are_reported_with_line_and_never_crash_a_runner() -> None:
    bad = PluginVersion.from_source("bad", "function onTrack() {}\nvar = 3\n")
    none = PluginVersion.from_source("none", "var x = 1\n")
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        report = await pool.check(bad)
        assert report == LoadReport(ok=False, error=report.error, line=2, handlers=())
        assert report.error is not None and report.error.startswith("SyntaxError: ")
        assert (await pool.check(none)).error == "no handler defined (expected e.g. onTrack, track or onBatch)"
        [r] = await pool.invoke(bad, [track()], {})
        assert (r.outcome, r.error_name) == (Outcome.RETRY, "FunctionNotLoaded")
        good = await pool.check(plugin("batch"))
        assert good.ok and set(good.handlers) == {"onBatch", "onTrack"}
        assert pool.statistics().restarts == 0


async def test_on_batch_maps_statuses_by_position() -> None:
    v = plugin("batch")
    events = [track(status=s) for s in (200, 201, 429, 500, 400, 404)]
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        results = await pool.invoke(v, events, {}, batch=True)
        failed = await pool.invoke(v, events[:2], {"fail": True}, batch=True)
        single = await pool.invoke(v, events[:1], {}, batch=False)
    assert [r.outcome for r in results] == [
        Outcome.DELIVERED,
        Outcome.DELIVERED,
        Outcome.RETRY,
        Outcome.RETRY,
        Outcome.DISCARDED,
        Outcome.DISCARDED,
    ]
    assert results[4].error_message == "status 400"
    assert [(r.outcome, r.error_name) for r in failed] == [(Outcome.RETRY, "RetryError")] * 2
    assert single[0].value == "single"


async def test_console_logs_come_back_per_invocation() -> None:
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        [r] = await pool.invoke(plugin("outcomes"), [track(action="log")], {})
    assert r.logs[0].message.startswith("line 0") and r.logs[0].level == "log"
    assert r.logs[-1].message.endswith("[log output truncated at 4 KB]")


async def test_set_timeout_resolves_later() -> None:
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        [r] = await pool.invoke(plugin("outcomes"), [track(action="sleep", ms=50)], {})
    assert r.value == "slept"


async def test_recycling_replaces_a_runner_without_losing_work() -> None:
    v = plugin("outcomes")
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW, recycle_after=3) as pool:
        first = pool._runners[0]
        for _ in range(3):
            results = await pool.invoke(v, [track(action="return")] * 2, {})
            assert all(r.outcome is Outcome.DELIVERED for r in results)
        assert first not in pool._runners and pool.statistics().restarts == 0


async def test_a_runner_whose_memory_grows_is_recycled() -> None:
    """Top-level state that keeps growing (a leaky cache) gets the runner replaced, work intact."""
    leaky = PluginVersion.from_source(
        "leaky",
        "var hoard = []\nasync function onTrack(e) { if (e.properties.grow) hoard.push(new Array(2e4).fill(e.properties.grow)); return hoard.length }",
    )
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW, recycle_growth_mb=20) as pool:
        first = pool._runners[0]
        await pool.invoke(leaky, [track()] * 200, {})  # the first check records its size
        results = await pool.invoke(leaky, [track(grow=1.5)] * 200, {})  # ~60 MB of arrays
        assert all(r.outcome is Outcome.DELIVERED for r in results)
        with trio.fail_after(10):
            while first in pool._runners:
                await trio.sleep(0.05)
        stats = pool.statistics()
        assert stats.recycles == 1 and stats.restarts == 0
        [r] = await pool.invoke(leaky, [track()], {})
        assert r.value == 0  # a fresh runner: the hoard is gone


async def test_invocations_beyond_the_active_limit_wait_their_turn(sink: Any) -> None:
    """With max_active=2, ten fetching invocations still all complete (two at a time in JS)."""
    sink.behaviour.delay_s = 0.05
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW, max_active=2) as pool:
        results = await pool.invoke(plugin("outcomes"), [track(action="fetch")] * 10, {"url": sink.url + "/q"})
    assert [r.value for r in results] == [200] * 10
    assert max(r.started for r in sink.wait_for(10)) > min(r.finished for r in sink.requests)


async def test_lone_surrogates_from_js_reach_the_pool_as_replacement_characters() -> None:
    """A JS string may hold a lone UTF-16 surrogate, which UTF-8 cannot carry: the runner
    answers with U+FFFD in its place instead of failing (or dying on) the message."""
    source = """
async function onTrack(event) {
  console.log("lone \\ud800 here")
  return { ["k\\udfff"]: "v\\ud800" }
}
async function onIdentify(event) { throw new Error("bad \\udc00") }
"""
    v = PluginVersion.from_source("lone", source)
    async with open_runner_pool(workers=1) as pool:
        ok, bad = await pool.invoke(v, [track(), {"type": "identify", "userId": "u"}], {})
        [again] = await pool.invoke(v, [track()], {})
        stats = pool.statistics()
    assert ok.outcome is Outcome.DELIVERED and ok.value == {"k\udfff": "v\ud800"}  # JSON text, parsed as JS wrote it
    assert [line.message for line in ok.logs] == ["lone \ufffd here"]
    assert bad.error_message == "bad \ufffd"
    assert again.outcome is Outcome.DELIVERED and stats.restarts == 0
    # the attempt record (stored as UTF-8 text in SQLite) takes the value too
    record = json.loads(attempt_detail(ok, started_at=0.0))
    assert record["return"] == '{"k\ufffd":"v\ufffd"}' and record["logs"][0]["message"] == "lone \ufffd here"


async def test_a_function_hitting_its_cpu_limit_is_known_heavy_before_its_invoke_answers() -> None:
    """The runner says so at once (protocol.Heavy), not with the invoke's answer, which comes
    only when the invoke's last event ends: meanwhile other functions keep off that runner."""
    burner = PluginVersion(
        name="burner", path="burner.js", source="async function onTrack() { let x = 0; for (;;) x++ }", hash="b" * 64
    )
    async with open_runner_pool(workers=2, egress_allow=SINK_ALLOW, cpu_ms=200, timeout_ms=30_000) as pool:
        seen: list[float] = []

        async def invoke() -> None:
            await pool.invoke(burner, [track(action="x") for _ in range(6)], {})  # 6 x 200 ms of CPU
            seen.append(trio.current_time())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(invoke)
            with trio.fail_after(20):  # bounded wait on real processes, not a timing assert
                while "burner" not in pool._affinity.heavy(time.monotonic()):
                    await trio.sleep(0.02)
            assert not seen  # known heavy while its invoke is still running


async def test_a_function_never_seen_before_that_holds_the_loop_runs_on_its_home_runner() -> None:
    """The first invoke of an unknown function goes to the least loaded runner, which may be
    one other functions share. Its slice there is stopped after a quantum (affinity.preempt_s)
    and its events run on its home runner instead, where the CPU limit ends them: the shared
    runner is stalled one quantum, not cpu_ms per event (before: a culprit search ran each
    event's cpu_ms there, and every function on that runner waited)."""
    name = name_with_home(1, 2)
    burner = PluginVersion.from_source(name, "async function onTrack() { let x = 0; for (;;) x++ }")
    healthy = PluginVersion.from_source("healthy", "async function onTrack(e) { return e.properties.n }")
    async with open_runner_pool(workers=2, egress_allow=SINK_ALLOW, cpu_ms=300, timeout_ms=30_000) as pool:
        first, home = pool._ready()
        assert await pool._pick() is first  # idle runners: the first one is picked
        results = await pool.invoke(burner, [track(n=i) for i in range(4)], {})
        assert [r.error_name for r in results] == ["CPULimitError"] * 4
        assert {r.runner for r in results} == {home.proc.pid}  # none ended on the shared runner
        assert name in pool._affinity.heavy(time.monotonic())
        # a new invoke goes home at once; the other function keeps to the other runner
        [again] = await pool.invoke(burner, [track(n=9)], {})
        ok = await pool.invoke(healthy, [track(n=i) for i in range(3)], {})
    assert again.error_name == "CPULimitError" and again.runner == home.proc.pid
    assert [r.value for r in ok] == [0, 1, 2] and {r.runner for r in ok} == {first.proc.pid}


async def test_an_invocation_that_fetched_is_never_handed_back(sink: Any) -> None:
    """Moving is for events that did nothing outside JS: one that fetched and then burns its
    CPU cannot run again elsewhere (its request was sent), so its limit ends it where it is."""
    name = name_with_home(1, 2)
    source = "async function onTrack(e, s) { await fetch(s.url); let x = 0; for (;;) x++ }"
    burner = PluginVersion.from_source(name, source)
    async with open_runner_pool(workers=2, egress_allow=SINK_ALLOW, cpu_ms=300, timeout_ms=30_000) as pool:
        first, _home = pool._ready()
        [r] = await pool.invoke(burner, [track(n=1)], {"url": sink.url + "/once"})
    assert r.error_name == "CPULimitError" and r.runner == first.proc.pid
    assert len(sink.wait_for(1)) == 1  # sent once, never again
