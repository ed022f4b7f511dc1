"""Stacks mapped to plugin lines, and attempt records: caps, masking and redaction."""

from __future__ import annotations

import json

from segfuncd.attempts import MAX_LOG_LINES, attempt_detail
from segfuncd.outcomes import InvocationResult, LogLine, Outcome, RequestRecord
from segfuncd.redact import redactor_for
from segfuncd.stacks import first_location, located, map_stack

SOURCE = "\n".join(f"// line {i}" for i in range(1, 21))
STACK = (
    "    at helper (<dukpy>:3:1)\n    at <anonymous> (<dukpy>:900:5)\n    at onTrack (<dukpy>:7:17)\n"
    "    at start (<dukpy>:187:56)\n    at apply (<dukpy>:213:32)\n    at <eval> (<dukpy>:1:11)\n"
)


def test_runtime_frames_go_and_plugin_frames_name_the_file() -> None:
    assert map_stack(STACK, filename="t.js", source=SOURCE) == "    at helper (t.js:3:1)\n    at onTrack (t.js:7:17)"
    assert first_location(STACK, filename="t.js", source=SOURCE) == "t.js:3:1"
    assert map_stack("no frames here", filename="t.js", source=SOURCE) == "no frames here"


def test_located_appends_the_location_once() -> None:
    r = InvocationResult(outcome=Outcome.FAILED, error_name="TypeError", error_message="x is undefined", stack=STACK)
    once = located(r, filename="t.js", source=SOURCE)
    assert once.error == "TypeError: x is undefined (at t.js:3:1)"
    assert located(once, filename="t.js", source=SOURCE).error == once.error
    ok = InvocationResult(outcome=Outcome.DELIVERED, value=1)
    assert located(ok, filename="t.js", source=SOURCE) is ok


def test_attempt_record_caps_masks_and_redacts() -> None:
    secret = "sk-unit-secret-123"
    request = RequestRecord(
        method="POST",
        url=f"https://x.example/?k={secret}",
        status=200,
        duration_ms=3.0,
        request_headers=(("Authorization", "Basic abc"), ("X-Trace", secret)),
        request_body=json.dumps({"key": secret}),
        response_headers=(("Set-Cookie", "s=1"),),
        response_body="ok",
    )
    result = InvocationResult(
        outcome=Outcome.DELIVERED,
        value={"big": "v" * 10_000},
        logs=tuple(LogLine(level="log", message=f"line {i}", time=0.0) for i in range(MAX_LOG_LINES + 5)),
        requests=(request,),
        duration_ms=12.0,
        runner=42,
    )
    text = attempt_detail(result, started_at=100.0, redact=redactor_for((secret,)))
    doc = json.loads(text)
    assert secret not in text
    assert doc["runner"] == 42 and doc["started_at"] == 100.0 and doc["outcome"] == "delivered"
    assert len(doc["return"]) < 2100 and doc["return"].endswith("(truncated)")
    assert len(doc["logs"]) == MAX_LOG_LINES and doc["logs_dropped"] == 5
    (q,) = doc["requests"]
    assert dict(q["request_headers"]) == {"Authorization": "[redacted]", "X-Trace": "[redacted]"}
    assert dict(q["response_headers"]) == {"Set-Cookie": "[redacted]"}
    assert json.loads(q["request_body"]) == {"key": "[redacted]"} and q["url"].endswith("k=[redacted]")
