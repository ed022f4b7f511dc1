"""lodash's prototype-pollution guards, as 4.17.21 has them: every case of
tests/fixtures/lodash.json (made by Node 20 with lodash 4.17.21, tests/fixtures/node/
make_lodash.mjs) — hostile paths and sources for _.set, _.setWith, _.update, _.merge,
_.mergeWith, _.defaultsDeep, _.zipObjectDeep, and ordinary uses — gives the same value, and
afterwards no object, Object or Function sees a polluted property."""

from __future__ import annotations

import pytest
from helpers import builtin_fixture, fixture_case_plugin
from test_sandbox_helpers import js, run, sandbox

from segfuncd.runner.lodash_guards import LODASH_VERSION, LodashMismatch, guarded
from segfuncd.runner.sandbox import Sandbox, lodash_path

FIXTURE = builtin_fixture("lodash")
CASES = FIXTURE["cases"]
CLEAN = [{"undefined": True}] * 5


@pytest.fixture(scope="module")
def lodash_sandbox() -> Sandbox:
    checked = {**FIXTURE, "cases": [{**c, "code": f"[({c['code']}), {FIXTURE['check']}]"} for c in CASES]}
    return sandbox(fixture_case_plugin(checked), cpu_s=5.0, wall_s=10.0)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c["id"] for c in CASES])
def test_matches_lodash_4_17_21(lodash_sandbox: Sandbox, index: int) -> None:
    case = CASES[index]
    assert case["expect"][1] == CLEAN  # 4.17.21 itself is not polluted
    r = run(lodash_sandbox, {"i": index})
    assert r.ok, r.value
    assert r.value == case["expect"], case["code"]


def test_every_attack_in_one_context_leaves_the_prototypes_clean() -> None:
    attacks = [c["code"] for c in CASES if "ordinary" not in c["id"]]
    body = "; ".join(f"try {{ {code} }} catch (e) {{}}" for code in attacks)
    check = FIXTURE["check"]
    r = run(sandbox(f"async function onTrack() {{ {body}; return {check}.map(v => v === undefined) }}"))
    assert r.ok and r.value == [True] * 5, r.value


def test_lodash_version_is_named() -> None:
    assert js("_.VERSION") == "4.17.4"
    assert LODASH_VERSION.startswith("4.17.4") and "4.17.21" in LODASH_VERSION


def test_another_lodash_text_is_refused_not_run_unguarded() -> None:
    text = lodash_path().read_text("utf-8")
    with pytest.raises(LodashMismatch, match="not the 4.17.4 build"):
        guarded(text.replace("var c=$e(t[u]),a=r;", "var c=$e(t[u]), a=r;"))
    with pytest.raises(LodashMismatch):
        guarded(guarded(text))
