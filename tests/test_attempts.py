"""Attempt records: caps, masking of credential headers, redaction, and the per-function bound."""

from __future__ import annotations

import json

from segfuncd.attempts import MAX_LOG_LINES, attempt_detail
from segfuncd.outcomes import InvocationResult, LogLine, Outcome, RequestRecord
from segfuncd.redact import redactor_for


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


def test_attempt_records_are_bounded_per_function(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from segfuncd.store.attempt_details import trim
    from segfuncd.store.schema import migrate

    path = tmp_path / "t.db"
    migrate(path)
    conn = sqlite3.connect(str(path), isolation_level=None)
    for i, fn in enumerate(["a"] * 5 + ["b"] * 2, start=1):
        conn.execute(
            "INSERT INTO deliveries (id, event_id, function, state, created_at, updated_at) "
            "VALUES (?, ?, ?, 'delivered', 0, 0)",
            (i, i, fn),
        )
        conn.execute(
            "INSERT INTO attempts (delivery_id, number, at, outcome, detail) VALUES (?, 1, 0, 'delivered', '{}')", (i,)
        )
    conn.execute("INSERT INTO function_stats (function) VALUES ('a'), ('b')")
    assert trim(conn, 0.0, keep=3) == 2
    kept = conn.execute(
        "SELECT d.function, a.delivery_id FROM attempts a JOIN deliveries d ON d.id = a.delivery_id "
        "WHERE a.detail IS NOT NULL ORDER BY a.delivery_id"
    ).fetchall()
    assert kept == [("a", 3), ("a", 4), ("a", 5), ("b", 6), ("b", 7)]
    assert conn.execute("SELECT count(*) FROM attempts").fetchone() == (7,)  # rows stay, records go
