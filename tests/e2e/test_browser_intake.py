"""Browser-facing intake through a real daemon: CORS refusal, channel and context.ip."""

from __future__ import annotations

import json
from typing import Any

import httpx

FORWARD = """
async function onTrack(event, settings) {
  await fetch(settings.sink + "/" + event.event, {method: "post", body: JSON.stringify(event)})
}
"""


def beacon(d: Any, path: str, body: dict[str, Any], origin: str | None, **headers: str) -> httpx.Response:
    """A sendBeacon-style POST: text/plain, no preflight."""
    h = {"content-type": "text/plain;charset=UTF-8", **headers}
    if origin is not None:
        h["origin"] = origin
    return httpx.post(d.intake_url + path, content=json.dumps(body).encode(), headers=h, timeout=10)


def test_an_unlisted_origin_is_refused_even_for_a_text_plain_beacon(daemon: Any, sink: Any) -> None:
    d = daemon(
        f"""
[intake]
write_keys = ["wk"]
cors_origins = ["https://shop.example"]
[functions.fwd]
settings = {{ sink = "{sink.url}" }}
""",
        plugins={"fwd": FORWARD},
    )
    event = {"writeKey": "wk", "userId": "u", "event": "evil"}
    refused = beacon(d, "/v1/t", event, "https://evil.example")
    assert refused.status_code == 403 and "origin not allowed" in refused.json()["message"]
    assert beacon(d, "/v1/track", event, "null").status_code == 403
    ok = beacon(d, "/v1/t", event | {"event": "shop"}, "https://shop.example")
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://shop.example"
    assert beacon(d, "/v1/track", event | {"event": "server"}, None).status_code == 200
    sink.wait_for(2)
    d.wait_until(lambda: d.status()["queue"]["pending"] == 0, what="the queue to empty")
    assert sorted(r.path for r in sink.requests) == ["/server", "/shop"]
