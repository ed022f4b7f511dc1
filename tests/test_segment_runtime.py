"""What Segment's own wrapper does around a function, and Node's timers/console beyond the
fixtures: sloppy mode whatever the file starts with, `window`, the default handler's words,
unknown event types, setInterval under the timer cap, console state per invocation and
console output from hostile values."""

from __future__ import annotations

import re

import pytest
import trio
from helpers import SINK_ALLOW
from test_sandbox_helpers import js, run, sandbox

from segfuncd.outcomes import Outcome
from segfuncd.runner import PluginVersion, open_runner_pool
from segfuncd.runner.sandbox import LoadFailure, sloppy
from segfuncd.runner.triggers import Start


@pytest.mark.parametrize(
    "top",
    ["'use strict';\n", '"use strict"\n', "// a comment first\n'use strict';\n", "\ufeff'use strict';\n"],
    ids=["single", "double-no-semicolon", "after-comment", "after-bom"],
)
def test_use_strict_on_top_leaves_the_file_sloppy(top: str) -> None:
    """Segment's wrapper puts the file inside its own code: an undeclared assignment (a real
    SendGrid function does one) works, `this` in a plain call is the global object."""
    sb = sandbox(
        top + "async function onTrack(event) {\n  leaked = event.n;\n"
        "  return [leaked, typeof globalThis.leaked, (function () { return this === globalThis })()]\n}\n"
    )
    r = run(sb, {"n": 7})
    assert r.ok, r.value
    assert r.value == [7, "number", True]


def test_a_function_may_still_be_strict_by_itself() -> None:
    r = run(sandbox("async function onTrack() { 'use strict'; undeclared = 1 }"))
    assert not r.ok and r.value["name"] == "ReferenceError"


def test_line_numbers_survive_the_sloppy_prefix() -> None:
    with pytest.raises(LoadFailure) as err:
        sandbox("'use strict';\n\nthrow new Error('top level on line 3');\nasync function onTrack() {}\n")
    assert err.value.line == 3
    r = run(sandbox("'use strict';\nasync function onTrack() {\n  null.x;\n}\n"))
    assert not r.ok and "<dukpy>:3:" in r.value["stack"]


def test_sloppy_keeps_a_hashbang_first() -> None:
    assert sloppy("#!/usr/bin/env node\n'use strict'\n") == "#!/usr/bin/env node\n;'use strict'\n"
    assert sloppy("'use strict'") == ";'use strict'"


def test_window_is_the_global_object() -> None:
    assert js("[window === globalThis, window.window === window, typeof window.fetch, window.Buffer === Buffer]") == [
        True,
        True,
        "function",
        True,
    ]
    r = run(sandbox("var window = {mine: true}; async function onTrack() { return window.mine }"))
    assert r.ok and r.value is True


def _trigger(ty: str, handlers: list[str], inv: int = 1) -> Start:
    return Start(inv=inv, handlers=handlers, event_type=ty, event="{}", settings="{}")


def test_default_handler_message_and_unknown_types_in_the_sandbox() -> None:
    sb = sandbox("async function onIdentify() { return 'identified' }")
    out = sb.run_slice([_trigger("track", ["onTrack", "track"]), _trigger("bogus", [], inv=2)])
    assert out.answer is not None
    done = {d.inv: d for box in out.answer.outboxes for d in box.finished}
    assert (done[1].ok, done[1].error_name, done[1].error_message) == (
        False,
        "EventNotSupported",
        "track not supported",
    )
    assert (done[2].ok, done[2].value) == (True, "null")


INTERVAL = """
async function onTrack(event) {
  const ticks = [];
  await new Promise((resolve) => {
    const id = setInterval((tag) => { ticks.push(tag); if (ticks.length === event.properties.n) { clearInterval(id); resolve(); } }, 5, 'tick');
  });
  let other = 0;
  const t = setInterval(() => { other++; }, 1);
  await new Promise((resolve) => setTimeout(resolve, 30));
  clearTimeout(t); // clearTimeout stops an interval too, as in Node
  const frozen = other;
  await new Promise((resolve) => setTimeout(resolve, 20));
  if (event.properties.flood) { for (let i = 0; i < 2000; i++) setInterval(() => {}, 1e9); }
  if (event.properties.leak) { setInterval(() => console.log('still alive'), 1); }
  return { ticks, stopped: other === frozen, ran: frozen > 0 };
}
"""


