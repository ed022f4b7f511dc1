"""Destination filters, integrations routing and onBatch through a real daemon."""

from __future__ import annotations

from collections import Counter
from typing import Any

FORWARD = """
async function onTrack(event, settings) {
  await fetch(settings.sink + "/" + event.event, {method: "post", body: JSON.stringify(event)})
}
"""


def test_filtered_function_receives_only_matching_events_and_status_counts_the_rest(daemon, sink) -> None:
    d = daemon(
        f"""
[functions.fwd]
settings = {{ sink = "{sink.url}" }}
[[functions.fwd.filters]]
if = "event = 'Noise' or match(properties.plan, 'free*')"
action = "drop"
[[functions.fwd.filters]]
if = "all"
action = "drop_properties"
fields = {{ "properties" = ["email"] }}
""",
        plugins={"fwd": FORWARD},
    )
    batch = [
        {"type": "track", "userId": "a", "event": "Keep", "properties": {"plan": "pro", "email": "a@x"}},
        {"type": "track", "userId": "b", "event": "Noise", "properties": {"plan": "pro"}},
        {"type": "track", "userId": "c", "event": "Cheap", "properties": {"plan": "free-trial"}},
        {"type": "track", "userId": "d", "event": "Also", "properties": {"plan": "team", "email": "d@x"}},
    ]
    assert d.post("/v1/batch", {"batch": batch}).json()["success"] is True
    got = sink.wait_for(2)
    d.wait_until(lambda: d.function_status("fwd").get("filtered") == 2, what="2 filtered in status")
    assert sorted(r.path for r in sink.requests) == ["/Also", "/Keep"]
    assert all("email" not in r.json()["properties"] for r in got)
    status = d.function_status("fwd")
    assert status["delivered"] == 2 and status["discarded_total"] == 0


def test_integrations_object_selects_functions(daemon, sink) -> None:
    d = daemon(
        f'[functions.a]\nsettings = {{ sink = "{sink.url}/a" }}\n[functions.b]\nsettings = {{ sink = "{sink.url}/b" }}\n',
        plugins={"a": FORWARD, "b": FORWARD},
    )
    d.post("/v1/track", {"userId": "u", "event": "only-b", "integrations": {"All": False, "b": True}})
    d.post("/v1/track", {"userId": "u", "event": "not-a", "integrations": {"a": False}})
    sink.wait_for(2)
    d.wait_until(lambda: d.status()["queue"]["pending"] == 0, what="queue empty")
    assert sorted(r.path for r in sink.requests) == ["/b/not-a", "/b/only-b"]


ON_BATCH = """
var seen = {}   // top-level state persists between invocations of one version
async function onBatch(events, settings) {
  const out = []
  for (const e of events) {
    const id = e.messageId
    seen[id] = (seen[id] || 0) + 1
    if (e.properties.flaky && seen[id] === 1) { out.push({status: 503, errormessage: "try later"}); continue }
    if (e.properties.bad) { out.push({status: 400, errormessage: "bad payload"}); continue }
    await fetch(settings.sink + "/" + e.event, {method: "post", body: JSON.stringify({n: events.length})})
    out.push({status: 200})
  }
  return out
}
// At low rates (a lone retry) Segment uses the single-event handler when there is one.
async function onTrack(event, settings) {
  await fetch(settings.sink + "/" + event.event, {method: "post", body: JSON.stringify({n: 1})})
}
"""


def test_on_batch_partial_failure_retries_only_the_failed_positions(daemon, sink) -> None:
    d = daemon(
        f"""
[retry]
base_delay_s = 0.2
[functions.batched]
settings = {{ sink = "{sink.url}" }}
batch = {{ max_events = 10, max_wait_ms = 300 }}
""",
        plugins={"batched": ON_BATCH},
    )
    events: list[dict[str, Any]] = [
        {"type": "track", "userId": "u", "event": f"e{i}", "properties": {}} for i in range(6)
    ]
    events[2]["properties"]["flaky"] = True
    events[4]["properties"]["bad"] = True
    assert d.post("/v1/batch", {"batch": events}).json()["success"] is True
    sink.wait_for(5, timeout=20)
    d.wait_until(lambda: d.function_status("batched").get("delivered") == 5, what="5 delivered")
    counts = Counter(r.path for r in sink.requests)
    assert counts == Counter({"/e0": 1, "/e1": 1, "/e2": 1, "/e3": 1, "/e5": 1})
    assert max(r.json()["n"] for r in sink.requests) > 1, "events were not grouped into a batch"
    status = d.function_status("batched")
    assert status["discarded_total"] == 1 and status["dead"] == 0
