"""Refused requests are visible: counted by reason in `status`, logged once a minute with the client."""

from __future__ import annotations

import json
from typing import Any

import httpx


def test_refused_requests_are_counted_in_the_status_table_and_logged(daemon: Any) -> None:
    d = daemon('[intake]\nwrite_keys = ["wk"]\ncors_origins = ["https://shop.example"]\n')
    track = {"userId": "u", "event": "E"}
    for _ in range(3):
        assert d.post("/v1/track", track, write_key="wrong").status_code == 401
    assert d.post("/v1/track", track).status_code == 401  # no key at all
    evil = httpx.post(
        d.intake_url + "/v1/track",
        content=json.dumps(track | {"writeKey": "wk"}),
        headers={"origin": "https://evil.example", "content-type": "text/plain"},
    )
    assert evil.status_code == 403
    huge = httpx.post(d.intake_url + "/v1/batch", content=b"x" * (600 * 1024), auth=("wk", ""))
    assert huge.status_code == 413
    assert httpx.post(d.intake_url + "/v1/track", content=b"{nope", auth=("wk", "")).status_code == 400

    refused = d.status()["intake"]["refused"]
    assert {r: c["total"] for r, c in refused.items()} == {"bad_key": 4, "origin": 1, "too_large": 1, "malformed": 1}
    assert all(c["last_5m"] == c["total"] for c in refused.values())
    table = d.ctl("status").stdout
    assert "refused last 5 min : 4 bad key, 1 origin, 1 too large, 1 malformed" in table
    assert "refused since start: 4 bad key, 1 origin, 1 too large, 1 malformed" in table

    def refusal_lines() -> list[dict[str, Any]]:
        out = d.ctl("logs", "--json", "-n", "1000").stdout
        return [r for r in map(json.loads, out.splitlines()) if r["message"] == "intake_refused"]

    lines = d.wait_until(lambda: len(refusal_lines()) >= 4 and refusal_lines(), what="the refusal log lines")
    by_reason = {line["fields"]["reason"]: line for line in lines}
    assert len(lines) == 4  # one per reason: the other three bad keys of this minute are not logged
    assert set(by_reason) == {"bad_key", "origin", "too_large", "malformed"}
    assert all(line["fields"]["client"] == "127.0.0.1" for line in lines)
    assert "unknown write key" in by_reason["bad_key"]["fields"]["message"]
