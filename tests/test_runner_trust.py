"""The runner's wall between contexts (child.Runner), in-process with real QuickJS contexts:
an answer naming another context's invocation fails only the context that sent it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
import trio

from segfuncd.runner.answers import ContextViolation, Finished, LogEntry, Outbox
from segfuncd.runner.child import FETCH_STARTS_PER_ROUND, Runner
from segfuncd.runner.protocol import FrameDecoder, Heavy, Invoke, Results, ToPool, VersionSpec
from segfuncd.runner.sandbox import SliceOutput, install_limit_handlers
from segfuncd.runner.version import PluginVersion

PENDING = "async function onTrack() { await new Promise(() => {}); }"


def version_msg(name: str, source: str) -> VersionSpec:
    v = PluginVersion.from_source(name, source)
    return VersionSpec(name=v.name, path=v.path, hash=v.hash, source=v.source)


def invoke(runner: Runner, rid: int, version: VersionSpec, *, events: int = 1, movable: bool = False) -> None:
    event = json.dumps({"type": "track", "properties": {}})
    runner._on_message(
        Invoke(
            id=rid,
            name=version.name,
            hash=version.hash,
            version=version,
            events=[event] * events,
            types=["track"] * events,
            settings="{}",
            movable=movable,
        )
    )


def messages(runner: Runner) -> list[ToPool]:
    """Everything the runner has sent the pool so far."""
    decoder = FrameDecoder[ToPool](ToPool)
    out: list[ToPool] = []
    while True:
        try:
            out += decoder.feed(runner._send_r.receive_nowait())
        except trio.WouldBlock:
            return out


def answers(runner: Runner) -> list[Results]:
    out = messages(runner)
    assert all(isinstance(m, Results) for m in out), out
    return [m for m in out if isinstance(m, Results)]


@pytest.fixture
def runner() -> Runner:
    install_limit_handlers()
    return Runner({"timeout_ms": 5000, "cpu_ms": 1000})


def test_an_outbox_naming_another_contexts_invocation_is_a_violation(runner: Runner) -> None:
    victim, attacker = version_msg("victim", PENDING), version_msg("attacker", PENDING)
    invoke(runner, 1, victim)
    invoke(runner, 2, attacker)
    ctx_v = runner._contexts[("victim", victim.hash)]
    ctx_a = runner._contexts[("attacker", attacker.hash)]
    assert ctx_v is not ctx_a and victim.hash == attacker.hash  # same text, two contexts
    for ctx in (ctx_v, ctx_a):
        runner._run_slice(ctx)
    [victim_inv] = ctx_v.live
    forged = Outbox(
        seq=99,
        finished=(Finished(victim_inv, True, '"forged"'),),
        fetches=(),
        timers=(),
        logs=(LogEntry(victim_inv, "log", "ATTACK", 0.0),),
        costs=(),
    )
    with pytest.raises(ContextViolation, match="does not run"):
        runner._apply_outbox(ctx_a, forged)
    runner._violation(ctx_a, "forged ids")
    [reply] = answers(runner)
    assert reply.id == 2 and reply.results[0].error_name == "SandboxViolation"
    assert list(ctx_v.live) == [victim_inv] and not ctx_v.live[victim_inv].logs  # untouched
    assert ctx_a.sandbox is not None and ctx_a.gen == 2  # rebuilt, ready for its next event


def test_a_late_entry_for_an_invocation_the_runner_ended_is_dropped(runner: Runner) -> None:
    v = version_msg("fn", PENDING)
    invoke(runner, 1, v)
    ctx = runner._contexts[("fn", v.hash)]
    runner._run_slice(ctx)
    [inv_id] = ctx.live
    runner._end(ctx.live[inv_id], "TimeoutError", "late")
    late = Outbox(seq=5, finished=(Finished(inv_id, True, "1"),), fetches=(), timers=(), logs=(), costs=())
    assert runner._apply_outbox(ctx, late) is False  # no violation: JS had not seen the abandon yet
    [reply] = answers(runner)
    assert reply.results[0].error_name == "TimeoutError"


def test_a_culprit_search_goes_on_when_the_context_runs_out_of_memory(
    runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Suspects of a CPU interrupt run one per slice; a context rebuilt after an out of memory
    on the way keeps them that way (before, they ran together again, and one restarted twice
    was blamed for another's CPU). The slice's answer is marked out of memory here; the real
    marking is tested in test_sandbox_memory.py."""
    v = version_msg("fn", PENDING)
    for rid in (1, 2, 3):
        invoke(runner, rid, v)
    ctx = runner._contexts[("fn", v.hash)]
    runner._run_slice(ctx)
    suspects = set(ctx.live)
    assert len(suspects) == 3
    ctx.solo = set(suspects)  # as _interrupted leaves it after a slice of three
    sandbox = ctx.sandbox
    assert sandbox is not None
    real = sandbox.run_slice

    def out_of_memory(*args: Any, **kwargs: Any) -> SliceOutput:
        out = real(*args, **kwargs)
        assert out.answer is not None
        return dataclasses.replace(out, answer=dataclasses.replace(out.answer, out_of_memory=True))

    monkeypatch.setattr(sandbox, "run_slice", out_of_memory)
    runner._run_slice(ctx)
    assert ctx.sandbox is not None and ctx.sandbox is not sandbox  # rebuilt
    assert ctx.solo == suspects  # the search goes on, one suspect per slice


