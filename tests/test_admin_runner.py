"""POST /test through the real runner pool: real QuickJS, real fetch to the sink."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import SINK_ALLOW
from test_admin_fakes import PluginState, make_admin

from segfuncd.config import Config, FunctionConfig
from segfuncd.runner import PluginVersion, open_runner_pool
from segfuncd.server import Request

SOURCE = """
async function onTrack(event, settings) {
  console.log(`apiKey is ${settings.apiKey}`)
  const mode = event.properties && event.properties.mode
  if (mode === "validation") throw new ValidationError("Account ID is required")
  if (mode === "bug") return event.nope.nope
  if (mode === "fetch") {
    const res = await fetch(settings.url + "/hook", { method: "post", body: JSON.stringify({ u: event.userId }) })
    return { status: res.status }
  }
  return { seen: event.event }
}
"""


class Registry:
    def __init__(self) -> None:
        v = PluginVersion.from_source("fn", SOURCE)
        self.state = PluginState(name="fn", path="fn.js", enabled=True, version=v, loaded_at=0.0, handlers=("onTrack",))

    def get(self, name: str) -> Any:
        return self.state if name == "fn" else None

    def states(self) -> list[Any]:
        return [self.state]


async def run_test(sink: Any, body: dict[str, Any]) -> dict[str, Any]:
    config = Config(functions={"fn": FunctionConfig(settings={"apiKey": "sk-real-secret", "url": sink.url})})
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        admin, _, _ = make_admin(config=config, pool=pool, registry=Registry())
        r = await admin.handle(
            Request(
                method="POST",
                target="/test",
                path="/test",
                query={},
                headers={},
                body=json.dumps({"function": "fn", **body}).encode(),
                peer=None,
                local=True,
            )
        )
    assert r.status == 200, r.body
    return json.loads(r.body)  # type: ignore[arg-type,no-any-return]


@pytest.mark.parametrize(
    "mode, ret, error",
    [
        (None, {"seen": "Clicked"}, None),
        ("validation", None, {"name": "ValidationError", "message": "Account ID is required"}),
        ("bug", None, "TypeError"),
    ],
)
async def test_return_or_error_and_redacted_logs(sink: Any, mode: str | None, ret: Any, error: Any) -> None:
    event = {"type": "track", "event": "Clicked", "userId": "u1", "properties": {"mode": mode}}
    (r,) = (await run_test(sink, {"event": event}))["results"]
    assert r["return"] == ret
    if isinstance(error, str):
        assert r["error"]["name"] == error
    elif error is None:
        assert r["error"] is None
    else:  # plus the stack, mapped to the plugin's lines
        assert {k: r["error"][k] for k in ("name", "message")} == {**error, "message": r["error"]["message"]}
        assert r["error"]["message"].startswith(error["message"]) and ".js:" in r["error"]["stack"]
    assert [x["message"] for x in r["logs"]] == ["apiKey is [redacted]"]


async def test_fetch_to_the_sink_is_listed(sink: Any) -> None:
    event = {"type": "track", "event": "Clicked", "userId": "u1", "properties": {"mode": "fetch"}}
    (r,) = (await run_test(sink, {"event": event}))["results"]
    assert r["return"] == {"status": 200}
    (q,) = r["requests"]
    assert q["method"] == "POST" and q["url"] == f"{sink.url}/hook" and q["status"] == 200
    assert sink.wait_for(1)[0].json() == {"u": "u1"}


async def test_sample_event_runs(sink: Any) -> None:
    data = await run_test(sink, {})
    assert data["sample"] and data["results"][0]["return"] == {"seen": "Test Event"}
