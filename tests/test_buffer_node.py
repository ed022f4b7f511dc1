"""Buffer's number reads/writes, concat, compare, equals, subarray/slice and TextEncoder /
TextDecoder as Node 20's: every case of tests/fixtures/buffer.json (made by Node 20 with
tests/fixtures/node/make_buffer.mjs) gives the same value or error in a real sandbox."""

from __future__ import annotations

import pytest
from helpers import builtin_fixture, fixture_case_plugin
from test_sandbox_helpers import run, sandbox

from segfuncd.runner.sandbox import Sandbox

FIXTURE = builtin_fixture("buffer")
CASES = FIXTURE["cases"]


@pytest.fixture(scope="module")
def buffer_sandbox() -> Sandbox:
    return sandbox(fixture_case_plugin(FIXTURE), cpu_s=5.0, wall_s=10.0)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c["id"] for c in CASES])
def test_matches_node(buffer_sandbox: Sandbox, index: int) -> None:
    r = run(buffer_sandbox, {"i": index})
    assert r.ok, r.value
    assert r.value == CASES[index]["expect"], CASES[index]["code"]
