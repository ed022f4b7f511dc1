"""`segfuncctl status` against a real daemon: table and JSON, before and after deliveries."""

from __future__ import annotations

import json
from typing import Any

GOOD = """
async function onTrack(event, settings) {
  console.log(`good got ${event.event}`)
  return { ok: event.event }
}
"""
FAILING = """
async function onTrack(event, settings) {
  return event.properties.missing.field   // TypeError: a bug, dead-lettered at once
}
"""
BROKEN = """
async function onTrack(event, settings) {
  return (
}
"""


def by_name(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in status["functions"]}


def test_status_before_and_after_deliveries_with_a_failing_plugin_and_a_load_error(daemon: Any) -> None:
    d = daemon(plugins={"good": GOOD, "failing": FAILING, "broken": BROKEN})
    d.wait_until(lambda: {"good", "failing", "broken"} <= set(by_name(d.status())), what="all three plugins seen")

    before = d.ctl("status")
    assert before.returncode == 0, before.stderr
    assert all(len(line) <= 80 for line in before.stdout.splitlines()), before.stdout
    assert f"pid {d.pid}" in before.stdout
    lines: dict[str, str] = {}
    for line in before.stdout.splitlines():  # the first row per function is the state table's
        if line and line.split()[0] in {"good", "failing", "broken"}:
            lines.setdefault(line.split()[0], line)
    assert " live " in lines["good"] and " live " in lines["failing"] and "load error" in lines["broken"]
    assert "broken: load error" in before.stdout and "broken.js" in before.stdout

    data = json.loads(d.ctl("status", "--json").stdout)
    fns = by_name(data)
    assert fns["good"]["delivered"] == 0 and fns["good"]["last_5m"]["count"] == 0
    assert fns["broken"]["state"] == "load error" and fns["broken"]["version"] is None
    assert "broken.js" in fns["broken"]["error_first_line"]
    assert data["daemon"]["pid"] == d.pid and data["runners"]["alive"] >= 1

    for i in range(3):
        assert d.post("/v1/track", {"userId": "u1", "event": f"E{i}"}).status_code == 200

    d.wait_until(lambda: by_name(d.status())["good"]["delivered"] == 3, what="3 deliveries to good")
    d.wait_until(lambda: by_name(d.status())["failing"]["dead"] == 3, what="3 dead letters of failing")

    after = json.loads(d.ctl("status", "--json").stdout)
    fns = by_name(after)
    good, failing = fns["good"], fns["failing"]
    assert good["last_5m"]["count"] == 3 and good["last_5m"]["success_rate"] == 1.0
    assert good["last_5m"]["p50_ms"] is not None and good["last_24h"]["count"] == 3
    assert "TypeError" in failing["last_error"] and failing["last_5m"]["success_rate"] == 0.0
    assert after["intake"]["accepted"] == 3 and after["queue"]["dead"] >= 3

    table = d.ctl("status")
    assert table.returncode == 0
    assert all(len(line) <= 80 for line in table.stdout.splitlines()), table.stdout
    good_row = next(line for line in table.stdout.splitlines() if line.startswith("good ") and " live " in line)
    assert good_row.split()[-5:] == ["3", "0", "0", "0", "0"], good_row
    assert "failing: last error" in table.stdout and "TypeError" in table.stdout
