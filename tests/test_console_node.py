"""`console` as Node 20's: every case of tests/fixtures/console.json (made by Node 20 with
tests/fixtures/node/make_console.mjs) prints the same lines, on the same stream, in a real
sandbox; plus what the fixture cannot hold (warnings, per-invocation state, hostile values)."""

from __future__ import annotations

import pytest
from helpers import CONSOLE_STREAMS, builtin_fixture, console_case_plugin, console_normalized
from test_sandbox_helpers import run, sandbox

from segfuncd.runner.sandbox import Sandbox

CASES = builtin_fixture("console")["cases"]


@pytest.fixture(scope="module")
def console_sandbox() -> Sandbox:
    return sandbox(console_case_plugin(CASES), cpu_s=5.0, wall_s=10.0)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c["id"] for c in CASES])
def test_prints_what_node_prints(console_sandbox: Sandbox, index: int) -> None:
    case = CASES[index]
    r = run(console_sandbox, {"i": index})
    assert r.ok, r.value
    got = [[CONSOLE_STREAMS[level], text] for _, level, text, _ in r.logs]
    flags = {"first_line": bool(case.get("firstLine")), "durations": bool(case.get("durations"))}
    assert console_normalized(got, **flags) == console_normalized(case["expect"], **flags), case["code"]
