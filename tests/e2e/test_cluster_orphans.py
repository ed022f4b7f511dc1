"""Cluster mode (issue 16): the consumer of a function no node runs any more is swept, never deleted.

Real nats-server, real segfuncd processes and sink. With interest retention, a forgotten
function's consumer would keep every later event in the stream (until it filled up and
intake answered 503): the sweep acks what is not routed to the function, and keeps what is.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from helpers import nats_cluster_toml, nats_delete_consumer

from segfuncd.jetstream.store import INFO_TTL_S

WAIT_S = 45.0

pytestmark = pytest.mark.cluster

OK = """
async function onTrack(event, settings) {
  await fetch(settings.url + "/" + settings.name, { method: "post", body: JSON.stringify({ id: event.messageId }) })
  return 1
}
"""


def _cluster(d: Any) -> dict[str, Any]:
    return d.status().get("cluster") or {}


def _to(sink: Any, path: str) -> int:
    return sum(1 for r in list(sink.requests) if r.path == path)


def _gone_ids(sink: Any) -> set[str]:
    """Events gone's destination answered at once (the hanging calls before are not counted)."""
    return {r.json()["id"] for r in list(sink.requests) if r.path == "/gone" and r.finished - r.started < 5}


def _swept(d: Any, key: str) -> int:
    """Events the node's sweeps answered so far (`key`: "acked" or "parked"), from its log lines."""
    lines = [json.loads(x) for x in d.stderr().splitlines() if x.startswith("{")]
    return sum(int(x.get(key, 0)) for x in lines if x.get("event") == "cluster_orphan_swept")


def test_a_function_removed_from_every_node_stops_holding_the_stream_and_keeps_its_own_events(
    daemon: Any, sink: Any, nats_one: Any
) -> None:
    base = nats_cluster_toml([nats_one], extra="orphan_grace_s = 0")
    fn = f'[functions.fn]\nsettings = {{ url = "{sink.url}", name = "fn" }}\n'
    gone = f'[functions.gone]\nsettings = {{ url = "{sink.url}", name = "gone" }}\n'
    # AckWait = timeout_ms + 5 s: what the stopping node's last pull took comes back after it.
    slow = "[runtime]\ntimeout_ms = 2000\ndrain_timeout_s = 0.2\n"
    sink.behaviour.routes["/gone"] = (200, 30.0, b"{}")  # gone's destination hangs
    a = daemon(base + fn + gone + slow, plugins={"fn": OK, "gone": OK}, subdir="a")
    for name in ("fn", "gone"):
        a.wait_until(lambda n=name: a.function_status(n).get("state") == "live", timeout=WAIT_S, what=f"{name} live")
    first = [{"type": "track", "userId": "u", "event": "E", "messageId": f"both{i}"} for i in range(3)]
    assert a.post("/v1/batch", {"batch": first}).status_code == 200
    a.wait_until(lambda: _to(sink, "/fn") == 3, timeout=WAIT_S, what="fn delivered them (gone's hang)")
    # gone is removed from every node: the only node stops (handing gone's three back) ...
    a.stop()
    b = daemon(base + fn, plugins={"fn": OK}, subdir="b")  # ... and one without gone takes over
    b.wait_until(lambda: b.function_status("fn").get("state") == "live", timeout=WAIT_S, what="fn live on b")
    later = [{"type": "track", "userId": "u", "event": "E", "messageId": f"later{i}"} for i in range(10)]
    assert b.post("/v1/batch", {"batch": later}).status_code == 200
    b.wait_until(lambda: _to(sink, "/fn") == 13, timeout=WAIT_S, what="fn delivered the later ones")
    # gone's consumer let the later events go (the sweep acked them), and parked its own three.
    b.wait_until(lambda: _swept(b, "acked") == 10, timeout=WAIT_S, what="the later events acked by the sweep")
    b.wait_until(lambda: _swept(b, "parked") == 3, timeout=WAIT_S, what="gone's three parked")
    time.sleep(INFO_TTL_S + 0.1)  # status' cluster figures are cached this long
    cluster = _cluster(b)
    assert cluster["messages"] == 0 and cluster["parked"] == 3, cluster  # nothing held for gone, nothing lost
    assert "gone" in cluster["consumers"], cluster  # not deleted
    # gone comes back on a node: its three are moved back and delivered, once each.
    del sink.behaviour.routes["/gone"]
    c = daemon(base + fn + gone, plugins={"fn": OK, "gone": OK}, subdir="c")
    c.wait_until(lambda: _gone_ids(sink) >= {"both0", "both1", "both2"}, timeout=WAIT_S, what="gone's three delivered")
    assert _swept(c, "parked") == 0 and _swept(c, "acked") == 0  # c runs gone: it never sweeps it


def test_a_consumer_deleted_by_hand_is_made_again_and_its_function_delivers(
    daemon: Any, sink: Any, nats_one: Any
) -> None:
    """`nats consumer rm` of a function that still runs: the node notices at its next fetch,
    makes the consumer again and delivers what is posted afterwards (no restart)."""
    fn = f'[functions.fn]\nsettings = {{ url = "{sink.url}", name = "fn" }}\n'
    d = daemon(nats_cluster_toml([nats_one]) + fn, plugins={"fn": OK})
    d.wait_until(lambda: d.function_status("fn").get("state") == "live", timeout=WAIT_S, what="fn live")
    assert d.post("/v1/track", {"userId": "u", "event": "E", "messageId": "before"}).status_code == 200
    d.wait_until(lambda: _to(sink, "/fn") == 1, timeout=WAIT_S, what="delivered before")
    nats_delete_consumer(nats_one.url, "T_EVENTS", "T_fn_fn")
    d.wait_until(lambda: "cluster_consumer_gone" in d.stderr(), timeout=WAIT_S, what="the node noticed")
    d.wait_until(lambda: d.stderr().count("cluster_consumer_ready") >= 2, timeout=WAIT_S, what="made again")
    batch = [{"type": "track", "userId": "u", "event": "E", "messageId": f"after{i}"} for i in range(5)]
    assert d.post("/v1/batch", {"batch": batch}).status_code == 200
    d.wait_until(lambda: _to(sink, "/fn") == 6, timeout=WAIT_S, what="delivered after")