def test_a_movable_slice_that_holds_the_loop_hands_its_events_back_unrun() -> None:
    """On a runner that is not the function's home (Invoke.movable), a slice of invocations
    that did nothing outside JS is stopped after its quantum (affinity.preempt_s): each is
    answered `moved` (with a retryable error, for a pool that would not look), the pool hears
    Heavy at once, and later movable invokes of it are handed back without running. A
    non-movable one (its home) runs here, to its CPU limit."""
    install_limit_handlers()
    runner = Runner({"timeout_ms": 5000, "cpu_ms": 400})
    v = version_msg("burner", "async function onTrack() { let x = 0; for (;;) x++ }")
    invoke(runner, 1, v, events=3, movable=True)
    ctx = runner._contexts[("burner", v.hash)]
    runner._run_slice(ctx)
    sent = messages(runner)
    assert sent[0] == Heavy(functions=["burner"])  # before the answer
    [reply] = [m for m in sent if isinstance(m, Results)]
    assert reply.id == 1 and [(r.moved, r.error_name) for r in reply.results] == [(True, "ContextReset")] * 3
    assert not ctx.live and ctx.sandbox is None  # nothing of it is left to run here
    invoke(runner, 2, v, events=2, movable=True)
    [again] = answers(runner)
    assert again.id == 2 and all(r.moved for r in again.results) and ctx.sandbox is None  # not even built
    invoke(runner, 3, v, events=1, movable=False)
    assert ctx.sandbox is not None
    runner._run_slice(ctx)
    [home] = answers(runner)
    assert home.id == 3 and [(r.moved, r.error_name) for r in home.results] == [(False, "CPULimitError")]


def test_a_short_movable_slice_runs_as_any_other(runner: Runner) -> None:
    v = version_msg("quick", "async function onTrack(e) { let x = 0; for (let i = 0; i < 1000; i++) x++; return x }")
    invoke(runner, 1, v, events=5, movable=True)
    runner._run_slice(runner._contexts[("quick", v.hash)])
    [reply] = answers(runner)
    assert [(r.moved, r.value) for r in reply.results] == [(False, "1000")] * 5


def test_an_onbatch_of_many_quick_events_is_not_taken_for_a_heavy_function() -> None:
    """An onBatch invocation is one Start that runs every event of its request: its quantum
    counts the events (affinity.preempt_s), so 500 events of ~0.5 ms each (a quarter of a
    second, far below cpu_ms) run where they are, and nobody is told the function is heavy.
    Found by review: it was stopped after 0.1 s, run twice and reported heavy."""
    install_limit_handlers()
    runner = Runner({"timeout_ms": 10_000, "cpu_ms": 2000})
    source = """async function onBatch(events) {
      return events.map(() => { let x = 0; for (let i = 0; i < 5000; i++) x += i; return { status: 200 } })
    }"""
    v = version_msg("batcher", source)
    event = json.dumps({"type": "track", "properties": {}})
    batch = Invoke(
        id=1,
        name=v.name,
        hash=v.hash,
        version=v,
        events=[event] * 500,
        types=["track"] * 500,
        settings="{}",
        batch=True,
        movable=True,
    )
    runner._on_message(batch)
    runner._run_slice(runner._contexts[("batcher", v.hash)])
    sent = messages(runner)
    assert not any(isinstance(m, Heavy) for m in sent)
    [reply] = [m for m in sent if isinstance(m, Results)]
    assert reply.batch and not reply.results[0].moved and reply.results[0].error_name is None


