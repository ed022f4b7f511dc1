"""`segfuncctl logs`: -n, a function filter, and -f receiving a line written after it started."""

from __future__ import annotations

import json
from typing import Any

from helpers import until_a_line_arrives

CHATTY = """
async function onTrack(event, settings) {
  console.log(`chatty saw ${event.event}`)
  return true
}
"""
QUIET = """
async function onTrack(event, settings) {
  console.warn(`quiet saw ${event.event}`)
  return true
}
"""


def messages(out: str) -> list[str]:
    return [json.loads(line)["message"] for line in out.splitlines() if line.strip()]


def test_logs_n_function_filter_and_follow(daemon: Any) -> None:
    d = daemon(plugins={"chatty": CHATTY, "quiet": QUIET})
    for i in range(5):
        assert d.post("/v1/track", {"userId": "u1", "event": f"E{i}"}).status_code == 200
    d.wait_until(lambda: "chatty saw E4" in d.ctl("logs", "-n", "1000").stdout, what="the logs of 5 deliveries")
    d.wait_until(lambda: "quiet saw E4" in d.ctl("logs", "-n", "1000").stdout, what="quiet's logs")

    two = d.ctl("logs", "-n", "2", "chatty")
    assert two.returncode == 0, two.stderr
    lines = two.stdout.splitlines()
    assert len(lines) == 2 and "chatty saw E3" in lines[0] and "chatty saw E4" in lines[1]
    assert "quiet" not in two.stdout and "chatty@" in lines[0]

    as_json = d.ctl("logs", "--json", "-n", "1000", "quiet")
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [r["message"] for r in records if r["source"] == "function"] == [f"quiet saw E{i}" for i in range(5)]
    assert all(
        r["function"] == "quiet" and r["level"] == "warn" and r["message_id"]
        for r in records
        if r["source"] == "function"
    )

    warned = d.ctl("logs", "--level", "warn", "-n", "1000")
    assert "quiet saw E4" in warned.stdout and "chatty saw" not in warned.stdout

    follower = d.ctl_popen("logs", "-f", "-n", "0", "--json", "chatty")
    try:
        # The follower prints nothing old (-n 0); a line written after it started must arrive.
        def late(i: int) -> None:
            assert d.post("/v1/track", {"userId": "u1", "event": f"LATE{i}"}).status_code == 200

        line, more = until_a_line_arrives(follower.stdout, late, wait_s=5.0)
        assert json.loads(line)["message"].startswith("chatty saw LATE")  # never E0..E4 from before
        assert d.post("/v1/track", {"userId": "u1", "event": "LATER"}).status_code == 200
        messages = [json.loads(more.get(timeout=15))["message"]]
        while messages[-1] != "chatty saw LATER":  # LATE lines written while it connected may come first
            messages.append(json.loads(more.get(timeout=15))["message"])
        assert all(m.startswith("chatty saw LATE") for m in messages)
    finally:
        follower.terminate()
        follower.wait(10)
