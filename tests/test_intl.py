"""Intl.DateTimeFormat / Intl.NumberFormat and the toLocale* methods against Node 20: every case of
tests/fixtures/intl.json (made with tests/fixtures/node/make_intl.mjs, TZ=UTC) gives Node's answer
in a real sandbox, except the KNOWN_DIFFERENCES below, where Babel's CLDR data and Node's ICU
disagree: those are asserted to give our documented answer, so a change on either side shows."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from helpers import builtin_fixture
from test_sandbox_helpers import run, sandbox

from segfuncd.runner.sandbox import Sandbox

FIXTURE = builtin_fixture("intl")
CASES = FIXTURE["cases"]
# Where Babel's CLDR (49) and Node 20's ICU (78.2, CLDR 48) disagree: case id -> {index in the
# case's list: (Node's answer, ours)}. Documented in README ("Intl").
KNOWN_DIFFERENCES: dict[str, dict[int, tuple[Any, Any]]] = {
    # fr `{hour: 'numeric'}`: ICU's French availableFormats "H" is "HH 'h'", Babel's is "HH"
    "fr-FR components": {14: ("03 h", "03")},
    "fr-FR components in New York": {4: ("14 h", "14")},
}


def _plugin() -> str:
    bodies = ",\n".join(f"() => ({c['code']})" for c in CASES)
    return (
        f"{FIXTURE['pre']}\nconst CASES = [\n{bodies}\n];\n"
        "async function onTrack(event) {\n"
        "  try { return norm(CASES[event.i]()); } catch (e) { return norm(e); }\n}\n"
    )


@pytest.fixture(scope="module")
def intl_sandbox() -> Sandbox:
    return sandbox(_plugin(), cpu_s=5.0, wall_s=10.0)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c["id"] for c in CASES])
def test_matches_node(intl_sandbox: Sandbox, index: int) -> None:
    case = CASES[index]
    r = run(intl_sandbox, {"i": index})
    assert r.ok, r.value
    expect = copy.deepcopy(case["expect"])
    for i, (node, ours) in KNOWN_DIFFERENCES.get(case["id"], {}).items():
        assert expect[i] == node, "the fixture changed: revisit KNOWN_DIFFERENCES"
        expect[i] = ours
    assert r.value == expect, case["code"]
