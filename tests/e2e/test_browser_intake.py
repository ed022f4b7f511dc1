"""Browser-facing intake through a real daemon: CORS refusal, channel and context.ip."""

from __future__ import annotations

from typing import Any

from helpers import beacon_post  # type: ignore[import-not-found]

FORWARD = """
async function onTrack(event, settings) {
  await fetch(settings.sink + "/" + event.event, {method: "post", body: JSON.stringify(event)})
}
"""


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
    refused = beacon_post(d.intake_url, "/v1/t", event, "https://evil.example")
    assert refused.status_code == 403 and "origin not allowed" in refused.json()["message"]
    assert beacon_post(d.intake_url, "/v1/track", event, "null").status_code == 403
    ok = beacon_post(d.intake_url, "/v1/t", event | {"event": "shop"}, "https://shop.example")
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://shop.example"
    assert beacon_post(d.intake_url, "/v1/track", event | {"event": "server"}, None).status_code == 200
    sink.wait_for(2)
    d.wait_until(lambda: d.status()["queue"]["pending"] == 0, what="the queue to empty")
    assert sorted(r.path for r in sink.requests) == ["/server", "/shop"]


def test_browser_events_are_client_channel_and_carry_the_client_ip(daemon: Any, sink: Any) -> None:
    d = daemon(
        f"""
[intake]
cors_origins = ["*"]
trusted_proxies = ["127.0.0.1"]
[functions.fwd]
settings = {{ sink = "{sink.url}" }}
""",
        plugins={"fwd": FORWARD},
    )
    assert (
        beacon_post(d.intake_url, "/v1/t", {"userId": "u", "event": "browser"}, "https://shop.example").status_code
        == 200
    )
    lib = {"context": {"library": {"name": "analytics.js"}}}
    assert d.post("/v1/track", {"userId": "u", "event": "library", **lib}).status_code == 200
    forwarded = {"x-forwarded-for": "203.0.113.7, 127.0.0.1"}
    assert (
        beacon_post(d.intake_url, "/v1/track", {"userId": "u", "event": "proxied"}, None, **forwarded).status_code
        == 200
    )
    own = {"userId": "u", "event": "own", "context": {"ip": "192.0.2.1"}}
    assert d.post("/v1/track", own).status_code == 200
    got = {r.path[1:]: r.json() for r in sink.wait_for(4)}
    assert got["browser"]["channel"] == "client" and got["browser"]["context"]["ip"] == "127.0.0.1"
    assert got["library"]["channel"] == "client"
    assert got["proxied"]["channel"] == "server" and got["proxied"]["context"]["ip"] == "203.0.113.7"
    assert got["own"]["context"]["ip"] == "192.0.2.1"


def test_forwarded_for_from_an_untrusted_peer_is_ignored(daemon: Any, sink: Any) -> None:
    d = daemon(f'[functions.fwd]\nsettings = {{ sink = "{sink.url}" }}\n', plugins={"fwd": FORWARD})
    forged = {"x-forwarded-for": "203.0.113.7"}
    assert beacon_post(d.intake_url, "/v1/track", {"userId": "u", "event": "forged"}, None, **forged).status_code == 200
    (got,) = sink.wait_for(1)
    assert got.json()["context"]["ip"] == "127.0.0.1"
