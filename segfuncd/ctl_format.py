"""segfuncctl's human output: the daemon's JSON in, text out; pure.

Here: `render_status` (the 80-column status table), `render_log_line`, `render_test` (Callback
Return, Log Output, Requests), `render_deliveries` and `render_delivery`, and the small
number/duration/clipping helpers they share. Not here: talking to the daemon or click
(`ctl.py`); `--json` prints the daemon's answer unchanged, so nothing here shapes data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

WIDTH = 80  # the status table fits an 80-column terminal


def _count(n: Any) -> str:
    """A count in at most 5 characters, rounded down: 9999, 12.3k, 123k, 4.5M, 678M, 12G."""
    if n is None:
        return "-"
    n = int(n)
    for unit, scale in (("", 1), ("k", 10**3), ("M", 10**6), ("G", 10**9)):
        if n < 10_000 * scale if unit == "" else n < 1000 * scale:
            if unit == "":
                return str(n)
            if n < 10 * scale:
                tenths = n * 10 // scale
                return f"{tenths // 10}.{tenths % 10}{unit}"
            return f"{n // scale}{unit}"
    return f"{n // 10**9}G"


def _ms(v: Any) -> str:
    """A latency in at most 6 characters: 0.4ms, 340ms, 1.23s, 105s."""
    if v is None:
        return "-"
    v = float(v)
    if v < 10:
        return f"{v:.1f}ms"
    if v < 1000:
        return f"{v:.0f}ms"
    if v < 10_000:
        return f"{v / 1000:.2f}s"
    return f"{v / 1000:.0f}s"


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * float(v):.1f}%"


def _age(seconds: Any) -> str:
    """A duration, compact: 42s, 13m, 2h13m, 3d4h."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86_400:
        h, m = divmod(s // 60, 60)
        return f"{h}h{m:02d}m" if m else f"{h}h"
    d, h = divmod(s // 3600, 24)
    return f"{d}d{h}h" if h and d < 10 else f"{d}d"


def _ago(t: Any, now: float) -> str:
    return "-" if t is None else f"{_age(now - float(t))} ago"


def _clip(text: str, width: int = WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _clip_left(text: str, width: int) -> str:
    """Keep the end of a path (its file name) when it is too long."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def _wrap(text: str, *, lines: int = 3) -> list[str]:
    """A note over at most `lines` lines of WIDTH, continuation lines indented."""
    import textwrap

    out = textwrap.wrap(text, WIDTH, subsequent_indent="    ", break_long_words=True, break_on_hyphens=False)
    if len(out) > lines:
        out = out[:lines]
        out[-1] = _clip(out[-1] + " …")
    return out


def _first_line(text: Any) -> str:
    return str(text or "").strip().splitlines()[0] if str(text or "").strip() else ""


def _clock(t: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


_REFUSAL_REASONS = {"bad_key": "bad key", "origin": "origin", "too_large": "too large", "malformed": "malformed"}


def _cluster_lines(c: Mapping[str, Any]) -> list[str]:
    """Cluster mode: the shared queue's figures (the same on every node), below this node's."""
    if c.get("error"):
        return [_clip(f"cluster  UNREACHABLE: {c['error']}")]
    consumers = c.get("consumers") or {}
    waiting = sum(int(v.get("pending", 0)) for v in consumers.values())
    running = sum(int(v.get("ack_pending", 0)) for v in consumers.values())
    return [
        _clip(
            f"cluster  {c.get('stream', '?')} R{c.get('replicas', '?')} via {c.get('connected_url') or '?'}, "
            f"leader {c.get('leader') or '-'}, {c.get('current_replicas', 0)} replicas current"
        ),
        _clip(
            f"         {_count(c.get('messages', 0))} events kept, {_count(c.get('bytes', 0))} of "
            f"{_count(c.get('max_bytes', 0))} bytes; {_count(waiting)} waiting, {_count(running)} handed out, "
            f"{_count(c.get('parked', 0))} parked, {_count(c.get('dead', 0))} dead (whole cluster)"
        ),
    ]


def render_status(data: Mapping[str, Any]) -> str:
    """The `segfuncctl status` report: a header, two tables and notes, 80 columns wide."""
    d = data.get("daemon", {})
    now = float(data.get("now") or d.get("now") or 0)
    intake, runners, queue = data.get("intake", {}), data.get("runners", {}), data.get("queue", {})
    out = [
        f"segfuncd {d.get('version', '?')}  pid {d.get('pid', '?')}  up {_age(d.get('uptime_s'))}",
        f"config   {_clip_left(str(d.get('config', '?')), WIDTH - 9)}",
        _clip(f"intake   {', '.join(intake.get('addresses') or ['(none)'])}"),
        _clip(
            f"         {float(intake.get('events_per_s') or 0):.1f} events/s, {_count(intake.get('accepted', 0))} accepted, "
            f"{_count(intake.get('duplicate', 0))} duplicate, {_count(intake.get('rejected', 0))} rejected"
        ),
        f"runners  {runners.get('alive', '?')}/{runners.get('workers', '?')} alive, "
        f"{runners.get('restarts', 0)} restarts, {runners.get('in_flight', 0)} in flight",
    ]
    refused = intake.get("refused") or {}
    if refused:
        for window, figure in (("last 5 min", "last_5m"), ("since start", "total")):
            counts = ", ".join(
                f"{_count((refused.get(r) or {}).get(figure, 0))} {label}"
                for r, label in _REFUSAL_REASONS.items()
                if r in refused
            )
            out.append(_clip(f"  refused {window:<11}: {counts}"))
    sources = intake.get("sources") or []
    if len(sources) > 1 or any(s.get("name") != "default" for s in sources):
        for s in sources:
            out.append(
                _clip(
                    f"  source {s.get('name', '?')}: {_count(s.get('accepted', 0))} accepted, "
                    f"{_count(s.get('duplicate', 0))} duplicate, {_count(s.get('rejected', 0))} rejected"
                )
            )
    oldest = queue.get("oldest_pending_age_s")
    out.append(
        f"queue    {_count(queue.get('pending', 0))} pending"
        + (f" (oldest {_age(oldest)})" if oldest is not None and queue.get("pending") else "")
        + f", {_count(queue.get('retrying', 0))} retrying, {_count(queue.get('dead', 0))} dead"
    )
    cluster = data.get("cluster")
    if cluster:
        out.extend(_cluster_lines(cluster))
    storage = d.get("storage") or {}
    if storage.get("condition", "ok") != "ok":
        out.append(f"store    {str(storage['condition']).upper()}: {storage.get('error', '')}")
        out.append("         new events are refused with 503 until it recovers (by itself once the cause is gone)")
    elif d.get("healthy") is False:
        out.append("store    UNHEALTHY: the last SQLite commit failed (see segfuncctl logs)")
    if storage.get("logs_dropped"):
        out.append(f"logs     {storage['logs_dropped']} log lines dropped while the store could not write them")
    if intake.get("draining"):
        out.append("intake   draining: shutting down, new events are refused with 503")
    for warning in data.get("warnings") or []:
        out.append(f"warning  {warning}")  # not clipped: it names a file and a fix
    functions = data.get("functions") or []
    out.append("")
    if not functions:
        out.append(f"no functions: put NAME.js files in {d.get('plugins_dir', 'the plugins directory')}")
        return "\n".join(out)

    nw = max(8, min(16, max(len(f["name"]) for f in functions)))

    def name(f: Mapping[str, Any]) -> str:
        return _clip(f["name"], nw).ljust(nw)

    out.append(
        f"{'FUNCTION':<{nw}}  {'STATE':<10}  {'VERSION':<12}  {'LOADED':<6}"
        f"{'DELIV':>6}{'DISC':>6}{'FILT':>6}{'RETRY':>6}{'DEAD':>6}"
    )
    for f in functions:
        discarded = sum((f.get("discarded") or {}).values())
        loaded = _age(now - f["loaded_at"]) if f.get("loaded_at") else "-"
        out.append(
            f"{name(f)}  {f.get('state', '?'):<10}  {_short(f.get('version')):<12}  {loaded:<6}"
            f"{_count(f.get('delivered')):>6}{_count(discarded):>6}{_count(f.get('filtered')):>6}"
            f"{_count(f.get('retrying')):>6}{_count(f.get('dead')):>6}"
        )
    out.append("")
    out.append(f"{'':<{nw}}  {' last 5 min ':-^28}  {' last 24 h ':-^28}")
    out.append(f"{'LATENCY':<{nw}}  " + "  ".join(f"{'RUNS':>6}{'OK%':>8}{'P50':>7}{'P99':>7}" for _ in range(2)))
    for f in functions:
        cells = []
        for key in ("last_5m", "last_24h"):
            w = f.get(key) or {}
            cells.append(
                f"{_count(w.get('count', 0)):>6}{_pct(w.get('success_rate')):>8}"
                f"{_ms(w.get('p50_ms')):>7}{_ms(w.get('p99_ms')):>7}"
            )
        out.append(f"{name(f)}  " + "  ".join(cells))
    notes = []
    for f in functions:
        n = f["name"]
        if f.get("error"):
            first = f.get("error_first_line") or _first_line(f["error"])
            notes += _wrap(f"{n}: load error {_ago(f.get('error_at'), now)}: {first}")
            if f.get("version"):
                notes.append(
                    _clip(f"{n}: still running version {_short(f['version'])} (loaded {_ago(f.get('loaded_at'), now)})")
                )
        waiting = int(f.get("pending") or 0) - int(f.get("retrying") or 0)
        if waiting > 0 and f.get("state") == "paused":
            notes.append(_clip(f"{n}: paused; {waiting} {'event waits' if waiting == 1 else 'events wait'} for resume"))
        elif waiting > 0 and f.get("state") != "live":
            notes.append(_clip(f"{n}: {waiting} {'event waits' if waiting == 1 else 'events wait'} until it is live"))
        if f.get("discarded"):
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(f["discarded"].items()))
            notes.append(_clip(f"{n}: discarded {reasons}"))
        if f.get("last_error"):
            notes += _wrap(f"{n}: last error {_ago(f.get('last_error_at'), now)}: {_first_line(f['last_error'])}")
    if notes:
        out += ["", *notes]
    return "\n".join(out)


def render_log_line(r: Mapping[str, Any]) -> str:
    """One log record as a line: time, source, level, message, then the context."""
    context = []
    if r.get("source") == "daemon":
        who = "segfuncd"  # the daemon's own event, maybe about a function
        if r.get("function"):
            context.append(f"function={r['function']}")
    else:
        who = str(r.get("function") or "?") + (f"@{str(r['version'])[:8]}" if r.get("version") else "")
    if r.get("message_id"):
        context.append(f"messageId={r['message_id']}")
    if r.get("outcome"):
        context.append(str(r["outcome"]))
    for k, v in (r.get("fields") or {}).items():
        context.append(f"{k}={v}")
    message = str(r.get("message", "")).replace("\n", "\n    ")
    tail = f"  [{' '.join(context)}]" if context else ""
    return f"{_clock(float(r.get('time') or 0))} {who} {str(r.get('level', '')):<7} {message}{tail}"


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines()) or prefix.rstrip()


def render_test(data: Mapping[str, Any]) -> str:
    """Callback Return, Log Output and Requests per event, as in the seed's debugger panel."""
    results = data.get("results") or []
    out: list[str] = []
    if data.get("sample"):
        ev = (data.get("events") or [{}])[0]
        out += [f"(no EVENT given: ran a sample {ev.get('type', '?')} event)", ""]
    for i, r in enumerate(results):
        if len(results) > 1:
            out += [f"=== event {i + 1} of {len(results)} ({r.get('type', '?')}) ===", ""]
        out.append("Callback Return")
        err = r.get("error")
        if err:
            out.append(_indent(f"{err.get('name')}: {err.get('message') or ''}".rstrip(": ")))
            if err.get("stack"):
                out.append(_indent(str(err["stack"]), "  "))
        else:
            out.append(_indent(json.dumps(r.get("return"), indent=2, default=str)))
        out += ["", "Log Output"]
        lines = r.get("logs") or []
        if not lines:
            out.append("  (nothing logged)")
        for line in lines:
            level = line.get("level", "log")
            prefix = "" if level in ("log", "info") else f"[{level}] "
            out.append(_indent(prefix + str(line.get("message", ""))))
        out += ["", "Requests"]
        requests = r.get("requests") or []
        if not requests:
            out.append("  (no requests)")
        for q in requests:
            result = str(q["status"]) if q.get("status") is not None else f"failed: {q.get('error') or '?'}"
            out.append(
                f"  {q.get('method', '?')} {q.get('url', '?')} -> {result} ({float(q.get('duration_ms') or 0):.0f} ms)"
            )
        out.append("")
    if data.get("load_error"):
        out += [f"note: the file on disk does not load ({data['load_error']}); the live version ran", ""]
    if results:
        total = sum(float(r.get("duration_ms") or 0) for r in results)
        out.append(
            f"ran {data.get('function', '?')}@{_short(data.get('version'), '?')} in {total:.0f} ms (nothing was queued)"
        )
    return "\n".join(out)


def render_deliveries(data: Mapping[str, Any]) -> str:
    """A table of deliveries, newest first."""
    rows = data.get("deliveries") or []
    if not rows:
        return "no deliveries match"
    now = float(data.get("now") or 0)
    out = [f"{'ID':>8}  {'FUNCTION':<14}  {'STATE':<9}  {'TRIES':>5}  {'AGE':<6}  LAST ERROR"]
    for r in rows:
        out.append(
            _clip(
                f"{r.get('id', '?'):>8}  {_clip(str(r.get('function', '?')), 14):<14}  {r.get('state', '?'):<9}  "
                f"{r.get('attempts', 0):>5}  {_age(now - r['created_at']) if r.get('created_at') else '-':<6}  "
                f"{_first_line(r.get('last_error')) or '-'}"
            )
        )
    return "\n".join(out)


def render_delivery(d: Mapping[str, Any]) -> str:
    """One delivery: what it is, the event, then every attempt with its error and logs."""
    now = float(d.get("now") or 0)
    out = [
        f"delivery {d.get('id')}  {d.get('function')}  {d.get('state')}",
        f"messageId {d.get('message_id') or '-'}, source {d.get('source') or 'default'}, "
        f"created {_ago(d.get('created_at'), now)}, {d.get('attempts', 0)} attempt(s)",
    ]
    if d.get("next_attempt_at"):
        out.append(f"next attempt in {_age(float(d['next_attempt_at']) - now)}")
    out += ["", "Event", _indent(json.dumps(d.get("event"), indent=2, default=str)), ""]
    history = d.get("history") or []
    out.append("Attempts" if history else "Attempts: none yet")
    for a in history:
        record = a.get("record") or {}
        runner = f"  runner {record['runner']}" if record.get("runner") else ""
        node = f"  node {a['node']}" if a.get("node") else ""  # cluster mode: who ran it
        out.append(
            f"  #{a.get('number', '?')} {_clock(float(a.get('at') or 0))}  {a.get('outcome', '?')}  "
            f"{_ms(a.get('duration_ms'))}  version {_short(a.get('version'))}{runner}{node}"
        )
        if not record:
            if a.get("error"):
                out.append(_indent(str(a["error"]), "      "))
            if a.get("node"):
                out.append(f"      (its full attempt record is kept by node {a['node']}: `deliveries show` there)")
            else:
                out.append("      (no attempt record: trimmed, or written by an older segfuncd)")
            continue
        out += _attempt_record(record, a.get("error"))
    return "\n".join(out)


def _short(version: object, missing: str = "-") -> str:
    """A version id (the full SHA-256) as shown in tables: its first 12 hex digits."""
    return str(version)[:12] if version else missing


BODY_PREVIEW_CHARS = 300


def _attempt_record(record: Mapping[str, Any], error: Any) -> list[str]:
    """One attempt's Callback Return, Log Output and Requests, indented under its header."""
    pad = "      "
    out = [f"{pad[:-2]}Callback Return"]
    err = record.get("error")
    if err:
        out.append(_indent(str(error or f"{err.get('name')}: {err.get('message') or ''}"), pad))
        if err.get("stack"):
            out.append(_indent(str(err["stack"]), pad + "  "))
    else:
        value = record.get("return")
        try:
            shown = json.dumps(json.loads(value), indent=2) if isinstance(value, str) else str(value)
        except ValueError:
            shown = str(value)  # a truncated value is no longer JSON
        out.append(_indent(shown, pad))
    out.append(f"{pad[:-2]}Log Output")
    lines = record.get("logs") or []
    if not lines:
        out.append(f"{pad}(nothing logged)")
    for line in lines:
        level = line.get("level", "log")
        prefix = "" if level in ("log", "info") else f"[{level}] "
        out.append(_indent(prefix + str(line.get("message", "")), pad))
    if record.get("logs_dropped"):
        out.append(f"{pad}(+{record['logs_dropped']} more lines not kept)")
    out.append(f"{pad[:-2]}Requests")
    requests = record.get("requests") or []
    if not requests:
        out.append(f"{pad}(no requests)")
    for q in requests:
        result = str(q["status"]) if q.get("status") is not None else f"failed: {q.get('error') or '?'}"
        out.append(
            f"{pad}{q.get('method', '?')} {q.get('url', '?')} -> {result} ({float(q.get('duration_ms') or 0):.0f} ms)"
        )
        for label, body in (("sent", q.get("request_body")), ("got", q.get("response_body"))):
            if body:
                preview = str(body).replace("\n", " ")
                if len(preview) > BODY_PREVIEW_CHARS:
                    preview = preview[:BODY_PREVIEW_CHARS] + "…"
                out.append(f"{pad}  {label} {preview}")
    if record.get("requests_dropped"):
        out.append(f"{pad}(+{record['requests_dropped']} more requests not kept)")
    return out
