"""The sandbox: every hole dukpy's stock interpreter has is closed, limits interrupt JS."""

from __future__ import annotations

import json
import os

import pytest
from test_sandbox_helpers import js, run, sandbox

from segfuncd.runner.sandbox import LoadFailure, Sandbox, _Host, _host_call, install_limit_handlers
from segfuncd.runner.triggers import Start

EXPECTED_NONSTANDARD_GLOBALS = {
    "fetch",
    "Request",
    "Response",
    "Headers",
    "URL",
    "URLSearchParams",
    "atob",
    "btoa",
    "console",
    "crypto",
    "jsonwebtoken",
    "AWS",
    "FormData",
    "Buffer",
    "setTimeout",
    "clearTimeout",
    "setInterval",
    "clearInterval",
    "TextEncoder",
    "TextDecoder",
    "window",
    "cache",
    "FetchError",
    "EventNotSupported",
    "InvalidEventPayload",
    "ValidationError",
    "RetryError",
    "_",
    "__segfuncd",
    "performance",
    "call_python",
    "dukpy",  # trapped accessors that always read as undefined
    "onTrack",
}


def test_bridge_globals_read_as_undefined() -> None:
    assert js("[typeof call_python, typeof dukpy, typeof globalThis.call_python]") == ["undefined"] * 3


def test_bridge_cannot_be_stolen_with_a_setter_trap() -> None:
    """dukpy re-installs call_python on every eval; a user setter must never see it."""
    sb = sandbox("""
        var stolen = [];
        try { Object.defineProperty(globalThis, 'call_python', {set(v) { stolen.push(v) }}) } catch (e) {}
        try { Object.defineProperty(globalThis, 'dukpy', {set(v) { stolen.push(v) }}) } catch (e) {}
        async function onTrack() { return [stolen.length, typeof call_python, typeof dukpy] }
    """)
    run(sb)
    assert run(sb).value == [0, "undefined", "undefined"]


def test_no_file_read_through_dukpy_load_module() -> None:
    r = run(sandbox("async function onTrack() { return call_python('dukpy.load_module', '/etc/passwd') }"))
    assert not r.ok and r.value["name"] == "TypeError"


def test_no_require_module_or_process() -> None:
    assert js("[typeof require, typeof module, typeof exports, typeof process, typeof global]") == ["undefined"] * 5


def test_no_environment_reachable(monkeypatch: pytest.MonkeyPatch) -> None:
    marker = "segfuncd-secret-marker-42"
    monkeypatch.setenv("HTTPS_PROXY", f"http://{marker}:3128")
    monkeypatch.setenv("SEGFUNCD_TEST_SECRET", marker)
    sb = sandbox("""
        async function onTrack() {
          const seen = [];
          for (const k of Object.getOwnPropertyNames(globalThis)) {
            try { seen.push(k + '=' + JSON.stringify(globalThis[k])) } catch (e) {}
          }
          return seen.join('\\n')
        }
    """)
    assert marker not in run(sb).value


def test_only_documented_globals_exist() -> None:
    """No Python object or host function leaks in: the global object is an allow-list."""
    names = set(js("Object.getOwnPropertyNames(globalThis)"))
    standard = set(
        js(
            "Object.getOwnPropertyNames(globalThis).filter(n => /^[A-Z]/.test(n) && typeof globalThis[n] === 'function' && /\\[native code\\]/.test(String(globalThis[n])))"
        )
    )
    lower_std = {
        "globalThis",
        "parseInt",
        "parseFloat",
        "isNaN",
        "isFinite",
        "decodeURI",
        "decodeURIComponent",
        "encodeURI",
        "encodeURIComponent",
        "escape",
        "unescape",
        "Infinity",
        "NaN",
        "undefined",
        "eval",
        "queueMicrotask",
        "Math",
        "JSON",
        "Reflect",
        "Atomics",
        "Intl",
        "WebAssembly",
    }
    extra = names - standard - lower_std - EXPECTED_NONSTANDARD_GLOBALS
    assert extra == set()


def test_stolen_native_without_token_does_nothing() -> None:
    host = _Host("the-token")
    assert host._call_python(b"h", json.dumps(["wrong", "uuid"]).encode()) == b"null"
    assert host._call_python(b"dukpy.load_module", json.dumps(["the-token", "/etc/passwd"]).encode()) == b"null"
    assert json.loads(host._call_python(b"h", json.dumps(["the-token", "uuid"]).encode()))


