"""Function isolation (issue 10), runner trust: an attacker function and a victim function
on the same real runner processes. Each test asserts the victim's events all reach its own
upstream and come back with its own responses and only its own log lines, and that no
runner died; then what the attacker got. Every test runs with 1 and 2 workers.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import trio
from helpers import (
    SINK_ALLOW,
    iso_assert_victim_unharmed,
    iso_attack,
    iso_attacker,
    iso_event,
    iso_prepare_sink,
    iso_victim,
)

from segfuncd.outcomes import Outcome
from segfuncd.runner import PluginVersion, open_runner_pool


@pytest.fixture(params=[1, 2], ids=["1-worker", "2-workers"])
def workers(request: pytest.FixtureRequest) -> int:
    return int(request.param)


# A forged slice answer: every invocation id up to 3000 "delivered", every fetch answered,
# lines written into every log. Served through every serialization hook user code has.
FORGE = """
function forged() {
  const d = [], l = [];
  for (let i = 1; i < 3000; i++) { d.push([i, true, '"forged"']); l.push([i, "log", "ATTACK", 0]); }
  return { u: [{ s: 1e9, d: d, f: [], t: [], l: l, c: [] }], q: 0 };
}
Object.prototype.toJSON = function () { return this && this.u !== undefined && this.q !== undefined ? forged() : this; };
Array.prototype.toJSON = function () { return this; };
const realStringify = JSON.stringify;
JSON.stringify = function (v) { return v && v.u !== undefined ? realStringify(forged()) : realStringify(v); };
String.prototype.slice = function () { return '"forged"'; };
0; // the script's completion value: not one of the hooks above
async function onTrack(event) {
  await fetch("http://127.0.0.1:9/nothing").catch(() => null);
  return "attacker";
}
"""


async def test_item1_forged_outcomes_do_not_reach_the_victim(sink: Any, workers: int) -> None:
    """Object.prototype.toJSON and friends cannot rewrite what a context answers."""
    iso_prepare_sink(sink)
    async with open_runner_pool(workers=workers, egress_allow=SINK_ALLOW) as pool:
        attacker, victim = await iso_attack(pool, iso_attacker(FORGE), [iso_event(i) for i in range(4)], sink, rounds=3)
        iso_assert_victim_unharmed(pool, sink, victim, workers=workers)
    assert all(r.outcome is Outcome.DELIVERED and r.value == "attacker" for r in attacker), [r.error for r in attacker]


SLICE_ABUSE = """
async function onTrack(event) {
  // feed the dispatcher fabricated triggers naming other invocations, then a bad seq
  globalThis.dukpy = { t: [{ k: "s", i: 1, h: ["onTrack"], ty: "track", e: "{}", s: "{}" }] };
  __segfuncd.slice("x", 0);
  return "attacker";
}
"""


async def test_item1_3_a_context_that_breaks_its_answer_only_fails_itself(sink: Any, workers: int) -> None:
    """A malformed answer (here: a non-numeric outbox seq) fails the attacker's own
    invocations as a bug, its context is rebuilt, and the attacker runs again after."""
    iso_prepare_sink(sink)
    async with open_runner_pool(workers=workers, egress_allow=SINK_ALLOW) as pool:
        attacker, victim = await iso_attack(pool, iso_attacker(SLICE_ABUSE), [iso_event(0)], sink)
        iso_assert_victim_unharmed(pool, sink, victim, workers=workers)
    [r] = attacker
    assert (r.outcome, r.error_name) == (Outcome.FAILED, "SandboxViolation")
    assert "protocol" in (r.error_message or "")


HOST_LOOP = """
async function onTrack(event) {
  if (event.properties.spin) {
    // spends most of its time inside host calls, and catches whatever they throw
    const big = "x".repeat(4 * 1024 * 1024);
    for (;;) {
      try { const h = crypto.createHash("sha256"); h._parts = [big]; h.digest("hex"); } catch (e) {}
    }
  }
  if (event.properties.catchall) {
    for (;;) { try { for (;;) {} } catch (e) {} }
  }
  return "fine";
}
"""


async def test_item2_limits_hold_inside_host_calls_and_try_catch(sink: Any, workers: int) -> None:
    iso_prepare_sink(sink)
    events = [iso_event(0, spin=True), iso_event(1, catchall=True)]
    async with open_runner_pool(workers=workers, egress_allow=SINK_ALLOW, cpu_ms=300, timeout_ms=15_000) as pool:
        attacker, victim = await iso_attack(pool, iso_attacker(HOST_LOOP), events, sink)
        [after] = await pool.invoke(iso_attacker(HOST_LOOP), [iso_event(2)], {})
        iso_assert_victim_unharmed(pool, sink, victim, workers=workers)
    # whichever limit trips first on a loaded machine; never delivered, never a dead runner
    assert all(
        (r.outcome, r.error_name in ("CPULimitError", "TimeoutError")) == (Outcome.RETRY, True) for r in attacker
    )
    assert after.outcome is Outcome.DELIVERED and after.value == "fine"


PROMISE_HOOKS = """
let hooked = 0;
const realThen = Promise.prototype.then;
Promise.prototype.then = function (a, b) { hooked++; return realThen.call(this, a, b); };
Object.defineProperty(Promise.prototype, "constructor", { get() { hooked++; return Promise; } });
Object.defineProperty(Promise, Symbol.species, { get() { hooked++; return Promise; } });
function onTrack(event) { return event.properties.n === 0 ? "first" : "hooked " + hooked; }
"""


async def test_item2_patched_promise_machinery_is_never_run_by_the_dispatcher(sink: Any, workers: int) -> None:
    """Promise.prototype.then, .constructor and Symbol.species patched to count: the
    dispatcher's own awaits (the barrier of ticks between two triggers) never run them."""
    iso_prepare_sink(sink)
    async with open_runner_pool(workers=workers, egress_allow=SINK_ALLOW) as pool:
        attacker, victim = await iso_attack(pool, iso_attacker(PROMISE_HOOKS), [iso_event(0), iso_event(1)], sink)
        iso_assert_victim_unharmed(pool, sink, victim, workers=workers)
    assert [r.value for r in attacker] == ["first", "hooked 0"], [r.error for r in attacker]


