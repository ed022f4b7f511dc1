"""answers.py: what a context may answer, parsed defensively; pure, no runner."""

from __future__ import annotations

import json
from typing import Any

import pytest

from segfuncd.runner.answers import (
    CUT_MARK,
    MAX_REQUEST_BODY_CHARS,
    ContextViolation,
    FetchRequest,
    Finished,
    LogEntry,
    TimerRequest,
    cut,
    parse_answer,
)


def wire(doc: Any) -> bytes:
    """What dukpy returns for a slice: the JSON of the answer's JSON text."""
    return json.dumps(json.dumps(doc)).encode()


def box(**lists: Any) -> dict[str, Any]:
    return {"s": 1, "d": [], "f": [], "t": [], "l": [], "c": [], **lists}


def test_a_well_formed_answer_becomes_typed_records() -> None:
    doc = {
        "u": [
            box(
                d=[[1, 1, '{"a":1}'], [2, 0, "TypeError", "bad", None]],
                f=[[7, 3, "POST", "http://x/", [["a", "b"]], "body", 0, 1, 0]],
                t=[[9, 3, 5]],
                l=[[3, "log", "hi", 1.5]],
                c=[[3, 2.5]],
            )
        ],
        "q": 2,
    }
    got = parse_answer(wire(doc))
    assert got.queued == 2
    [o] = got.outboxes
    assert o.finished == (Finished(1, True, '{"a":1}'), Finished(2, False, None, "TypeError", "bad", None))
    assert o.fetches == (FetchRequest(7, 3, "POST", "http://x/", (("a", "b"),), "body", False, "follow", 1, 0.0),)
    assert o.timers == (TimerRequest(9, 3, 5.0),)
    assert o.logs == (LogEntry(3, "log", "hi", 1.5),)
    assert o.costs == ((3, 2.5),)


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"",
        b"{}",  # an object, not the answer's text (a user toJSON reshaped it)
        json.dumps('{"u": [], "q": 0').encode(),  # truncated JSON
        wire([]),
        wire({"u": {}, "q": 0}),
        wire({"u": [], "q": "0"}),
        wire({"u": [], "q": True}),
        wire({"u": [box(s="x")], "q": 0}),
        wire({"u": [box(d=[[1, 1]])], "q": 0}),
        wire({"u": [box(d=[["1", 1, "null"]])], "q": 0}),
        wire({"u": [box(d=[[1, 0, "E", 5, None]])], "q": 0}),
        wire({"u": [box(f=[[1, 2, "GET", "u", [["a"]], None, 0, 1, 0]])], "q": 0}),
        wire({"u": [box(f=[[1, 2, "GET", "u", [], None, 0, 1]])], "q": 0}),
        wire({"u": [box(t=[[1, 2, "soon"]])], "q": 0}),
        wire({"u": [box(l=[[1, "shout", "x", 0]])], "q": 0}),
        wire({"u": [box(c=[[1]])], "q": 0}),
        wire({"u": [{"s": 1}], "q": 0}),
        wire({"u": [], "q": 0, "m": True}),
        wire({"u": [], "q": 0, "m": 2}),
    ],
)
def test_anything_else_is_a_violation(raw: bytes | None) -> None:
    with pytest.raises(ContextViolation):
        parse_answer(raw)


def test_out_of_memory_is_said_with_m() -> None:
    assert parse_answer(wire({"u": [], "q": 0, "m": 1})).out_of_memory
    assert not parse_answer(wire({"u": [], "q": 0})).out_of_memory


def test_an_oversized_request_body_is_a_violation() -> None:
    body = "x" * (MAX_REQUEST_BODY_CHARS + 1)
    with pytest.raises(ContextViolation, match="limit"):
        parse_answer(wire({"u": [box(f=[[1, 2, "POST", "u", [], body, 0, 1, 0]])], "q": 0}))


def test_error_text_is_cut_and_marked() -> None:
    long = "E" * 20_000
    [o] = parse_answer(wire({"u": [box(d=[[1, 0, "Error", long, long]])], "q": 0})).outboxes
    [d] = o.finished
    assert d.error_message == "E" * 8192 + CUT_MARK and d.stack == "E" * 8192 + CUT_MARK
    assert cut("short") == "short"
