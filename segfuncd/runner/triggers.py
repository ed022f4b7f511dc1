"""What a runner tells a QuickJS context: the triggers of a slice, as typed records; pure.

The other direction (what a context may answer) is answers.py. A trigger is one of:

    Start    start invocation `inv`: the first of `handlers` the plugin defines gets the
             event and the settings (both JSON text, parsed inside the context)
    Settle   fetch `fetch_id` of invocation `inv` answered (`reply`) or failed (`error`)
    Timer    timer `timer_id` of invocation `inv` is due
    Abandon  forget invocation `inv` (the runner ended it: timeout, limit, reset)

They reach the prelude's dispatcher (prelude/00_core.js `apply`) as JSON objects with the
short keys it reads (`k` names the kind, `i` the invocation, ...); the renames below are
that wire form, so Python code uses the names and the prelude keeps its compact keys.
"""

from __future__ import annotations

import json

import msgspec


class Start(msgspec.Struct, frozen=True, tag_field="k", tag="s"):
    inv: int = msgspec.field(name="i")
    handlers: list[str] = msgspec.field(name="h")
    event_type: str = msgspec.field(name="ty")
    event: str = msgspec.field(name="e")  # JSON text
    settings: str = msgspec.field(name="s")  # JSON text


class FetchAnswer(msgspec.Struct, frozen=True, omit_defaults=True):
    """An HTTP response, as the prelude's `__makeResponse` builds a Response from it."""

    status: int = msgspec.field(name="st")
    reason: str = msgspec.field(name="tx")
    headers: list[list[str]] = msgspec.field(name="h")
    url: str = msgspec.field(name="u")
    text: str = msgspec.field(name="b")  # the body decoded as UTF-8 (what res.text() gives)
    redirected: bool = msgspec.field(name="rd")
    binary: str | None = msgspec.field(default=None, name="bb")  # exact bytes (latin-1) when not UTF-8


class Settle(msgspec.Struct, frozen=True, tag_field="k", tag="f", omit_defaults=True):
    """A fetch's outcome: `reply`, or `error` (absent on the wire when there is none: the
    prelude tests `err !== undefined`) with node-fetch's `code` and FetchError `error_type`."""

    inv: int = msgspec.field(name="i")
    fetch_id: int = msgspec.field(name="f")
    reply: FetchAnswer | None = msgspec.field(default=None, name="r")
    error: str | None = msgspec.field(default=None, name="err")
    code: str | None = None
    error_type: str | None = msgspec.field(default=None, name="ty")


class Timer(msgspec.Struct, frozen=True, tag_field="k", tag="t"):
    inv: int = msgspec.field(name="i")
    timer_id: int = msgspec.field(name="t")


class Abandon(msgspec.Struct, frozen=True, tag_field="k", tag="x"):
    inv: int = msgspec.field(name="i")


Trigger = Start | Settle | Timer | Abandon

_encoder = msgspec.json.Encoder()


def encode_slice(triggers: list[Trigger]) -> bytes:
    """A slice's kwargs, `{"t": [trigger, ...]}`, as UTF-8 JSON (msgspec: ~3x json.dumps here)."""
    try:
        return _encoder.encode({"t": triggers})
    except UnicodeEncodeError:  # a lone surrogate, which JS strings allow: json escapes it
        return json.dumps({"t": msgspec.to_builtins(triggers)}).encode("ascii")
