"""`segfuncctl pause` / `resume`: events held pending with no attempt used, across a restart."""

from __future__ import annotations

import json
from typing import Any

from helpers import ctl_deliveries, held_by_pause  # type: ignore[import-not-found]

FORWARD = """
async function onTrack(event, settings) {
  await fetch(settings.sink + "/" + event.event, {method: "post", body: "{}"})
}
"""


def test_pause_holds_events_across_a_restart_and_resume_delivers(daemon: Any, sink: Any) -> None:
    d = daemon(
        f'[functions.fwd]\nsettings = {{ sink = "{sink.url}" }}\n[functions.other]\nsettings = {{ sink = "{sink.url}/o" }}\n',
        plugins={"fwd": FORWARD, "other": FORWARD},
    )
    out = d.ctl("pause", "fwd")
    assert out.returncode == 0 and "paused fwd" in out.stdout
    assert "already paused" in d.ctl("pause", "fwd").stdout
    for i in range(3):
        assert d.post("/v1/track", {"userId": "u", "event": f"e{i}"}).status_code == 200
    d.wait_until(lambda: held_by_pause(ctl_deliveries(d, "fwd"), 3), what="3 deliveries held by the pause")
    sink.wait_for(3)  # "other" is not paused: it delivers
    assert all(r.path.startswith("/o/") for r in sink.requests)
    assert d.function_status("fwd")["state"] == "paused"
    assert "fwd" in d.ctl("status").stdout and "paused" in d.ctl("status").stdout

    assert d.stop() == 0
    d.start()
    assert d.function_status("fwd")["state"] == "paused"
    assert d.post("/v1/track", {"userId": "u", "event": "e3"}).status_code == 200
    d.wait_until(lambda: held_by_pause(ctl_deliveries(d, "fwd"), 4), what="4 deliveries held after the restart")
    assert len(sink.requests) == 4 and all(r.path.startswith("/o/") for r in sink.requests)

    out = d.ctl("resume", "fwd", "--json")
    assert out.returncode == 0 and json.loads(out.stdout) == {
        "function": "fwd",
        "paused": False,
        "changed": True,
        "deliveries": 4,
    }
    got = sink.wait_for(8)
    assert sorted(r.path for r in got if not r.path.startswith("/o/")) == ["/e0", "/e1", "/e2", "/e3"]
    d.wait_until(lambda: d.function_status("fwd").get("delivered") == 4, what="4 delivered")
    assert all(r["attempts"] == 1 for r in ctl_deliveries(d, "fwd"))
    assert d.function_status("fwd")["state"] == "live"
    assert "was not paused" in d.ctl("resume", "fwd").stdout


def test_pausing_an_unknown_function_is_refused(daemon: Any) -> None:
    d = daemon(plugins={"fwd": FORWARD})
    out = d.ctl("pause", "nope")
    assert out.returncode != 0 and "no function named 'nope'" in out.stderr
