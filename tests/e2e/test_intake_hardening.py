"""Intake under hostile input, through the real daemon: bad items are rejected one by one,
nothing answers 500, and dedupe is per source (issue 11, items 4 and 5)."""

from __future__ import annotations

import json
import random
import sqlite3
from typing import Any

import httpx
from helpers import corrupt, hostile_batch


def stored_events(d: Any) -> list[dict[str, Any]]:
    conn = sqlite3.connect(str(d.dir / d.config["storage"]["path"]))
    try:
        return [json.loads(b) for (b,) in conn.execute("SELECT body FROM events ORDER BY id")]
    finally:
        conn.close()


def post_raw(d: Any, path: str, body: bytes, **kw: Any) -> httpx.Response:
    return httpx.post(d.intake_url + path, content=body, headers={"content-type": "application/json"}, timeout=30, **kw)


def test_a_batch_item_with_1e400_or_a_lone_surrogate_is_rejected_alone(daemon: Any) -> None:
    d = daemon(plugins={"noop": "async function onTrack(e) { return 1 }"})
    items = [json.dumps({"type": "track", "userId": f"u{i}", "event": "E", "messageId": f"m{i}"}) for i in range(198)]
    items.insert(7, '{"type":"track","userId":"u","event":"E","properties":{"big":1e400}}')
    items.insert(50, '{"type":"track","userId":"\\ud800","event":"E"}')
    r = post_raw(d, "/v1/batch", ('{"batch":[' + ",".join(items) + "]}").encode())
    assert r.status_code == 200, r.text
    rejected = r.json()["rejected"]
    assert [x["index"] for x in rejected] == [7, 50]
    assert "number out of range: 1e400" in rejected[0]["message"]
    assert "lone UTF-16 surrogate" in rejected[1]["message"]
    assert sorted(e["messageId"] for e in stored_events(d)) == sorted(f"m{i}" for i in range(198))
    # a single call with such a value is a 400 naming it, not a 500
    r = post_raw(d, "/v1/track", b'{"userId":"u","event":"E","properties":{"x":-1e400}}')
    assert r.status_code == 400 and "number out of range" in r.json()["message"]
    r = post_raw(d, "/v1/track", b'{"userId":"u","event":"\\udfff"}')
    assert r.status_code == 400 and "surrogate" in r.json()["message"]


def test_no_hostile_input_makes_intake_answer_500(daemon: Any) -> None:
    """A bounded fuzz (fixed seed, 160 requests): every answer is 2xx/4xx; valid items are stored."""
    d = daemon(plugins={"noop": "async function onTrack(e) { return 1 }"})
    rng = random.Random(11)
    statuses: dict[int, int] = {}
    with httpx.Client(timeout=30) as client:
        for i in range(160):
            body, _ = hostile_batch(rng, valid=rng.randint(0, 5))
            path = "/v1/batch"
            if i % 4 == 1:
                body = corrupt(rng, body)
            elif i % 4 == 2:
                path = rng.choice(["/v1/track", "/v1/identify", "/v1/page", "/v1/alias", "/v1/group"])
                body = body[len('{"batch":[') :].split(b"},{", 1)[0].rstrip(b"]}") + b"}"
            r = client.post(d.intake_url + path, content=body, headers={"content-type": "application/json"})
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert r.status_code < 500, (i, r.status_code, r.text, body[:300])
            assert r.headers["content-type"].startswith("application/json")
    assert statuses.get(200, 0) > 10 and statuses.get(400, 0) > 10, statuses
    assert d.admin_get("/status").status_code == 200
    assert httpx.get(d.intake_url + "/health").json()["ok"] is True
    assert d.status()["intake"]["accepted"] == len(stored_events(d)) > 0  # what was acknowledged is stored


def test_dedupe_is_per_write_key(daemon: Any) -> None:
    d = daemon(
        '[intake]\nwrite_keys = ["key-a", "key-b"]\n', plugins={"noop": "async function onTrack(e) { return 1 }"}
    )
    order = {"userId": "u", "event": "Order Completed", "messageId": "order-1"}
    assert d.post("/v1/track", order, write_key="key-a").status_code == 200
    assert d.post("/v1/track", order, write_key="key-b").status_code == 200  # another source's real order
    assert d.post("/v1/track", order, write_key="key-a").status_code == 200  # the SDK's retry: a duplicate
    assert d.post("/v1/batch", {"batch": [{"type": "track", **order}], "writeKey": "key-b"}).status_code == 200
    assert [e["messageId"] for e in stored_events(d)] == ["order-1", "order-1"]
    intake = d.status()["intake"]
    assert (intake["accepted"], intake["duplicate"]) == (2, 2)
