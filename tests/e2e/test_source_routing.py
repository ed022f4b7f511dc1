"""Sources: a function connected to one of two sources gets only that source's events."""

from __future__ import annotations

import json
from typing import Any

import pytest

FORWARD = """
async function onTrack(event, settings) {
  await fetch(settings.sink + "/" + event.event, {method: "post", body: JSON.stringify(event)})
}
"""


def config(sink_url: str) -> str:
    return f"""
[sources.web]
write_key = "wk-web"
[sources.backend]
write_keys = ["wk-backend-1", "wk-backend-2"]
[functions.webonly]
sources = ["web"]
settings = {{ sink = "{sink_url}/webonly" }}
[functions.everything]
settings = {{ sink = "{sink_url}/everything" }}
"""


def test_a_function_connected_to_one_source_gets_only_its_events(daemon: Any, sink: Any) -> None:
    d = daemon(config(sink.url), plugins={"webonly": FORWARD, "everything": FORWARD})
    track = {"userId": "u", "event": "from-web", "messageId": "m-1"}
    assert d.post("/v1/track", track, write_key="wk-web").status_code == 200
    # The same messageId from another source is another event (dedupe is per source) ...
    assert d.post("/v1/track", track | {"event": "from-backend"}, write_key="wk-backend-1").status_code == 200
    # ... but within one source, across its keys, a retry of it is a duplicate.
    assert d.post("/v1/track", track | {"event": "dup"}, write_key="wk-backend-2").status_code == 200
    batch = {"writeKey": "wk-backend-2", "batch": [{"type": "track", "userId": "u", "event": "batched"}]}
    assert d.post("/v1/batch", batch).status_code == 200
    assert d.post("/v1/track", track, write_key="wk-nobody").status_code == 401
    sink.wait_for(4)
    d.wait_until(lambda: d.status()["queue"]["pending"] == 0, what="the queue to empty")
    assert sorted(r.path for r in sink.requests) == [
        "/everything/batched",
        "/everything/from-backend",
        "/everything/from-web",
        "/webonly/from-web",
    ]
    sources = {s["name"]: s for s in d.status()["intake"]["sources"]}
    assert sources["web"] == {"name": "web", "accepted": 1, "duplicate": 0, "rejected": 0}
    assert sources["backend"] == {"name": "backend", "accepted": 2, "duplicate": 1, "rejected": 0}
    table = d.ctl("status").stdout
    assert "source web: 1 accepted" in table and "source backend: 2 accepted, 1 duplicate" in table
    listing = json.loads(d.ctl("deliveries", "--json", "webonly").stdout)["deliveries"]
    assert [row["source"] for row in listing] == ["web"]
    assert "source web," in d.ctl("deliveries", "show", str(listing[0]["id"])).stdout


def test_plain_write_keys_stay_the_default_source(daemon: Any, sink: Any) -> None:
    d = daemon(
        f"""
[intake]
write_keys = ["wk-plain"]
[sources.web]
write_key = "wk-web"
[functions.plain]
sources = ["default"]
settings = {{ sink = "{sink.url}/plain" }}
""",
        plugins={"plain": FORWARD},
    )
    assert d.post("/v1/track", {"userId": "u", "event": "a"}, write_key="wk-plain").status_code == 200
    assert d.post("/v1/track", {"userId": "u", "event": "b"}, write_key="wk-web").status_code == 200
    assert d.post("/v1/track", {"userId": "u", "event": "c"}).status_code == 401  # a key is now required
    sink.wait_for(1)
    d.wait_until(lambda: d.status()["queue"]["pending"] == 0, what="the queue to empty")
    assert [r.path for r in sink.requests] == ["/plain/a"]
    names = [s["name"] for s in d.status()["intake"]["sources"]]
    assert names == ["default", "web"]


def test_a_function_naming_an_unknown_source_is_a_config_error(daemon: Any) -> None:
    with pytest.raises(AssertionError, match="exited with 2") as info:
        daemon('[sources.web]\nwrite_key = "k"\n[functions.f]\nsources = ["wbe"]\n', plugins={"f": FORWARD})
    assert "functions.f.sources[0]: unknown source 'wbe'" in str(info.value)