async def test_set_interval_repeats_stops_and_counts_against_the_timer_cap() -> None:
    v = PluginVersion.from_source("interval", INTERVAL, path="plugins/interval.js")
    events = [
        {"type": "track", "event": "T", "properties": p, "messageId": f"m{i}"}
        for i, p in enumerate([{"n": 3}, {"n": 2, "flood": True}, {"n": 1, "leak": True}])
    ]
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        ok, flood, leak = await pool.invoke(v, events, {})
        await trio.sleep(0.1)  # the leaked interval would log here, after its invocation ended
        [again] = await pool.invoke(v, [events[0]], {})
    assert ok.outcome is Outcome.DELIVERED, ok.error_message
    assert ok.value == {"ticks": ["tick"] * 3, "stopped": True, "ran": True}
    assert (flood.outcome, flood.error_name) == (Outcome.FAILED, "ResourceLimitError")
    assert "1000 pending setTimeout" in (flood.error_message or "")
    assert leak.outcome is Outcome.DELIVERED and all("still alive" not in line.message for line in leak.logs)
    assert again.outcome is Outcome.DELIVERED


def test_console_state_is_per_invocation() -> None:
    sb = sandbox("""async function onTrack(event) {
        console.count(); console.group('g'); console.time('t');
        if (event.end) { console.timeEnd('t'); console.groupEnd(); }
        console.count(); console.log('x'); return 1 }""")
    first = [m for _, _, m, _ in run(sb).logs]
    second = [m for _, _, m, _ in run(sb, {"end": True}).logs]
    assert first == ["default: 1", "g", "  default: 2", "  x"]
    assert second[:2] == ["default: 1", "g"] and second[2].startswith("  t: ") and second[3:] == ["default: 2", "x"]


def test_console_warnings_where_node_emits_process_warnings() -> None:
    r = run(
        sandbox("""async function onTrack() {
        console.time('a'); console.time('a'); console.timeEnd('b'); console.timeLog('c'); console.countReset('d') }""")
    )
    assert [(level, m) for _, level, m, _ in r.logs] == [
        ("warn", "Warning: Label 'a' already exists for console.time()"),
        ("warn", "Warning: No such label 'b' for console.timeEnd()"),
        ("warn", "Warning: No such label 'c' for console.timeLog()"),
        ("warn", "Warning: Count for 'd' does not exist"),
    ]


def test_console_trace_shows_the_functions_frames() -> None:
    r = run(sandbox("function helper() { console.trace('where %s', 'am I') }\nasync function onTrack() { helper() }"))
    [(_, level, text, _)] = r.logs
    assert level == "error"
    lines = text.split("\n")
    assert lines[0] == "Trace: where am I"
    assert [line.split(" (")[0] for line in lines[1:]] == ["    at helper", "    at onTrack"]


HOSTILE_CONSOLE = """
async function onTrack(event) {
  const out = [];
  const attempt = (f) => { try { f(); out.push('ok') } catch (e) { out.push(e.name + ': ' + e.message) } };
  attempt(() => console.log({ [Symbol.for('nodejs.util.inspect.custom')]() { throw new RangeError('custom boom') } }));
  attempt(() => console.log({ get g() { throw new Error('getter ran') } }));
  attempt(() => console.log(new Proxy({}, { ownKeys() { throw new TypeError('trap') } })));
  attempt(() => console.log('%s', { toString() { throw new Error('toString ran') } }));
  attempt(() => console.log(Array.from({ length: 1e5 }, (_, i) => i)));
  attempt(() => { let deep = {}; for (let i = 0; i < 1e4; i++) deep = { deep }; console.log(deep); console.dir(deep, { depth: 5 }) });
  attempt(() => console.table(new Proxy({ a: 1 }, { get() { throw new Error('get trap') } })));
  attempt(() => console.dir({ a: 1 }, { depth: Infinity, breakLength: -5, maxArrayLength: -1 }));
  attempt(() => console.log('x'.repeat(1e6)));
  // the 4 KB are used up: nothing is formatted any more, so nothing of the function's runs
  attempt(() => console.log({ [Symbol.for('nodejs.util.inspect.custom')]() { throw new Error('not called') } }));
  return out;
}
"""


