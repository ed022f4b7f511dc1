"""Redaction through the real daemon (issue 11, item 10): a key holding a space and a `|`,
printed the ways a function does by accident, never reaches last_error, the attempts
table, the log table, the daemon's own log, status or `segfuncctl test` output."""

from __future__ import annotations

import base64
import json
import sqlite3
import urllib.parse
from typing import Any

from conftest import free_port  # type: ignore[import-not-found]

KEY = "sk live|Abc123xyz"
LEAKY = """
async function onTrack(event, settings) {
  const k = settings.apiKey;
  if (event.event === "print") {
    console.log("upper", k.toUpperCase());
    console.log("hex", Buffer.from(k).toString("hex"), Buffer.from(k).toString("hex").toUpperCase());
    console.log("reversed", k.split("").reverse().join(""));
    console.log("basic", btoa("user:" + k), btoa(k + ":"));
    console.log("uri", encodeURIComponent(k), new URLSearchParams({ k: k }).toString());
    console.log("split", k.slice(0, 9), "/", k.slice(9));
    return { leaked: k, upper: k.toUpperCase(), nested: { [k]: btoa("u:" + k) } };
  }
  if (event.event === "fetch") {
    await fetch(settings.url + "/hook?key=" + k);  // a closed port: FetchError quoting the URL
  }
  const e = new Error("boom " + k);
  e.name = k;
  throw e;
}
"""


def forms() -> list[str]:
    raw = KEY.encode()
    return [
        KEY,
        KEY.upper(),
        KEY[::-1],
        raw.hex(),
        raw.hex().upper(),
        urllib.parse.quote(KEY, safe=""),
        "sk%20live|Abc123xyz",  # what `new URL()` makes of it in a query
        "sk+live%7CAbc123xyz",
        base64.b64encode(raw[1:16]).decode(),  # the middle of btoa("user:" + k)
        base64.b64encode(raw + b":").decode(),
        "Abc123xyz",
    ]


def assert_clean(where: str, text: str) -> None:
    for form in forms():
        assert form.lower() not in text.lower(), f"{form!r} leaked into {where}"


def test_no_form_of_a_secret_leaks_anywhere(daemon: Any) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    config = f'[functions.leaky]\nsettings = {{ apiKey = "{KEY}", url = "{closed}" }}\n'
    d = daemon(config, plugins={"leaky": LEAKY})
    d.wait_until(lambda: d.function_status("leaky").get("state") == "live", what="leaky live")
    printed = d.ctl("test", "leaky", "-", input=json.dumps({"type": "track", "event": "print", "userId": "u"}))
    assert printed.returncode == 0, printed.stdout + printed.stderr
    assert "[redacted]" in printed.stdout and "Callback Return" in printed.stdout
    assert_clean("segfuncctl test output", printed.stdout)
    for event in ("fetch", "name", "print"):
        assert d.post("/v1/track", {"userId": "u", "event": event}).status_code == 200
    d.wait_until(lambda: d.function_status("leaky").get("dead", 0) >= 2, what="two dead letters", timeout=30)
    failed = d.ctl("test", "leaky", "-", input=json.dumps({"type": "track", "event": "fetch", "userId": "u"}))
    assert failed.returncode == 1 and "FetchError" in failed.stdout
    assert_clean("segfuncctl test output (fetch)", failed.stdout)
    assert_clean("status", d.ctl("status").stdout + d.ctl("status", "--json").stdout)
    assert_clean("logs", d.ctl("logs", "-n", "500").stdout)
    assert_clean("deliveries", d.ctl("deliveries", "--json").stdout)
    conn = sqlite3.connect(str(d.dir / "var" / "segfuncd.db"))
    try:
        stored = {
            "attempts": conn.execute("SELECT group_concat(coalesce(error, ''), ' ') FROM attempts").fetchone()[0],
            "last_error": conn.execute("SELECT group_concat(coalesce(last_error, ''), ' ') FROM deliveries").fetchone()[
                0
            ],
            "logs": conn.execute("SELECT group_concat(message || fields, ' ') FROM logs").fetchone()[0],
            "stats": conn.execute("SELECT group_concat(coalesce(last_error, ''), ' ') FROM function_stats").fetchone()[
                0
            ],
        }
    finally:
        conn.close()
    assert "[redacted]" in (stored["attempts"] or "")
    for table, text in stored.items():
        assert_clean(f"the {table} table", text or "")
    d.stop()
    assert_clean("the daemon log", d.stderr())
