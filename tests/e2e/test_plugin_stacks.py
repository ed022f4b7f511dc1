"""A throw in plugin code is shown with the plugin file's own line in test, logs and deliveries show."""

from __future__ import annotations

import json
from typing import Any

THROWS = """var config = {}

function check(event) {
  if (!event.properties.plan) {
    throw new Error("no plan in " + event.event)
  }
}

async function onTrack(event, settings) {
  check(event)
  return "ok"
}
"""


def test_a_throw_names_the_plugin_file_and_line_everywhere(daemon: Any) -> None:
    d = daemon(plugins={"billing": THROWS})
    test = d.ctl(
        "test", "billing", "-", input=json.dumps({"type": "track", "userId": "u", "event": "Paid", "properties": {}})
    )
    assert test.returncode == 1
    assert "Error: no plan in Paid (at billing.js:5:" in test.stdout
    assert "at check (billing.js:5:" in test.stdout and "at onTrack (billing.js:10:" in test.stdout
    assert "<dukpy>" not in test.stdout and "at pump" not in test.stdout

    assert (
        d.post("/v1/track", {"userId": "u", "event": "Paid", "messageId": "m-stack", "properties": {}}).status_code
        == 200
    )
    d.wait_until(lambda: d.function_status("billing").get("dead") == 1, what="the delivery dead-lettered")
    (row,) = json.loads(d.ctl("deliveries", "--json", "--message-id", "m-stack").stdout)["deliveries"]
    assert "(at billing.js:5:" in row["last_error"]
    shown = d.ctl("deliveries", "show", str(row["id"])).stdout
    assert "at check (billing.js:5:" in shown and "at onTrack (billing.js:10:" in shown
    record = json.loads(d.ctl("deliveries", "show", "--json", str(row["id"])).stdout)["history"][0]["record"]
    assert record["error"]["name"] == "Error" and "billing.js:5:" in record["error"]["stack"]
    logs = d.wait_until(
        lambda: [line for line in d.ctl("logs", "-n", "200").stdout.splitlines() if "delivery_attempt" in line],
        what="the attempt's log line",
    )
    assert "(at billing.js:5:" in logs[-1]
