"""Helpers shared by the tests: builders, waiters and small real servers.

Each section is owned by the area it serves; keep helpers here, not in test_*.py files.
"""

from __future__ import annotations

from typing import Any

# --- fair share (issue 10): attacker and victim functions, sink bookkeeping ------------------

FAIR_VICTIM_JS = """
async function onTrack(event, settings) {
  console.log(`victim saw ${event.messageId}`)
  const res = await fetch(settings.url + "/victim", { method: "POST", body: JSON.stringify({ id: event.messageId }) })
  if (res.status >= 500) throw new RetryError(`sink answered ${res.status}`)
  return res.status
}
"""

# Each event opens `settings.fanout` requests at once to settings.url + settings.path:
# with path "/hang" (a sink route that never answers in time) it is a never-resolving
# function; with a slow path and a large fan-out, a fetch storm.
FAIR_ATTACKER_JS = """
async function onTrack(event, settings) {
  const calls = []
  for (let i = 0; i < settings.fanout; i++) calls.push(fetch(settings.url + settings.path, { method: "POST", body: "x" }))
  await Promise.all(calls)
  return true
}
"""

FAIR_CHATTY_JS = """
async function onTrack(event, settings) {
  for (let i = 0; i < settings.lines; i++) console.log(`flood ${event.messageId} ${i}`)
  return true
}
"""


def fair_sink_ids(requests: list[Any], path: str) -> list[str]:
    """messageIds the victim sent to the sink at `path`, in arrival order (duplicates kept)."""
    return [str(r.json()["id"]) for r in requests if r.path == path]


def fair_max_overlap(requests: list[Any], path: str) -> int:
    """The most requests to `path` the sink was serving at the same moment."""
    edges = sorted(
        [(r.started, 1) for r in requests if r.path == path] + [(r.finished, -1) for r in requests if r.path == path],
        key=lambda e: (e[0], e[1]),
    )
    best = now = 0
    for _, step in edges:
        now += step
        best = max(best, now)
    return best


FAIR_BURNER_JS = """
async function onTrack(event, settings) {
  let x = 0
  for (;;) x++
}
"""


class FairHangingPool:
    """A runner pool stand-in for dispatcher tests: invocations of `hung` never return,
    the others are delivered at once; records the order functions were invoked in."""

    def __init__(self, hung: str) -> None:
        self.hung = hung
        self.calls: list[str] = []

    async def invoke(self, version: Any, events: list[Any], settings: Any, *, batch: bool = False) -> list[Any]:
        import trio

        from segfuncd.outcomes import InvocationResult, Outcome

        self.calls.append(version.name)
        if version.name == self.hung:
            await trio.sleep_forever()
        return [InvocationResult(outcome=Outcome.DELIVERED, duration_ms=1.0) for _ in events]
