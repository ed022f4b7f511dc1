"""Intl.DateTimeFormat / Intl.NumberFormat and the toLocale* methods against Node 20: every case of
tests/fixtures/intl.json (made with tests/fixtures/node/make_intl.mjs, TZ=UTC) gives Node's answer
in a real sandbox, except the KNOWN_DIFFERENCES below, where Babel's CLDR data and Node's ICU
disagree: those are asserted to give our documented answer, so a change on either side shows."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from helpers import builtin_fixture
from test_sandbox_helpers import js, run, sandbox

from segfuncd.runner import builtins
from segfuncd.runner.sandbox import Sandbox

FIXTURE = builtin_fixture("intl")
CASES = FIXTURE["cases"]
# Where Babel's CLDR (49) and Node 20's ICU (78.2, CLDR 48) disagree: case id -> {index in the
# case's list: (Node's answer, ours)}. Documented in README ("Intl").
KNOWN_DIFFERENCES: dict[str, dict[int, tuple[Any, Any]]] = {
    # fr `{hour: 'numeric'}`: ICU's French availableFormats "H" is "HH 'h'", Babel's is "HH"
    "fr-FR components": {14: ("03 h", "03")},
    "fr-FR components in New York": {4: ("14 h", "14")},
    # pt: ICU joins a short date and time with "{1}, {0}", Babel's CLDR with "{1} {0}"
    "pt-BR everyday": {0: ("14/07/2023, 18:30:00", "14/07/2023 18:30:00")},
    # ko: ICU's numeric date is "y. M. d." and its day period "PM"; Babel's are "y/M/d" and "오후"
    "ko-KR everyday": {0: ("2023. 7. 14. PM 6:30:00", "2023/7/14 오후 6:30:00")},
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


UNSUPPORTED = [
    ("new Intl.NumberFormat('en-US', {style: 'unit', unit: 'kilometer'})", "unit style"),
    ("(5).toLocaleString('en-US', {notation: 'scientific'})", "scientific notation"),
    ("new Intl.NumberFormat('en-US', {roundingIncrement: 5, maximumFractionDigits: 2})", "roundingIncrement"),
    ("new Intl.NumberFormat('ar-EG', {numberingSystem: 'arab'})", "numberingSystem"),
    ("new Date(0).toLocaleString('ja-JP-u-ca-japanese')", "calendar"),
    ("new Date(0).toLocaleString('en-US', {calendar: 'islamic'})", "calendar"),
    ("new Date(0).toLocaleString('th-TH-u-nu-thai')", "numbering system"),
    ("new Intl.DateTimeFormat('en-US', {dayPeriod: 'short'})", "dayPeriod"),
    ("new Intl.DateTimeFormat('en-US').formatRange(0, 1)", "formatRange"),
    ("new Date(8.64e15).toLocaleString('en-US')", "year"),
]


@pytest.mark.parametrize(("expr", "says"), UNSUPPORTED, ids=[u[1] for u in UNSUPPORTED])
def test_what_is_not_supported_throws_a_range_error_that_says_so(expr: str, says: str) -> None:
    """Never a silently ignored option: a RangeError naming what is unsupported."""
    got = js(f"(() => {{ try {{ return ['no error', {expr}] }} catch (e) {{ return [e.name, e.message] }} }})()")
    assert got[0] == "RangeError" and says in got[1], got


def test_hostile_arguments_fail_inside_the_function() -> None:
    got = js(
        """(() => {
        const out = [];
        const tries = [
          () => new Date(0).toLocaleString({toString() { throw new Error('boom') }}), // no length: no locales
          () => new Date(0).toLocaleString('en-US', {get timeZone() { throw new Error('getter') }}),
          () => new Date(0).toLocaleString(['en-US', 5]),
          () => new Intl.NumberFormat('en-US', {maximumFractionDigits: 'lots'}),
          () => (1).toLocaleString('x'.repeat(5000)),
          () => (1).toLocaleString('en-US', {style: 'currency', currency: '€€€'}),
          () => new Intl.DateTimeFormat('en-US', {timeZone: '../../etc/passwd'}),
        ];
        for (const t of tries) { try { out.push(['ok', t()]) } catch (e) { out.push([e.name, e.message]) } }
        return out;
      })()"""
    )
    assert [g[0] for g in got] == [
        "ok",
        "Error",
        "TypeError",
        "RangeError",
        "RangeError",
        "RangeError",
        "RangeError",
    ]
    assert (
        got[0][1] == "1/1/1970, 12:00:00 AM"
        and got[1][1] == "getter"
        and got[6][1] == "Invalid time zone specified: ../../etc/passwd"
    )


def test_intl_and_form_data_load_only_when_touched(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[Any] = []
    real = builtins.call

    def counting(name: Any, args: list[Any]) -> dict[str, Any]:
        if name == "source":
            asked.append(args[0])
        return real(name, args)

    monkeypatch.setattr(builtins, "call", counting)
    sb = sandbox(
        "async function onTrack(e) {\n"
        "  if (e.use === 'date') return new Date(0).toLocaleDateString('de-DE');\n"
        "  if (e.use === 'number') return (1234.5).toLocaleString('fr-FR');\n"
        "  if (e.use === 'form') { const f = new FormData(); f.append('a', 'b'); return f.getLengthSync() > 0; }\n"
        "  return String(new Date(0).getTime()) + (1.5).toFixed(1);\n}"
    )
    assert run(sb).value == "01.5" and asked == []
    assert run(sb, {"use": "date"}).value == "1.1.1970" and asked == ["intl"]
    assert run(sb, {"use": "number"}).value == "1\u202f234,5" and asked == ["intl"]
    assert run(sb, {"use": "form"}).value is True and asked == ["intl", "formdata"]


def test_extreme_numbers_format_or_fail_cleanly() -> None:
    got = js(
        """(() => [() => (1e308).toLocaleString(), () => (5e-324).toLocaleString('en', {maximumSignificantDigits: 2}),
                   () => (10n ** 400n).toLocaleString().length, () => (1e308).toLocaleString('en', {notation: 'compact'}),
                   () => new Intl.NumberFormat().format('1e99999'), () => (10n ** 6000n).toLocaleString()]
          .map((f) => { try { return f() } catch (e) { return [e.name, e.message] } }))()"""
    )
    assert got[0] == "100" + ",000" * 102 and got[1] == "0." + "0" * 323 + "5" and got[2] == 534
    assert got[3].endswith("T") and got[4] == "∞"
    assert got[5] == ["RangeError", "a number of more than 5000 digits cannot be formatted here"]
