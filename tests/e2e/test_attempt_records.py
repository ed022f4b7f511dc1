"""Attempt records: `deliveries show` prints what each attempt returned, logged and sent."""

from __future__ import annotations

import json
from typing import Any

SECRET = "sk-live-Attempt-9d8c7b6a"

TWO_REQUESTS = """
async function onTrack(event, settings) {
  console.log("sending " + event.event)
  const a = await fetch(settings.url + "/first", {
    method: "post",
    headers: {"content-type": "application/json", authorization: "Bearer " + settings.apiKey},
    body: JSON.stringify({token: settings.apiKey, name: event.event}),
  })
  const b = await fetch(settings.url + "/second?key=" + settings.apiKey)
  console.warn("statuses " + a.status + " " + b.status)
  return {first: a.status, second: b.status, event: event.event}
}
"""
OTHER = """
async function onTrack(event, settings) { console.log("other saw " + event.messageId); return "ok" }
"""


def test_an_attempt_record_has_return_logs_and_two_redacted_requests(daemon: Any, sink: Any) -> None:
    sink.behaviour.body = b'{"echo":"' + SECRET.encode() + b'"}'
    d = daemon(
        f'[functions.two]\nsettings = {{ url = "{sink.url}", apiKey = "{SECRET}" }}\n[functions.other]\n',
        plugins={"two": TWO_REQUESTS, "other": OTHER},
    )
    assert d.post("/v1/track", {"userId": "u", "event": "Signed Up", "messageId": "msg-attempt-1"}).status_code == 200
    assert d.post("/v1/track", {"userId": "u", "event": "Noise", "messageId": "msg-noise"}).status_code == 200
    sink.wait_for(4)
    d.wait_until(lambda: d.status()["queue"]["pending"] == 0, what="the queue to empty")

    found = json.loads(d.ctl("deliveries", "--json", "--message-id", "msg-attempt-1").stdout)["deliveries"]
    assert sorted(r["function"] for r in found) == ["other", "two"]
    assert all(r["message_id"] == "msg-attempt-1" for r in found)
    two = next(r for r in found if r["function"] == "two")

    text = d.ctl("deliveries", "show", str(two["id"]))
    assert text.returncode == 0, text.stderr
    shown = text.stdout
    for part in ("Callback Return", "Log Output", "Requests", '"event": "Signed Up"', "sending Signed Up"):
        assert part in shown, part
    assert f"POST {sink.url}/first -> 200" in shown and f"GET {sink.url}/second?key=[redacted] -> 200" in shown
    assert "[warn] statuses 200 200" in shown

    record = json.loads(d.ctl("deliveries", "show", "--json", str(two["id"])).stdout)["history"][0]["record"]
    assert record["outcome"] == "delivered" and record["runner"] and record["duration_ms"] > 0
    assert json.loads(record["return"]) == {"first": 200, "second": 200, "event": "Signed Up"}
    first, second = record["requests"]
    assert first["method"] == "POST" and first["status"] == 200
    assert dict(first["request_headers"])["authorization"] == "[redacted]"
    assert json.loads(first["request_body"]) == {"token": "[redacted]", "name": "Signed Up"}
    assert json.loads(first["response_body"]) == {"echo": "[redacted]"}
    assert second["url"].endswith("/second?key=[redacted]")
    assert SECRET not in json.dumps(record) and SECRET not in shown

    logs = d.ctl("logs", "--json", "-n", "100", "--message-id", "msg-attempt-1").stdout.splitlines()
    messages = sorted(json.loads(line)["message"] for line in logs)
    assert messages == ["other saw msg-attempt-1", "sending Signed Up", "statuses 200 200"]
