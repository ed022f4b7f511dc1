"""Running out of memory where user code catches it (issue 10, "limits that hold"), and the
stack format the prelude writes now that its prepareStackTrace hook is always installed."""

from __future__ import annotations

import re

import pytest
from test_sandbox_helpers import prelude_function, raw_eval, run, run_one_slice, sandbox

from segfuncd.runner.sandbox import LoadFailure, Sandbox, install_limit_handlers

# Errors made in as many kinds of frame as a function has: named, anonymous, arrow, method,
# constructor, getter, native callback, bound, async, eval, new Function, parse errors.
STACKS = r"""
function collect() {
  const out = [];
  function named() { return new Error("a").stack; }
  const anon = function () { return named(); };
  out.push(anon());
  out.push([1].map(function () { return new TypeError("b").stack; })[0]);
  out.push((() => { try { null.x } catch (e) { return e.stack } })());
  class K { constructor() { this.s = new Error("c").stack } m() { return new Error("d").stack } get g() { return new Error("e").stack } }
  const k = new K(); out.push(k.s, k.m(), k.g);
  out.push(named.bind(null)());
  out.push(eval("new Error('f').stack"));
  out.push(new Function("return new Error('g').stack")());
  try { JSON.parse("{") } catch (e) { out.push(e.stack) }
  try { eval("(") } catch (e) { out.push(e.stack) }
  try { new RegExp("(") } catch (e) { out.push(e.stack) }
  out.push(String(new Error("h").stack).length > 0 ? "nonempty" : "empty");
  return out;
}
"""


def test_the_prelude_writes_quickjs_own_stack_format() -> None:
    """With no user hook the prelude's nativeStack() must give byte for byte what QuickJS
    writes itself (stacks.py maps these lines to the plugin file's)."""
    # the same lines in both runs: only the line before the call differs
    call = "JSON.stringify(collect())\n" + prelude_function("nativeStack")
    native = raw_eval(STACKS + "Error.prepareStackTrace = undefined;\n" + call)
    ours = raw_eval(STACKS + "Error.prepareStackTrace = (e, sites) => nativeStack(sites, sites.length);\n" + call)
    assert len(native) == 13 and all(isinstance(s, str) and s for s in native)
    assert ours == native


def test_a_user_prepare_stack_trace_still_gets_safe_call_sites() -> None:
    sb = sandbox(
        """async function onTrack() {
        Error.prepareStackTrace = (e, sites) => sites.map(s => typeof s.getFunction() + ":" + s.getFunctionName()).join("|");
        const stack = new Error("x").stack;
        Error.prepareStackTrace = undefined;
        return [stack, typeof Error.prepareStackTrace, new Error("y").stack.split("\\n")[0].trim()];
        }"""
    )
    r = run(sb)
    assert r.ok, r.value
    assert r.value[0].startswith("undefined:onTrack")
    assert r.value[1] == "undefined"
    assert re.fullmatch(r"at onTrack \(.+:5:\d+\)", r.value[2]), r.value[2]


CAUGHT = """
let runs = 0;
async function onTrack(event) {
  runs++;
  if (event.oom) {
    try { const a = []; for (;;) a.push(new Array(1e6).fill(1.5)); } catch (e) { return "caught: " + e.message; }
  }
  return "runs=" + runs;
}
"""


def test_out_of_memory_caught_by_the_function_still_ends_its_invocation() -> None:
    """The invocation fails with MemoryLimitError although its own catch swallowed the
    error, and that slice's answer tells the runner to discard the context (child.py)."""
    sb = sandbox(CAUGHT, cpu_s=10)
    assert run(sb).value == "runs=1"
    answer, done = run_one_slice(sb, {"oom": True})
    assert not done.ok and done.error_name == "MemoryLimitError", done
    assert answer.out_of_memory
    after = sb.run_slice([]).answer
    assert after is not None and not after.out_of_memory  # "m" is about one slice, not for ever


def test_out_of_memory_inside_a_user_prepare_stack_trace_hook_is_seen_too() -> None:
    """QuickJS does not call the hook for an error made inside it and drops what it throws:
    the prelude's wrapper sees the out-of-memory error on its way out."""
    sb = sandbox(
        """async function onTrack(event) {
        Error.prepareStackTrace = (e, sites) => { const a = []; for (;;) a.push(new Array(1e6).fill(1.5)); };
        try { throw new Error("boom"); } catch (e) { return "swallowed"; }
        }""",
        cpu_s=10,
    )
    answer, done = run_one_slice(sb, {})
    assert not done.ok and done.error_name == "MemoryLimitError", done
    assert answer.out_of_memory


def test_top_level_code_that_runs_out_of_memory_fails_the_load() -> None:
    """Caught at the top level, it would leave a context rebuilt after every slice: the load
    fails instead, with a message that says why."""
    install_limit_handlers()
    sb = Sandbox(cpu_s=10, wall_s=20)
    with pytest.raises(LoadFailure, match="MemoryLimitError: the function's top-level code ran out of memory"):
        sb.load(
            "try { const a = []; for (;;) a.push(new Array(1e6).fill(1.5)); } catch (e) {}\n"
            "async function onTrack() { return 1 }",
            "x.js",
        )


def test_a_stack_overflow_still_fails_as_a_range_error_without_a_stack() -> None:
    """The known cost of the always-installed hook: at the stack limit the hook cannot run,
    so QuickJS leaves the RangeError without a stack (before: its frames). The outcome and
    the message are unchanged."""
    r = run(sandbox("async function onTrack() { function f() { return f() } return f() }"))
    assert not r.ok and r.value["name"] == "RangeError"
    assert r.value["message"] == "Maximum call stack size exceeded"
