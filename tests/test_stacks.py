"""Stacks mapped to the plugin file's own lines."""

from __future__ import annotations

from segfuncd.outcomes import InvocationResult, Outcome
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