TIMER_FLOOD = """
async function onTrack(event) {
  if (event.properties.caught) { for (;;) { try { setTimeout(() => {}, 1e9); } catch (e) {} } }
  for (let i = 0; i < 1e7; i++) setTimeout(() => {}, 1e9);
  return "flooded";
}
"""


async def test_item3_a_settimeout_flood_fails_only_that_invocation(sink: Any, workers: int) -> None:
    iso_prepare_sink(sink)
    events = [iso_event(0), iso_event(1, caught=True)]
    async with open_runner_pool(workers=workers, egress_allow=SINK_ALLOW, cpu_ms=500) as pool:
        attacker, victim = await iso_attack(pool, iso_attacker(TIMER_FLOOD), events, sink)
        iso_assert_victim_unharmed(pool, sink, victim, workers=workers)
    plain, caught = attacker
    assert (plain.outcome, plain.error_name) == (Outcome.FAILED, "ResourceLimitError")
    assert "1000 pending setTimeout" in (plain.error_message or "")
    assert caught.outcome is not Outcome.DELIVERED


PROXIED_FETCH = """
async function onTrack(event) {
  try { await fetch("http://0251.0376.0251.0376/"); return "fetched"; }
  catch (e) { return e.name; }
}
"""


async def test_item3_an_exception_out_of_a_fetch_fails_only_that_fetch(
    sink: Any, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a proxy configured, a URL httpx refuses (InvalidURL) is a FetchError in JS."""
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    iso_prepare_sink(sink)
    async with open_runner_pool(workers=workers, egress_allow=SINK_ALLOW) as pool:
        attacker, victim = await iso_attack(pool, iso_attacker(PROXIED_FETCH), [iso_event(0)], sink, rounds=2)
        iso_assert_victim_unharmed(pool, sink, victim, workers=workers)
    assert [(r.outcome, r.value) for r in attacker] == [(Outcome.DELIVERED, "FetchError")] * 2


async def test_item4_two_functions_with_identical_text_never_share_a_context(sink: Any, workers: int) -> None:
    """Contexts are keyed by function name and hash: identical files keep their own state."""
    iso_prepare_sink(sink)
    source = """
      var seen = [];
      async function onTrack(event, settings) {
        seen.push(settings.who + ":" + event.properties.n);
        return seen.slice();
      }
    """
    twin_a = PluginVersion.from_source("twin_a", source)
    twin_b = PluginVersion.from_source("twin_b", source)
    assert twin_a.hash == twin_b.hash
    async with open_runner_pool(workers=workers, egress_allow=SINK_ALLOW) as pool:
        a1 = await pool.invoke(twin_a, [iso_event(1)], {"who": "a"})
        b1 = await pool.invoke(twin_b, [iso_event(1)], {"who": "b"})
        a2 = await pool.invoke(twin_a, [iso_event(2)], {"who": "a"})
        _, victim = await iso_attack(pool, twin_b, [iso_event(3)], sink)
        iso_assert_victim_unharmed(pool, sink, victim, workers=workers)
    for r in (*a1, *b1, *a2):
        assert r.outcome is Outcome.DELIVERED
    assert all(entry.startswith("a:") for entry in a2[0].value)
    assert b1[0].value == ["b:1"]


async def test_item5_version_ids_are_the_full_sha256_and_never_cross_functions(sink: Any, workers: int) -> None:
    """A (simulated) id collision between two functions' files still runs each one's own code."""
    iso_prepare_sink(sink)
    victim = iso_victim()
    assert victim.hash == hashlib.sha256(victim.source.encode()).hexdigest() and len(victim.hash) == 64
    assert victim.short == victim.hash[:12]
    impostor = PluginVersion(
        name="attacker",
        path="attacker.js",
        source="async function onTrack(e, settings) { return 'impostor:' + JSON.stringify(settings) }",
        hash=victim.hash,  # what a prefix collision looked like
    )
    async with open_runner_pool(workers=workers, egress_allow=SINK_ALLOW) as pool:
        attacker, victim_results = await iso_attack(pool, impostor, [iso_event(0)], sink, rounds=2)
        iso_assert_victim_unharmed(pool, sink, victim_results, workers=workers)
    assert all(str(r.value).startswith("impostor:") for r in attacker)


POISON = """
async function onTrack(event, settings) {
  if (event.properties.spin) { for (;;) await null; }
  if (event.properties.big) {
    await fetch(settings.url + "/attacker/big", { method: "POST", body: "x".repeat(60 * 1024 * 1024) });
  }
  if (event.properties.oom) { const a = []; for (;;) a.push(new Array(1e6).fill(1.5)); }
  return "alive";
}
"""


async def test_item7_a_poisoned_context_is_rebuilt_before_its_next_event(sink: Any, workers: int) -> None:
    """An await-null loop, a ~60 MB request body, an out-of-memory: each fails that event only,
    and the same function's next event runs on a fresh context."""
    iso_prepare_sink(sink)
    attacker_v = iso_attacker(POISON)
    async with open_runner_pool(workers=workers, egress_allow=SINK_ALLOW, cpu_ms=300, memory_mb=512) as pool:
        attacker, victim = await iso_attack(
            pool, attacker_v, [iso_event(0, spin=True), iso_event(1, big=True), iso_event(2, oom=True)], sink
        )
        after = [(await pool.invoke(attacker_v, [iso_event(3)], {"url": sink.url}))[0] for _ in range(workers * 2)]
        iso_assert_victim_unharmed(pool, sink, victim, workers=workers)
    spin, big, oom = attacker
    assert (spin.outcome, spin.error_name) == (Outcome.RETRY, "CPULimitError")
    assert (big.outcome, big.error_name) == (Outcome.FAILED, "ResourceLimitError")
    assert oom.outcome is Outcome.RETRY and oom.error_name in ("MemoryLimitError", "CPULimitError")
    assert all((r.outcome, r.value) == (Outcome.DELIVERED, "alive") for r in after)
    assert not [q for q in sink.requests if q.path == "/attacker/big"]


CAUGHT_OOM = """
let runs = 0;
async function onTrack(event) {
  runs++;
  if (event.properties.oom) {
    try { const a = []; for (;;) a.push(new Array(1e6).fill(1.5)); } catch (e) { return "survived " + e.message; }
  }
  return "runs=" + runs;
}
"""


async def test_item7_out_of_memory_caught_by_the_function_still_ends_it(sink: Any, workers: int) -> None:
    """A function that catches its own out-of-memory error does not go on as if nothing
    happened: that event ends with MemoryLimitError (retryable) and the function's next
    event runs on a fresh context (its module-level counter starts again)."""
    iso_prepare_sink(sink)
    attacker_v = iso_attacker(CAUGHT_OOM)
    async with open_runner_pool(workers=workers, egress_allow=SINK_ALLOW, cpu_ms=5000, memory_mb=256) as pool:
        attacker, victim = await iso_attack(pool, attacker_v, [iso_event(0, oom=True)], sink)
        after = [(await pool.invoke(attacker_v, [iso_event(1)], {"url": sink.url}))[0] for _ in range(workers * 2)]
        iso_assert_victim_unharmed(pool, sink, victim, workers=workers)
    [oom] = attacker
    assert (oom.outcome, oom.error_name) == (Outcome.RETRY, "MemoryLimitError"), oom
    assert all(r.outcome is Outcome.DELIVERED for r in after)
    # each runner's context of the attacker was rebuilt or fresh: no count goes past the
    # events that runner ran since the out-of-memory
    assert all(int(str(r.value).removeprefix("runs=")) <= workers * 2 for r in after)


OUTPUT = """
async function onTrack(event) {
  if (event.properties.lines) { for (let i = 0; i < 100000; i++) console.log(); return "logged"; }
  const e = new Error("E".repeat(8 * 1024 * 1024));
  e.stack = "S".repeat(8 * 1024 * 1024);
  throw e;
}
"""


async def test_item8_error_text_and_log_lines_are_capped_per_invocation(sink: Any, workers: int) -> None:
    iso_prepare_sink(sink)
    events = [iso_event(0), iso_event(1, lines=True)]
    async with open_runner_pool(workers=workers, egress_allow=SINK_ALLOW) as pool:
        attacker, victim = await iso_attack(pool, iso_attacker(OUTPUT), events, sink)
        iso_assert_victim_unharmed(pool, sink, victim, workers=workers)
    thrown, logged = attacker
    assert (thrown.outcome, thrown.error_name) == (Outcome.FAILED, "Error")
    assert 8 * 1024 <= len(thrown.error_message or "") <= 8 * 1024 + 40
    assert (thrown.error_message or "").endswith("[cut at 8 KB]")
    assert logged.value == "logged"
    assert 0 < len(logged.logs) <= 4096 // 16 + 1  # empty lines count too
    assert "truncated" in logged.logs[-1].message


BRIDGE = """
// strings only: an array push would run the index setters below
let leaks = "";
let fns = "";
function sniff(tag) {
  const prev = Error.prepareStackTrace;
  Error.prepareStackTrace = (err, sites) => {
    for (let i = 0; sites && i < sites.length; i++) {
      const f = sites[i].getFunction(), t = sites[i].getThis();
      if (f !== undefined) fns += tag + ":" + (f.name || "anonymous") + " ";
      if (t !== undefined && t !== globalThis) fns += tag + ":this ";
    }
    return "";
  };
  new Error().stack;
  Error.prepareStackTrace = prev;
}
Array.prototype.toJSON = function () {
  for (let i = 0; i < this.length; i++) leaks += String(this[i]) + ",";
  sniff("toJSON");
  return this;
};
Object.prototype.toJSON = function () { sniff("otoJSON"); return this; };
0; // the script's completion value: not one of the hooks above
async function onTrack(event) {
  const digest = crypto.createHash("sha256").update("abc").digest("hex");
  const bytes = crypto.randomBytes(4).length;
  // index setters also break the prelude's own arrays (its own problem), so only a uuid here
  for (const i of [0, 1, 2, 3]) {
    Object.defineProperty(Array.prototype, i, {
      set(v) { leaks += "set" + i + "=" + v + ","; sniff("set"); }, configurable: true,
    });
  }
  const uuid = crypto.randomUUID();
  delete Object.prototype.toJSON;
  delete Array.prototype.toJSON;
  for (const i of [0, 1, 2, 3]) delete Array.prototype[i];
  return { digest: digest, uuid: String(uuid).length, bytes: bytes, leaks: leaks, fns: fns };
}
"""


async def test_item9_the_bridge_is_not_readable_through_hooks_or_stack_frames(sink: Any, workers: int) -> None:
    iso_prepare_sink(sink)
    async with open_runner_pool(workers=workers, egress_allow=SINK_ALLOW) as pool:
        attacker, victim = await iso_attack(pool, iso_attacker(BRIDGE), [iso_event(0)], sink)
        iso_assert_victim_unharmed(pool, sink, victim, workers=workers)
    [r] = attacker
    assert r.outcome is Outcome.DELIVERED, r.error
    assert r.value["leaks"] == "" and r.value["fns"] == ""  # no token, no bridge, no prelude function
    assert r.value["digest"] == hashlib.sha256(b"abc").hexdigest()  # host calls still work
    assert (r.value["uuid"], r.value["bytes"]) == (36, 4)


CPU_SLICES = """
async function onTrack(event) {
  for (let i = 0; i < 40; i++) {
    const t = Date.now();
    while (Date.now() - t < 100) {}
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return "burned 4 s";
}
"""


async def test_item10_cpu_ms_counts_all_slices_of_one_invocation(sink: Any, workers: int) -> None:
    iso_prepare_sink(sink)
    async with open_runner_pool(workers=workers, egress_allow=SINK_ALLOW, cpu_ms=500, timeout_ms=20_000) as pool:
        attacker, victim = await iso_attack(pool, iso_attacker(CPU_SLICES), [iso_event(0)], sink)
        iso_assert_victim_unharmed(pool, sink, victim, workers=workers)
    [r] = attacker
    assert (r.outcome, r.error_name) == (Outcome.RETRY, "CPULimitError")


RANDOM = """
async function onTrack(event) {
  const ok = crypto.getRandomValues(new Uint8Array(65536));
  let nonzero = 0;
  for (let i = 65536 - 1024; i < 65536; i++) if (ok[i] !== 0) nonzero++;
  let err = null;
  const big = new Uint8Array(65537);
  try { crypto.getRandomValues(big); } catch (e) { err = e.name; }
  return { nonzero: nonzero, err: err, untouched: big.every((b) => b === 0) };
}
"""


async def test_item11_get_random_values_over_64_kib_throws_quota_exceeded(sink: Any, workers: int) -> None:
    iso_prepare_sink(sink)
    async with open_runner_pool(workers=workers, egress_allow=SINK_ALLOW) as pool:
        attacker, victim = await iso_attack(pool, iso_attacker(RANDOM), [iso_event(0)], sink)
        iso_assert_victim_unharmed(pool, sink, victim, workers=workers)
    [r] = attacker
    assert r.outcome is Outcome.DELIVERED, r.error
    assert r.value["err"] == "QuotaExceededError" and r.value["untouched"] is True
    assert r.value["nonzero"] > 1000  # the whole 64 KiB is random, not just a prefix


async def test_victim_alone_baseline(sink: Any, workers: int) -> None:
    """The assertions themselves hold for a harmless neighbour (so they can fail only on harm)."""
    iso_prepare_sink(sink)
    harmless = iso_attacker("async function onTrack() { return 'ok' }")
    async with open_runner_pool(workers=workers, egress_allow=SINK_ALLOW) as pool:
        attacker, victim = await iso_attack(pool, harmless, [iso_event(0)], sink)
        iso_assert_victim_unharmed(pool, sink, victim, workers=workers)
        with trio.fail_after(5):
            assert pool.statistics().in_flight == 0
    assert [r.value for r in attacker] == ["ok"]


SIBLINGS = """
async function onTrack(event, settings) {
  if (event.properties.fetcher) {
    const res = await fetch(settings.url + "/attacker/slow", { method: "POST", body: "once" });
    return res.status;
  }
  if (event.properties.spin) { await new Promise((r) => setTimeout(r, 50)); for (;;) {} }
  return "plain";
}
"""


async def test_after_a_limit_the_same_functions_other_events_are_retried_never_duplicated(
    sink: Any, workers: int
) -> None:
    """The context is rebuilt: an event whose request already went out ends as ContextReset
    (retried later, not re-run now: no duplicate upstream request); the culprit gets the limit."""
    iso_prepare_sink(sink)
    sink.behaviour.routes["/attacker/slow"] = (200, 1.0, b"{}")
    events = [iso_event(0, fetcher=True), iso_event(1, spin=True)]
    async with open_runner_pool(workers=workers, egress_allow=SINK_ALLOW, cpu_ms=300) as pool:
        attacker, victim = await iso_attack(pool, iso_attacker(SIBLINGS), events, sink)
        [plain] = await pool.invoke(iso_attacker(SIBLINGS), [iso_event(2)], {})
        iso_assert_victim_unharmed(pool, sink, victim, workers=workers)
    fetcher, spin = attacker
    assert (spin.outcome, spin.error_name) == (Outcome.RETRY, "CPULimitError")
    assert (fetcher.outcome, fetcher.error_name) == (Outcome.RETRY, "ContextReset")
    assert plain.value == "plain"
