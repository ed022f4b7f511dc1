"""A plugin that defines only onBatch works without a `batch` table (issue 13): Segment's
defaults group its events (20 events or 10 s), and `segfuncctl test` runs it."""

from __future__ import annotations

import json

ONLY_BATCH = """
async function onBatch(events, settings) {
  const res = await fetch(settings.sink + "/batch", {method: "post", body: JSON.stringify(events.map((e) => e.event))})
  console.log("sent " + events.length)
  return events.map(() => ({status: res.status}))
}
"""


def test_onbatch_only_plugin_delivers_in_groups_of_twenty(daemon, sink) -> None:
    d = daemon(f'[functions.bulk]\nsettings = {{ sink = "{sink.url}" }}\n', plugins={"bulk": ONLY_BATCH})
    assert d.function_status("bulk")["handlers"] == ["onBatch"]
    events = [{"type": "track", "userId": "u", "event": f"e{i}"} for i in range(40)]
    assert d.post("/v1/batch", {"batch": events}).json()["success"] is True
    got = sink.wait_for(2)
    sent = sorted(e for r in got for e in r.json())
    assert sent == sorted(f"e{i}" for i in range(40))
    assert [len(r.json()) for r in got] == [20, 20]  # Segment's default batch size
    d.wait_until(lambda: d.function_status("bulk").get("delivered") == 40, what="40 delivered")
    assert d.function_status("bulk")["discarded_total"] == 0


def test_ctl_test_runs_an_onbatch_only_plugin_with_the_sample_event(daemon, sink) -> None:
    d = daemon(f'[functions.bulk]\nsettings = {{ sink = "{sink.url}" }}\n', plugins={"bulk": ONLY_BATCH})
    out = d.ctl("test", "bulk", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads(out.stdout)
    assert data["batch"] is True
    assert data["results"][0]["outcome"] == "delivered"
    assert any("sent 1" in line["message"] for line in data["results"][0]["logs"])
    assert sink.wait_for(1)[0].json() == ["Test Event"]