def test_hostile_values_fail_only_the_call_and_output_stays_capped() -> None:
    r = run(sandbox(HOSTILE_CONSOLE, cpu_s=5.0, wall_s=30.0))
    assert r.ok, r.value
    assert r.value == [
        "RangeError: custom boom",
        "ok",  # a getter is shown as [Getter], never run
        "TypeError: trap",
        "Error: toString ran",
        "ok",
        "ok",
        "Error: get trap",
        "ok",
        "ok",
        "ok",
    ]
    texts = [m for _, _, m, _ in r.logs]
    assert texts[0] == "{ g: [Getter] }"
    assert texts[1].endswith("... 99900 more items\n]")
    assert sum(len(t) + 16 for t in texts) <= 4096 + 100
    assert texts[-1].endswith("[log output truncated at 4 KB]")


def test_plain_logging_does_not_load_the_formatter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Strings and numbers are formatted in the prelude; lazy/inspect.js (and Buffer's
    read/write methods) are fetched from the host only when something needs them."""
    from segfuncd.runner import builtins

    asked: list[str] = []
    real = builtins.call

    def spy(name: object, args: list[object]) -> object:
        if name == "source":
            asked.append(str(args[0]))
        return real(name, args)

    monkeypatch.setattr(builtins, "call", spy)
    sb = sandbox(
        "async function onTrack(e) { console.log('n =', 1, true, null); if (e.obj) console.log({ a: 1 }); "
        "if (e.buf) return Buffer.from([1, 2]).readUInt16BE(0) }"
    )
    assert run(sb).ok and asked == []
    assert run(sb, {"obj": True}).ok and asked == ["inspect"]
    assert run(sb, {"buf": True}).value == 258 and asked == ["inspect", "buffer_io"]


SENDGRID_LIKE = """'use strict';
// shaped like Segment's published SendGrid function: sloppy assignment, console.time, objects logged
async function onIdentify(event, settings) {
  console.time('sendgrid');
  endpoint = 'https://api.sendgrid.com/v3/marketing/contacts';
  const contact = { email: event.traits.email, custom_fields: new Map([['plan', event.traits.plan]]) };
  console.log('upserting %s', event.userId, contact);
  console.table([{ field: 'email', value: contact.email }]);
  console.timeEnd('sendgrid');
  return { endpoint, window: typeof window, same: window === globalThis };
}
"""


async def test_a_segment_function_runs_unchanged_through_a_runner() -> None:
    v = PluginVersion.from_source("sendgrid", SENDGRID_LIKE, path="plugins/sendgrid.js")
    event = {"type": "identify", "userId": "u-1", "traits": {"email": "a@b.co", "plan": "pro"}, "messageId": "m"}
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        [r] = await pool.invoke(v, [event], {})
        [track] = await pool.invoke(v, [{**event, "type": "track"}], {})
    assert r.outcome is Outcome.DELIVERED, (r.error_name, r.error_message)
    assert r.value == {"endpoint": "https://api.sendgrid.com/v3/marketing/contacts", "window": "object", "same": True}
    lines = [(line.level, line.message) for line in r.logs]
    assert lines[0] == ("log", "upserting u-1 { email: 'a@b.co', custom_fields: Map(1) { 'plan' => 'pro' } }")
    assert lines[1] == (
        "log",
        "┌─────────┬─────────┬──────────┐\n"
        "│ (index) │ field   │ value    │\n"
        "├─────────┼─────────┼──────────┤\n"
        "│ 0       │ 'email' │ 'a@b.co' │\n"
        "└─────────┴─────────┴──────────┘",
    )
    assert lines[2][0] == "log" and re.fullmatch(r"sendgrid: \d+(\.\d+)?m?s", lines[2][1]), lines[2]
    assert (track.outcome, track.error_name, track.error_message) == (
        Outcome.DISCARDED,
        "EventNotSupported",
        "track not supported",
    )
