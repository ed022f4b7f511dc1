"""Attempt records: what one invocation did, kept with its attempt row for `deliveries show`.

One record per attempt, stored as a JSON document beside the attempt (store column
`attempts.detail`) and shown like the Functions editor's debugger: Callback Return, Log
Output, Requests. Pure: a result in, JSON text out.

Rules:
* Everything is capped here, so one attempt costs at most ~64 KB whatever the function
  did: the return value (MAX_VALUE_CHARS of its JSON), MAX_LOG_LINES console lines of
  MAX_LOG_CHARS, MAX_REQUESTS requests with bodies and header values capped by the runner
  (runner/child.py CAPTURE_CHARS). The store bounds the records per function
  (store/attempt_details.py).
* Nothing secret is stored: the values of credential-like headers (Authorization,
  Cookie, API-key headers) are replaced whatever they hold, and the whole document goes
  through the function's redactor (its apiKey, secret_settings and secret references).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgspec

from .outcomes import InvocationResult, RequestRecord
from .surrogates import scrub

MAX_VALUE_CHARS = 2048
MAX_LOG_LINES = 50
MAX_LOG_CHARS = 1000
MAX_REQUESTS = 20
MAX_STACK_CHARS = 2048
REDACTED = "[redacted]"
TRUNCATED = "…(truncated)"
SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "apikey",
        "x-auth-token",
        "x-access-token",
    }
)

_encoder = msgspec.json.Encoder(enc_hook=str)  # ~4x cheaper than json.dumps for a record (hot path)


def _encode(value: Any) -> str:
    try:
        return _encoder.encode(value).decode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from JS: stored as U+FFFD
        return _encoder.encode(scrub(msgspec.to_builtins(value, enc_hook=str))).decode("utf-8")


def _cap(text: str | None, n: int) -> str | None:
    if text is None or len(text) <= n:
        return text
    return text[:n] + TRUNCATED


def _headers(pairs: tuple[tuple[str, str], ...]) -> list[list[str]]:
    return [[k, REDACTED if k.lower() in SENSITIVE_HEADERS else v] for k, v in pairs]


def _request(q: RequestRecord) -> dict[str, Any]:
    return {
        "method": q.method,
        "url": q.url,
        "status": q.status,
        "duration_ms": round(q.duration_ms, 1),
        "error": q.error,
        "request_headers": _headers(q.request_headers),
        "request_body": q.request_body,
        "response_headers": _headers(q.response_headers),
        "response_body": q.response_body,
    }


def attempt_detail(
    result: InvocationResult,
    *,
    started_at: float,
    redact: Callable[[str], str] | None = None,
    map_stack: Callable[[str], str] | None = None,
) -> str:
    """The attempt record of `result` as JSON text (capped and redacted)."""
    error = None
    if result.error_name is not None:
        stack = result.stack
        if stack and map_stack is not None:
            stack = map_stack(stack)
        error = {"name": result.error_name, "message": result.error_message, "stack": _cap(stack, MAX_STACK_CHARS)}
    value = None if result.error_name is not None else _cap(_encode(result.value), MAX_VALUE_CHARS)
    doc = {
        "started_at": started_at,
        "duration_ms": round(result.duration_ms, 1),
        "runner": result.runner,
        "outcome": result.outcome.value,
        "error": error,
        "return": value,
        "logs": [
            {"level": line.level, "message": _cap(line.message, MAX_LOG_CHARS), "time": line.time}
            for line in result.logs[:MAX_LOG_LINES]
        ],
        "logs_dropped": max(0, len(result.logs) - MAX_LOG_LINES),
        "requests": [_request(q) for q in result.requests[:MAX_REQUESTS]],
        "requests_dropped": max(0, len(result.requests) - MAX_REQUESTS),
    }
    text = _encode(doc)
    if redact is None:
        return text
    clean = redact(text)
    if clean is not text and clean != text:
        try:
            msgspec.json.decode(clean)
        except msgspec.DecodeError:  # a secret that spelled JSON syntax: keep the outline only
            return _encode({"started_at": started_at, "outcome": result.outcome.value, "redaction_failed": True})
    return clean


def parse_detail(text: str | None) -> dict[str, Any] | None:
    """A stored record back to a dict (None when there is none or it is unreadable)."""
    if not text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