@pytest.mark.parametrize(
    "args",
    [
        b"",
        b"not json",
        b"{}",
        b"[1,2]",
        b'["the-token", "hash", "nope", "x"]',
        b'["the-token", "hash", "sha1", 5]',
        b'["the-token", "random", 1e9]',
        b'["the-token", "hmac", "md5", null, null]',
        b'["the-token"]',
    ],
)
def test_every_host_function_is_safe_with_any_arguments(args: bytes) -> None:
    assert _Host("the-token")._call_python(b"h", args) == b"null"


def test_host_call_allow_list_refuses_unknown_names() -> None:
    assert _host_call("open", ["/etc/passwd"]) is None
    assert _host_call("__import__", ["os"]) is None


def test_cpu_limit_interrupts_a_runaway_loop() -> None:
    sb = sandbox("async function onTrack(e) { if (e.spin) while (true) {} return 'fine' }", cpu_s=0.2)
    out = sb.run_slice([Start(inv=1, handlers=["onTrack"], event_type="track", event='{"spin": true}', settings="{}")])
    assert out.interrupted == "CPULimitError" and out.answer is None


def test_memory_bomb_ends_in_memory_limit_error_and_context_survives() -> None:
    sb = sandbox(
        """async function onTrack(e) {
        if (e.bomb) { const a = []; while (true) a.push(new Array(1e6).fill(1.5)) }
        return 'fine' }""",
        cpu_s=10,
    )
    r = run(sb, {"bomb": True})
    assert not r.ok and r.value["name"] == "MemoryLimitError"
    assert run(sb).value == "fine"


def test_syntax_error_reports_line() -> None:
    install_limit_handlers()
    with pytest.raises(LoadFailure) as exc:
        Sandbox().load("var a = 1\nfunction onTrack() {\n  return (\n}\n", "x.js")
    assert exc.value.line == 4 and "SyntaxError" in exc.value.message


def test_top_level_throw_reports_line() -> None:
    install_limit_handlers()
    with pytest.raises(LoadFailure) as exc:
        Sandbox().load("function onTrack() {}\n\nthrow new TypeError('at load')\n", "x.js")
    assert exc.value.line == 3 and exc.value.message == "TypeError: at load"


def test_file_without_handler_is_a_load_error() -> None:
    install_limit_handlers()
    with pytest.raises(LoadFailure, match="no handler"):
        Sandbox().load("function helper() {}\nvar x = 1\n", "x.js")


def test_top_level_lexical_handlers_are_found() -> None:
    install_limit_handlers()
    assert Sandbox().load("const onTrack = async () => 1\nlet identify = async () => 2\n", "x.js") == (
        "onTrack",
        "identify",
    )


def test_proxy_variables_not_in_sandbox_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    assert "HTTP_PROXY" in os.environ
    assert (
        js(
            "typeof process === 'undefined' && !JSON.stringify(Object.getOwnPropertyNames(globalThis)).includes('PROXY')"
        )
        is True
    )


def test_a_limit_that_lands_inside_a_host_call_still_stops_the_eval() -> None:
    """dukpy would hand a raise inside a host call to JS as a catchable error: the limit
    must hold anyway (issue 10 item 2)."""
    sb = sandbox(
        """async function onTrack() {
          const big = "x".repeat(4 * 1024 * 1024);
          for (;;) { try { const h = crypto.createHash("sha256"); h._parts = [big]; h.digest("hex"); } catch (e) {} }
        }""",
        cpu_s=0.2,
    )
    out = sb.run_slice([Start(inv=1, handlers=["onTrack"], event_type="track", event="{}", settings="{}")], cpu_s=0.2)
    assert out.interrupted == "CPULimitError" and out.answer is None


def test_stack_trace_call_sites_hand_out_no_functions() -> None:
    got = js(
        """(() => {
          Error.prepareStackTrace = (e, sites) => sites.map((s) => [typeof s.getFunction(), typeof s.getThis()]);
          const frames = [1].map(function cb() { return new Error().stack; })[0];
          Error.prepareStackTrace = undefined;
          return frames;
        })()"""
    )
    assert got and all(frame == ["undefined", "undefined"] for frame in got)


def test_what_the_slice_logged_before_a_limit_is_salvaged() -> None:
    sb = sandbox("async function onTrack() { console.log('before'); for (;;) {} }", cpu_s=0.2)
    out = sb.run_slice([Start(inv=7, handlers=["onTrack"], event_type="track", event="{}", settings="{}")], cpu_s=0.2)
    assert out.interrupted == "CPULimitError"
    assert [(line.inv, line.message) for line in out.logs] == [(7, "before")]
