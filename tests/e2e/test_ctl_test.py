"""`segfuncctl test`: Callback Return and Log Output for success, each error class, a fetch."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import free_port  # type: ignore[import-not-found]

PLUGIN = """
async function onTrack(event, settings) {
  const mode = event.properties && event.properties.mode
  console.log(`mode is ${mode}`)
  if (mode === "ok") return { echoed: event.event }
  if (mode === "ValidationError") throw new ValidationError("Account ID is required")
  if (mode === "InvalidEventPayload") throw new InvalidEventPayload("company is required")
  if (mode === "EventNotSupported") throw new EventNotSupported("not this one")
  if (mode === "RetryError") throw new RetryError("try later")
  if (mode === "TypeError") return event.nothing.here
  if (mode === "Error") throw new Error("plain bug")
  if (mode === "FetchError") return await fetch(settings.closed + "/nobody-home")
  if (mode === "loop") { while (true) {} }
  if (mode === "fetch") {
    const res = await fetch(settings.url + "/hook?x=1", {
      method: "post",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ hello: event.userId }),
    })
    console.log(`sink said ${res.status}`)
    return await res.json()
  }
  return "default"
}

async function onIdentify(event, settings) {
  return { identified: event.traits.email }
}
"""


def track(mode: str) -> str:
    return json.dumps({"type": "track", "event": "Clicked", "userId": "u1", "properties": {"mode": mode}})


@pytest.fixture
def d(daemon: Any, sink: Any) -> Any:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there: a network failure
    config = f'[runtime]\ncpu_ms = 500\ntimeout_ms = 2000\n[functions.fn]\nsettings = {{ url = "{sink.url}", closed = "{closed}" }}\n'
    proc = daemon(config, plugins={"fn": PLUGIN})
    proc.wait_until(lambda: proc.function_status("fn").get("state") == "live", what="fn live")
    return proc


def test_success_prints_callback_return_then_log_output(d: Any) -> None:
    out = d.ctl("test", "fn", "-", input=track("ok"))
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert (
        text.index("Callback Return")
        < text.index('"echoed": "Clicked"')
        < text.index("Log Output")
        < text.index("mode is ok")
    )


@pytest.mark.parametrize(
    "mode, shown",
    [
        ("ValidationError", "ValidationError: Account ID is required"),
        ("InvalidEventPayload", "InvalidEventPayload: company is required"),
        ("EventNotSupported", "EventNotSupported: not this one"),
        ("RetryError", "RetryError: try later"),
        ("TypeError", "TypeError"),
        ("Error", "Error: plain bug"),
        ("FetchError", "FetchError"),
        ("loop", "LimitError"),  # CPULimitError (cpu_ms) or a TimeoutError, whichever trips first
    ],
)
def test_each_error_class_is_the_callback_return_and_exits_1(d: Any, mode: str, shown: str) -> None:
    out = d.ctl("test", "fn", "-", input=track(mode))
    assert out.returncode == 1, out.stdout + out.stderr
    ret = out.stdout.split("Callback Return", 1)[1].split("Log Output", 1)[0]
    if mode == "loop":
        assert "CPULimitError" in ret or "TimeoutError" in ret, ret
    else:
        assert shown in ret
    assert f"mode is {mode}" in out.stdout.split("Log Output", 1)[1]


def test_a_fetch_to_the_sink_is_shown_and_really_made(d: Any, sink: Any, tmp_path: Any) -> None:
    ev = tmp_path / "event.json"
    ev.write_text(track("fetch"))
    out = d.ctl("test", "fn", str(ev))
    assert out.returncode == 0, out.stdout + out.stderr
    (req,) = sink.wait_for(1)
    assert req.method == "POST" and req.path == "/hook?x=1" and req.json() == {"hello": "u1"}
    requests = out.stdout.split("Requests", 1)[1]
    assert f"POST {sink.url}/hook?x=1 -> 200" in requests
    assert '"ok": true' in out.stdout and "sink said 200" in out.stdout


def test_no_event_runs_a_sample_and_nothing_is_queued_or_counted(d: Any) -> None:
    out = d.ctl("test", "fn")
    assert out.returncode == 0 and "sample track event" in out.stdout
    ident = d.ctl("test", "fn", "-", input='{"type": "identify", "userId": "u1", "traits": {"email": "a@b.c"}}')
    assert '"identified": "a@b.c"' in ident.stdout
    f = d.function_status("fn")
    assert f["delivered"] == 0 and f["attempts"] == 0 and f["last_5m"]["count"] == 0
    assert d.status()["queue"]["pending"] == 0


def test_settings_override_and_unknown_function(d: Any, sink: Any, tmp_path: Any) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"url": sink.url + "/other"}))
    out = d.ctl("test", "fn", "-", "--settings", str(settings), input=track("fetch"))
    assert out.returncode == 0 and sink.wait_for(1)[0].path == "/other/hook?x=1"
    missing = d.ctl("test", "nope")
    assert missing.returncode == 2 and missing.stderr.startswith("segfuncctl: ") and "nope" in missing.stderr
    assert "Traceback" not in missing.stderr