def test_a_culprit_search_goes_on_after_the_first_culprit_is_found() -> None:
    """Three events ran together and a CPU limit stopped them: they run one per slice until
    every suspect is settled. Before, once the first burner was found the other two ran
    together again, and the quick one, restarted twice, was blamed for the second burner's
    CPU (seen in CI as test_isolation.py item 7's body-cap event ending CPULimitError)."""
    install_limit_handlers()
    runner = Runner({"timeout_ms": 30_000, "cpu_ms": 150})
    source = "async function onTrack(e) { if (e.properties.spin) for (;;) {} return 'quick' }"
    v = version_msg("mixed", source)
    events = [json.dumps({"type": "track", "properties": {"spin": spin}}) for spin in (True, False, True)]
    runner._on_message(
        Invoke(id=1, name=v.name, hash=v.hash, version=v, events=events, types=["track"] * 3, settings="{}")
    )
    ctx = runner._contexts[("mixed", v.hash)]
    for _ in range(10):  # bounded: 3 events, at most a few slices each
        if not ctx.live and not ctx.waiting:
            break
        assert ctx.sandbox is not None
        runner._run_slice(ctx)
    [reply] = [m for m in messages(runner) if isinstance(m, Results)]
    assert [(r.error_name, r.value) for r in reply.results] == [
        ("CPULimitError", None),
        (None, '"quick"'),
        ("CPULimitError", None),
    ]


async def test_a_burst_of_fetches_starts_over_several_rounds_only_while_others_have_work(sink: Any) -> None:
    """A slice that asks for 40 fetches starts FETCH_STARTS_PER_ROUND of them at once while
    another function has an invocation on the runner (the rest start in the next rounds of
    the JS loop, other contexts' work in between); alone, it starts them all. Every request
    is sent either way, once."""
    install_limit_handlers()
    runner = Runner({"timeout_ms": 30_000, "cpu_ms": 2000, "egress_allow": ["127.0.0.1"]})
    burst = f"""async function onTrack(e) {{
      await Promise.all(Array.from({{ length: 40 }}, (_, i) => fetch("{sink.url}/burst/" + e.properties.run + "/" + i)))
      return "sent"
    }}"""
    storm, other = version_msg("storm", burst), version_msg("other", PENDING)
    async with trio.open_nursery() as nursery:
        runner._nursery = nursery
        nursery.start_soon(runner._js_loop)
        for run, crowded in (("alone", False), ("crowded", True)):
            if crowded:
                invoke(runner, 10, other)  # another function's invocation waits on this runner
            event = json.dumps({"type": "track", "properties": {"run": run}})
            runner._on_message(
                Invoke(
                    id=20 if crowded else 1,
                    name="storm",
                    hash=storm.hash,
                    version=storm,
                    events=[event],
                    types=["track"],
                    settings="{}",
                )
            )
            ctx = runner._contexts[("storm", storm.hash)]
            runner._run_slice(ctx)  # the start slice, here rather than in the loop, to look right after
            waiting = len(ctx.fetches)
            assert waiting == (40 - FETCH_STARTS_PER_ROUND if crowded else 0)
            with trio.fail_after(20):  # bounded wait on a real sink
                while ctx.live or len([r for r in sink.requests if f"/burst/{run}/" in r.path]) < 40:
                    await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    replies = [m for m in messages(runner) if isinstance(m, Results)]
    assert sorted(m.id for m in replies if m.results[0].value == '"sent"') == [1, 20]
    paths = [r.path for r in sink.requests if "/burst/" in r.path]
    assert len(paths) == len(set(paths)) == 80
