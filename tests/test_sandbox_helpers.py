"""Helpers (no tests): run a handler in an in-process Sandbox (no runner process, no trio),
for the prelude and sandbox tests that need neither fetch nor timers; and a bare dukpy
context (no prelude) to compare the prelude's output with QuickJS's own."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import dukpy._dukpy as _dukpy  # type: ignore[import-untyped]

from segfuncd.runner.sandbox import Sandbox, install_limit_handlers
from segfuncd.runner.triggers import Start

_ids = itertools.count(1)


@dataclass
class Ran:
    ok: bool
    value: Any  # the return value, or {name, message, stack}
    logs: list[list[Any]]


def sandbox(source: str, *, cpu_s: float = 1.0, wall_s: float = 5.0) -> Sandbox:
    install_limit_handlers()
    sb = Sandbox(cpu_s=cpu_s, wall_s=wall_s)
    sb.load(source, "test.js")
    return sb


def run(sb: Sandbox, event: Any = None, settings: Any = None, *, handler: str = "onTrack") -> Ran:
    inv = next(_ids)
    trig = Start(
        inv=inv,
        handlers=[handler],
        event_type="track",
        event=json.dumps(event or {}),
        settings=json.dumps(settings or {}),
    )
    out = sb.run_slice([trig])
    assert out.answer is not None, (out.interrupted, out.violation)
    boxes = list(out.answer.outboxes)
    for _ in range(10):
        if not out.answer.queued:
            break
        out = sb.run_slice([])
        assert out.answer is not None, (out.interrupted, out.violation)
        boxes += out.answer.outboxes
    logs = [[e.inv, e.level, e.message, e.time] for box in boxes for e in box.logs if e.inv == inv]
    for box in boxes:
        for d in box.finished:
            if d.inv == inv:
                payload = {"name": d.error_name, "message": d.error_message, "stack": d.stack}
                return Ran(d.ok, json.loads(d.value or "null") if d.ok else payload, logs)
    raise AssertionError("the invocation did not finish within its slice")


def js(expr: str) -> Any:
    """Evaluate an expression inside a handler and return its value."""
    sb = sandbox(f"async function onTrack(event, settings) {{ return ({expr}) }}")
    r = run(sb)
    assert r.ok, r.value
    return r.value


class _RawHost:
    """A bare dukpy context: no prelude, QuickJS's own stacks."""

    def __init__(self) -> None:
        self._ctx = _dukpy.create_context()

    def _check_exported_function_exists(self, name: bytes) -> bool:
        return False

    def _call_python(self, name: bytes, args: bytes) -> bytes:
        return b"null"


def raw_eval(code: str) -> Any:
    return json.loads(json.loads(_dukpy.eval_string(_RawHost(), code.encode(), b"{}", False, "plugin.js")))


def prelude_function(name: str) -> str:
    text = (files("segfuncd.runner") / "prelude" / "00_core.js").read_text(encoding="utf-8")
    found = re.search(rf"^function {name}\(.*?^}}$", text, re.S | re.M)
    assert found is not None, name
    return found.group(0)


def run_one_slice(sb: Sandbox, event: dict[str, Any]) -> tuple[Any, Any]:
    """One Start of invocation 9001 in one slice: (that slice's answer, its Finished entry)."""
    out = sb.run_slice(
        [Start(inv=9001, handlers=["onTrack"], event_type="track", event=json.dumps(event), settings="{}")]
    )
    assert out.answer is not None, (out.interrupted, out.violation)
    [done] = [d for box in out.answer.outboxes for d in box.finished if d.inv == 9001]
    return out.answer, done
