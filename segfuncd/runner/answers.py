"""What a QuickJS context may say to its runner: typed records, parsed defensively; pure.

A context is an untrusted party (user code runs in it and can patch every prototype), so
its slice answer is parsed here, once, into frozen records, and anything that is not
exactly the expected shape raises `ContextViolation`. The runner then checks the *ids*
(child.py: an answer may only name invocations handed to that same context). Nothing in
here trusts a field's type, size or presence.

The wire form (built by `answer()` in prelude/00_core.js with captured intrinsics, and
returned from the eval as ONE JSON string, so no user `toJSON` can reshape it):

    {"u": [outbox, ...], "q": queued[, "m": 1]}  # m: the context ran out of memory (caught or not)
    outbox = {"s": seq,
              "d": [[inv, 1, value_json] | [inv, 0, name, message, stack|null], ...],
              "f": [[fetch_id, inv, method, url, [[name, value], ...], body|null, binary, follow, timeout_ms], ...],
              "t": [[timer_id, inv, ms], ...],
              "l": [[inv, level, message, unix_s], ...],
              "c": [[inv, ms], ...]}             # wall ms each invocation ran in the slice
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import msgspec

# Caps a context must respect; the prelude enforces them first (failing the invocation),
# these are the runner's own checks, so a subverted prelude cannot go past them.
MAX_ERROR_CHARS = 8 * 1024  # error message and stack, each
MAX_VALUE_CHARS = 64 * 1024  # a return value's JSON (the prelude cuts at 4 KB)
MAX_LOG_BYTES = 4096  # console output per invocation (see LOG_LINE_COST)
LOG_LINE_COST = 16  # every console line costs this on top of its length, empty ones too
MAX_REQUEST_BODY_CHARS = 8 * 1024 * 1024  # one fetch's body
MAX_TIMERS_PER_INVOCATION = 1000  # pending setTimeout callbacks
MAX_FETCHES_PER_INVOCATION = 1000  # fetches in flight
LOG_LEVELS = frozenset({"log", "info", "warn", "error", "debug"})
CUT_MARK = " … [cut at 8 KB]"


class ContextViolation(Exception):
    """A context answered something the runner never asks for: the function broke the wall."""


@dataclass(frozen=True, slots=True)
class Finished:
    inv: int
    ok: bool
    value: str | None  # the return value as JSON text, when ok
    error_name: str = ""
    error_message: str = ""
    stack: str | None = None
    retry_after: float | None = None  # RetryError(msg, {retryAfter}): seconds the function asked for


@dataclass(frozen=True, slots=True)
class FetchRequest:
    fetch_id: int
    inv: int
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: str | None  # text, or latin-1 bytes when binary
    binary: bool
    redirect: str  # node-fetch's `redirect`: "follow", "manual" or "error"
    follow: int  # node-fetch's `follow`: redirects followed at most
    timeout_ms: float


@dataclass(frozen=True, slots=True)
class TimerRequest:
    timer_id: int
    inv: int
    ms: float


@dataclass(frozen=True, slots=True)
class LogEntry:
    inv: int
    level: str
    message: str
    time: float


@dataclass(frozen=True, slots=True)
class Outbox:
    seq: int
    finished: tuple[Finished, ...]
    fetches: tuple[FetchRequest, ...]
    timers: tuple[TimerRequest, ...]
    logs: tuple[LogEntry, ...]
    costs: tuple[tuple[int, float], ...]


@dataclass(frozen=True, slots=True)
class SliceAnswer:
    outboxes: tuple[Outbox, ...]
    queued: int
    out_of_memory: bool = False  # then the runner discards the context


def cut(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """`text`, or its first `limit` characters marked as cut."""
    return text if len(text) <= limit else text[:limit] + CUT_MARK


def _int(v: Any, what: str) -> int:
    if type(v) is not int:
        raise ContextViolation(f"{what}: expected an integer, got {type(v).__name__}")
    return v


def _num(v: Any, what: str) -> float:
    if type(v) is int or type(v) is float:
        return float(v)
    raise ContextViolation(f"{what}: expected a number, got {type(v).__name__}")


def _str(v: Any, what: str) -> str:
    if type(v) is not str:
        raise ContextViolation(f"{what}: expected a string, got {type(v).__name__}")
    return v


def _list(v: Any, what: str) -> list[Any]:
    if type(v) is not list:
        raise ContextViolation(f"{what}: expected a list, got {type(v).__name__}")
    return v


def _decode(text: bytes | str) -> Any:
    """JSON text -> Python values: msgspec (~2x json's speed on a slice answer), except for
    text msgspec refuses, lone UTF-16 surrogates ("\\ud800", which JS strings may hold):
    json.loads takes those as Python does."""
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return json.loads(text)


def parse_answer(raw: bytes | None) -> SliceAnswer:
    """The slice's return value (JSON of a JSON string) -> SliceAnswer, or ContextViolation."""
    if raw is None:
        raise ContextViolation("the slice returned nothing")
    try:
        text = _decode(raw)
    except (ValueError, RecursionError) as exc:
        raise ContextViolation(f"the slice answer is not JSON: {exc}") from None
    return parse_answer_text(_str(text, "answer"))


def parse_answer_text(text: str) -> SliceAnswer:
    """The answer's JSON text itself (as the salvage host call hands it over)."""
    try:
        doc = _decode(text)
    except (ValueError, RecursionError) as exc:
        raise ContextViolation(f"the slice answer is not JSON: {exc}") from None
    if type(doc) is not dict:
        raise ContextViolation("the slice answer is not an object")
    outboxes = tuple(_outbox(o) for o in _list(doc.get("u"), "u"))
    memory = doc.get("m", 0)
    if memory not in (0, 1) or type(memory) is not int:
        raise ContextViolation("m: expected 0 or 1")
    return SliceAnswer(outboxes, _int(doc.get("q"), "q"), out_of_memory=memory == 1)


def _outbox(o: Any) -> Outbox:
    if type(o) is not dict:
        raise ContextViolation("an outbox is not an object")
    return Outbox(
        seq=_int(o.get("s"), "s"),
        finished=tuple(_finished(d) for d in _list(o.get("d"), "d")),
        fetches=tuple(_fetch(f) for f in _list(o.get("f"), "f")),
        timers=tuple(_timer(t) for t in _list(o.get("t"), "t")),
        logs=tuple(_log(x) for x in _list(o.get("l"), "l")),
        costs=tuple((_int(c[0], "c.inv"), _num(c[1], "c.ms")) for c in map(_pair, _list(o.get("c"), "c"))),
    )


def _pair(v: Any) -> list[Any]:
    if type(v) is not list or len(v) != 2:
        raise ContextViolation("c: expected [inv, ms]")
    return v


def _finished(d: Any) -> Finished:
    # the hot path (one per event): a returned value, checked inline
    if type(d) is list and len(d) == 3 and d[1] == 1 and type(d[0]) is int and type(d[2]) is str:
        value: str = d[2]
        return Finished(d[0], True, value if len(value) <= MAX_VALUE_CHARS else value[:MAX_VALUE_CHARS])
    d = _list(d, "d")
    if len(d) == 3 and d[1] == 1:
        return Finished(_int(d[0], "d.inv"), True, _str(d[2], "d.value")[:MAX_VALUE_CHARS])
    if len(d) in (5, 6) and d[1] == 0:
        stack = None if d[4] is None else cut(_str(d[4], "d.stack"))
        name = _str(d[2], "d.name")[:200] or "Error"
        after = _num(d[5], "d.retry_after") if len(d) == 6 else None
        return Finished(_int(d[0], "d.inv"), False, None, name, cut(_str(d[3], "d.message")), stack, after)
    raise ContextViolation("d: expected [inv, 1, value] or [inv, 0, name, message, stack, retry_after?]")


def _fetch(f: Any) -> FetchRequest:
    f = _list(f, "f")
    if len(f) != 9:
        raise ContextViolation("f: expected 9 fields")
    headers: list[tuple[str, str]] = []
    for h in _list(f[4], "f.headers"):
        if type(h) is not list or len(h) != 2 or type(h[0]) is not str or type(h[1]) is not str:
            raise ContextViolation("f.headers: expected [name, value] strings")
        headers.append((h[0], h[1]))
    body = None if f[5] is None else _str(f[5], "f.body")
    if body is not None and len(body) > MAX_REQUEST_BODY_CHARS:
        raise ContextViolation(f"f.body: {len(body)} characters, over the {MAX_REQUEST_BODY_CHARS} limit")
    follow = _int(f[7], "f.follow")  # n >= 0: follow up to n redirects; -1 manual, other negatives error
    return FetchRequest(
        fetch_id=_int(f[0], "f.id"),
        inv=_int(f[1], "f.inv"),
        method=_str(f[2], "f.method"),
        url=_str(f[3], "f.url"),
        headers=tuple(headers),
        body=body,
        binary=bool(_int(f[6], "f.binary")),
        redirect=("manual" if follow == -1 else "error") if follow < 0 else "follow",
        follow=max(0, follow),
        timeout_ms=_num(f[8], "f.timeout"),
    )


def _timer(t: Any) -> TimerRequest:
    t = _list(t, "t")
    if len(t) != 3:
        raise ContextViolation("t: expected [timer, inv, ms]")
    return TimerRequest(_int(t[0], "t.id"), _int(t[1], "t.inv"), max(0.0, _num(t[2], "t.ms")))


def _log(x: Any) -> LogEntry:
    x = _list(x, "l")
    if len(x) != 4 or x[1] not in LOG_LEVELS:
        raise ContextViolation("l: expected [inv, level, message, time]")
    return LogEntry(_int(x[0], "l.inv"), x[1], _str(x[2], "l.message"), _num(x[3], "l.time"))
