"""`segfuncctl replay`: a dead letter goes back to pending and delivers after the fix."""

from __future__ import annotations

from typing import Any

BUGGY = """
async function onTrack(event, settings) {
  return event.properties.nope.nope   // TypeError: dead-lettered at once
}
"""
FIXED = """
async function onTrack(event, settings) {
  const res = await fetch(settings.url + "/fixed", { method: "post", body: JSON.stringify({ e: event.event }) })
  return res.status
}
"""


def test_replay_of_a_dead_letter_that_then_delivers(daemon: Any, sink: Any) -> None:
    d = daemon(f'[functions.fn]\nsettings = {{ url = "{sink.url}" }}\n', plugins={"fn": BUGGY})
    d.wait_until(lambda: d.function_status("fn").get("state") == "live", what="fn live")
    assert d.post("/v1/track", {"userId": "u1", "event": "Order Placed"}).status_code == 200
    d.wait_until(lambda: d.function_status("fn").get("dead") == 1, what="a dead letter")

    dead = d.ctl("deliveries", "fn", "--state", "dead")
    assert dead.returncode == 0 and "TypeError" in dead.stdout, dead.stdout + dead.stderr
    delivery_id = dead.stdout.splitlines()[1].split()[0]
    shown = d.ctl("deliveries", "show", delivery_id)
    assert shown.returncode == 0 and "Order Placed" in shown.stdout and "#1" in shown.stdout

    old_version = d.function_status("fn")["version"]
    d.write_plugin("fn", FIXED)
    d.wait_until(lambda: d.function_status("fn").get("version") not in (None, old_version), what="the fix to go live")
    assert sink.requests == []

    out = d.ctl("replay", "fn")
    assert out.returncode == 0 and out.stdout.startswith("replayed 1 "), out.stdout + out.stderr
    (req,) = sink.wait_for(1)
    assert req.path == "/fixed" and req.json() == {"e": "Order Placed"}
    d.wait_until(lambda: d.function_status("fn").get("delivered") == 1, what="the replayed delivery")
    assert d.function_status("fn")["dead"] == 0
    assert d.ctl("replay", "fn").stdout.startswith("replayed 0 ")
