"""Helpers shared by the tests: builders, waiters and small real servers.

Each section is owned by the area it serves; keep helpers here, not in test_*.py files.
"""

from __future__ import annotations

import time
from typing import Any

import trio

from segfuncd.outcomes import InvocationResult, LogLine, Outcome
from segfuncd.runner import PluginVersion, RunnerPool

# ---- isolation (issue 10): an attacker and a victim function on the same runners -------

ISO_VICTIM_SOURCE = """
async function onTrack(event, settings) {
  const n = event.properties.n;
  console.log("victim " + n);
  const res = await fetch(settings.url + "/victim/" + n, { method: "POST", body: JSON.stringify({ n: n }) });
  return { n: n, status: res.status, body: await res.json() };
}
"""


def iso_victim() -> PluginVersion:
    """The victim: POSTs each event to the sink's /victim/N, logs one line, returns the answer."""
    return PluginVersion.from_source("victim", ISO_VICTIM_SOURCE)


def iso_attacker(source: str, name: str = "attacker") -> PluginVersion:
    return PluginVersion.from_source(name, source)


def iso_event(n: int, **props: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Test", "messageId": f"m-{n}", "properties": {"n": n, **props}}


def iso_prepare_sink(sink: Any, *, victim_delay_s: float = 0.3) -> None:
    """The victim's upstream answers slowly (so attacks overlap its fetches) and says who it is."""
    sink.behaviour.routes["/victim"] = (200, victim_delay_s, b'{"who":"victim"}')
    sink.behaviour.routes["/attacker"] = (200, 0.0, b'{"who":"attacker"}')


async def iso_attack(
    pool: RunnerPool,
    attacker: PluginVersion,
    attacker_events: list[dict[str, Any]],
    sink: Any,
    *,
    victim_events: int = 6,
    attacker_settings: dict[str, Any] | None = None,
    rounds: int = 1,
) -> tuple[list[InvocationResult], list[InvocationResult]]:
    """Run the victim (two concurrent batches, so with 2 workers both runners hold victim
    work) and, while its fetches are pending, the attacker; returns (attacker, victim) results."""
    victim = iso_victim()
    half = victim_events // 2
    batches = [list(range(half)), list(range(half, victim_events))]
    victim_results: dict[int, InvocationResult] = {}
    attacker_results: list[InvocationResult] = []

    async def run_victim(ns: list[int]) -> None:
        results = await pool.invoke(victim, [iso_event(n) for n in ns], {"url": sink.url})
        victim_results.update(zip(ns, results, strict=True))

    async with trio.open_nursery() as nursery:
        for ns in batches:
            nursery.start_soon(run_victim, ns)
        await trio.sleep(0.05)
        for _ in range(rounds):
            settings = attacker_settings if attacker_settings is not None else {"url": sink.url}
            attacker_results.extend(await pool.invoke(attacker, attacker_events, settings))
    return attacker_results, [victim_results[n] for n in range(victim_events)]


def iso_assert_victim_unharmed(
    pool: RunnerPool, sink: Any, victim_results: list[InvocationResult], *, workers: int
) -> None:
    """Every victim event delivered with its own upstream's answer and only its own log
    line; its upstream got each event exactly once; no runner died."""
    for n, r in enumerate(victim_results):
        assert (r.outcome, r.error) == (Outcome.DELIVERED, None), (n, r.error)
        assert r.value == {"n": n, "status": 200, "body": {"who": "victim"}}, (n, r.value)
        assert [(line.level, line.message) for line in r.logs] == [("log", f"victim {n}")], (n, r.logs)
        assert all(isinstance(line, LogLine) for line in r.logs)
        assert [(q.method, q.status) for q in r.requests] == [("POST", 200)], (n, r.requests)
    want = sorted(f"/victim/{n}" for n in range(len(victim_results)))
    deadline = time.monotonic() + 5  # the sink records a request just after answering it
    while True:
        paths = sorted(q.path for q in list(sink.requests) if q.path.startswith("/victim/"))
        if paths == want or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert paths == want
    stats = pool.statistics()
    assert stats.restarts == 0 and stats.alive == workers, stats
