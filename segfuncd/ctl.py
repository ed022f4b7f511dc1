"""`segfuncctl`: the operator's command line, a thin client of the admin socket.

It parses arguments, calls the daemon's admin API (HTTP over the admin Unix socket, with
httpx), and formats the answer. It never opens the database: everything it shows is what
the daemon serves, so `status --json` and `/metrics` agree with the table.

Operator mistakes (daemon not running, wrong socket, bad config, unknown function) end in
one line on stderr and a non-zero exit; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import json
import re
import sys
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import httpx
import tomli_w

from . import __version__
from .config import Config, find_config, parse_config_file
from .errors import ConfigError, DaemonUnreachable, SegfuncdError

EXIT_OK = 0
EXIT_FAILED = 1  # the function threw (test), or the daemon refused the request
EXIT_USAGE = 2  # click's own code for bad arguments
EXIT_UNREACHABLE = 3  # no daemon at the socket, or the config file is invalid

EXIT_CODES_HELP = """\b
Exit status:
  0  success
  1  the function threw an error (test), or the daemon refused the request
  2  bad arguments
  3  the daemon could not be reached, or the config file is invalid
"""

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 88}
DEFAULT_TIMEOUT_S = 30.0
TEST_TIMEOUT_S = 120.0  # a test runs the function now: up to timeout_ms per event

F = TypeVar("F", bound=Callable[..., Any])


class CtlError(SegfuncdError):
    """A request segfuncctl refuses or the daemon refused; exit status 1."""


class AdminRefused(CtlError):
    """The daemon answered, and said no (unknown function, bad event, ...)."""


# --- talking to the daemon ----------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    """A short reason for a failed connection, from the OSError underneath httpx."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno is not None:
            if seen.errno == errno.ENOENT:
                return "no such socket (is segfuncd running?)"
            if seen.errno == errno.ECONNREFUSED:
                return "connection refused"
            if seen.errno in (errno.EACCES, errno.EPERM):
                return "permission denied (run as the daemon's user, or with sudo)"
            return seen.strerror or str(seen)
        seen = seen.__cause__ or seen.__context__
    text = str(exc).lower()
    for key, reason in (("no such file", "no such socket (is segfuncd running?)"), ("refused", "connection refused"),
                        ("permission", "permission denied (run as the daemon's user, or with sudo)")):
        if key in text:
            return reason
    return str(exc) or type(exc).__name__


class AdminClient:
    """Sync httpx over the admin Unix socket; every failure becomes a SegfuncdError."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self._client = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(socket_path)),
            base_url="http://segfuncd",
            timeout=DEFAULT_TIMEOUT_S,
        )

    def close(self) -> None:
        self._client.close()

    def _unreachable(self, exc: BaseException) -> DaemonUnreachable:
        if isinstance(exc, httpx.TimeoutException):
            return DaemonUnreachable(str(self.socket_path), "the daemon did not answer in time")
        return DaemonUnreachable(str(self.socket_path), _reason(exc))

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json_body: Any = None, timeout: float = DEFAULT_TIMEOUT_S) -> httpx.Response:
        params = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._client.request(method, path, params=params, json=json_body, timeout=timeout)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        _raise_for_refusal(response)
        return response

    def get_json(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params).json()

    def post_json(self, path: str, body: Any, *, timeout: float = DEFAULT_TIMEOUT_S) -> Any:
        return self.request("POST", path, json_body=body, timeout=timeout).json()

    def stream_lines(self, path: str, **params: Any) -> Iterator[str]:
        """The lines of a streamed (chunked) answer, as they arrive."""
        params = {k: v for k, v in params.items() if v is not None}
        try:
            with self._client.stream("GET", path, params=params, timeout=httpx.Timeout(DEFAULT_TIMEOUT_S, read=None)) as r:
                if r.status_code >= 400:
                    r.read()
                    _raise_for_refusal(r)
                yield from r.iter_lines()
        except httpx.RemoteProtocolError as exc:
            raise DaemonUnreachable(str(self.socket_path), "it closed the connection (is it stopping?)") from exc
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        # A follower's stream only ends when the daemon stops.
        raise DaemonUnreachable(str(self.socket_path), "it closed the log stream (is it stopping?)")


def _raise_for_refusal(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        data = response.json()
        message = data.get("error") or data.get("message") or response.text
    except (ValueError, AttributeError):
        message = response.text.strip() or f"HTTP {response.status_code}"
    raise AdminRefused(f"the daemon refused: {message}")


def admin_socket_from_config(explicit: str | None) -> Path:
    """The admin socket the config names, even when the rest of the config is invalid.

    An operator who broke the config and runs `segfuncctl reload` wants the daemon's
    answer (it keeps the old config and says why), not a refusal to talk: so a config that
    does not validate only costs a warning, as long as the socket can still be read.
    """
    path = find_config(explicit)  # a missing --config / $SEGFUNCD_CONFIG file is fatal
    if path is None:
        return Config().admin_socket
    try:
        return parse_config_file(path).admin_socket
    except ConfigError as exc:
        socket = _admin_socket_leniently(path)
        click.echo(f"segfuncctl: warning: {exc}; trying the admin socket {socket}", err=True)
        return socket


def _admin_socket_leniently(path: Path) -> Path:
    """admin.socket from a config that does not validate (or does not even parse)."""
    base = path.resolve().parent
    default = Config(base_dir=base)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return default.admin_socket
    value: Any = None
    try:
        value = tomllib.loads(text).get("admin", {}).get("socket")
    except (tomllib.TOMLDecodeError, AttributeError):
        section = ""
        for line in text.splitlines():  # the TOML is broken: read `socket = "..."` under [admin]
            stripped = line.strip()
            if stripped.startswith("["):
                section = stripped.strip("[] \t")
            elif section == "admin" and (m := re.match(r'socket\s*=\s*"([^"]*)"', stripped)):
                value = m.group(1)
                break
    return default.resolve(value) if isinstance(value, str) and value else default.admin_socket


def _client(ctx: click.Context) -> AdminClient:
    obj = ctx.ensure_object(dict)
    if "client" not in obj:
        socket = obj.get("socket")
        path = Path(socket) if socket else admin_socket_from_config(obj.get("config"))
        obj["client"] = AdminClient(path)
        ctx.call_on_close(obj["client"].close)
    client: AdminClient = obj["client"]
    return client


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def json_option(f: F) -> F:
    """--json: print the data behind the table."""
    return click.option("--json", "as_json", is_flag=True, help="Print the daemon's answer as JSON.")(f)


# --- formatting (pure: the daemon's JSON in, text out) ------------------------------------

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
    return text if len(text) <= width else "…" + text[-(width - 1):]


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


def render_status(data: Mapping[str, Any]) -> str:
    """The `segfuncctl status` report: a header, two tables and notes, 80 columns wide."""
    d = data.get("daemon", {})
    now = float(data.get("now") or d.get("now") or 0)
    intake, runners, queue = data.get("intake", {}), data.get("runners", {}), data.get("queue", {})
    out = [
        f"segfuncd {d.get('version', '?')}  pid {d.get('pid', '?')}  up {_age(d.get('uptime_s'))}",
        f"config   {_clip_left(str(d.get('config', '?')), WIDTH - 9)}",
        _clip(f"intake   {', '.join(intake.get('addresses') or ['(none)'])}"),
        _clip(f"         {float(intake.get('events_per_s') or 0):.1f} events/s, {_count(intake.get('accepted', 0))} accepted, "
              f"{_count(intake.get('duplicate', 0))} duplicate, {_count(intake.get('rejected', 0))} rejected"),
        f"runners  {runners.get('alive', '?')}/{runners.get('workers', '?')} alive, "
        f"{runners.get('restarts', 0)} restarts, {runners.get('in_flight', 0)} in flight",
    ]
    oldest = queue.get("oldest_pending_age_s")
    out.append(f"queue    {_count(queue.get('pending', 0))} pending"
               + (f" (oldest {_age(oldest)})" if oldest is not None and queue.get("pending") else "")
               + f", {_count(queue.get('retrying', 0))} retrying, {_count(queue.get('dead', 0))} dead")
    if d.get("healthy") is False:
        out.append("store    UNHEALTHY: the last SQLite commit failed (see segfuncctl logs)")
    if intake.get("draining"):
        out.append("intake   draining: shutting down, new events are refused with 503")
    functions = data.get("functions") or []
    out.append("")
    if not functions:
        out.append(f"no functions: put NAME.js files in {d.get('plugins_dir', 'the plugins directory')}")
        return "\n".join(out)

    nw = max(8, min(16, max(len(f["name"]) for f in functions)))

    def name(f: Mapping[str, Any]) -> str:
        return _clip(f["name"], nw).ljust(nw)

    out.append(f"{'FUNCTION':<{nw}}  {'STATE':<10}  {'VERSION':<12}  {'LOADED':<6}"
               f"{'DELIV':>6}{'DISC':>6}{'FILT':>6}{'RETRY':>6}{'DEAD':>6}")
    for f in functions:
        discarded = sum((f.get("discarded") or {}).values())
        loaded = _age(now - f["loaded_at"]) if f.get("loaded_at") else "-"
        out.append(f"{name(f)}  {f.get('state', '?'):<10}  {(f.get('version') or '-'):<12}  {loaded:<6}"
                   f"{_count(f.get('delivered')):>6}{_count(discarded):>6}{_count(f.get('filtered')):>6}"
                   f"{_count(f.get('retrying')):>6}{_count(f.get('dead')):>6}")
    out.append("")
    out.append(f"{'':<{nw}}  {' last 5 min ':-^28}  {' last 24 h ':-^28}")
    out.append(f"{'LATENCY':<{nw}}  " + "  ".join(f"{'RUNS':>6}{'OK%':>8}{'P50':>7}{'P99':>7}" for _ in range(2)))
    for f in functions:
        cells = []
        for key in ("last_5m", "last_24h"):
            w = f.get(key) or {}
            cells.append(f"{_count(w.get('count', 0)):>6}{_pct(w.get('success_rate')):>8}"
                         f"{_ms(w.get('p50_ms')):>7}{_ms(w.get('p99_ms')):>7}")
        out.append(f"{name(f)}  " + "  ".join(cells))
    notes = []
    for f in functions:
        n = f["name"]
        if f.get("error"):
            first = f.get("error_first_line") or _first_line(f["error"])
            notes += _wrap(f"{n}: load error {_ago(f.get('error_at'), now)}: {first}")
            if f.get("version"):
                notes.append(_clip(f"{n}: still running version {f['version']} (loaded {_ago(f.get('loaded_at'), now)})"))
        waiting = int(f.get("pending") or 0) - int(f.get("retrying") or 0)
        if waiting > 0 and f.get("state") != "live":
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
            out.append(f"  {q.get('method', '?')} {q.get('url', '?')} -> {result} ({float(q.get('duration_ms') or 0):.0f} ms)")
        out.append("")
    if data.get("load_error"):
        out += [f"note: the file on disk does not load ({data['load_error']}); the live version ran", ""]
    if results:
        total = sum(float(r.get("duration_ms") or 0) for r in results)
        out.append(f"ran {data.get('function', '?')}@{data.get('version', '?')} in {total:.0f} ms (nothing was queued)")
    return "\n".join(out)


def render_deliveries(data: Mapping[str, Any]) -> str:
    """A table of deliveries, newest first."""
    rows = data.get("deliveries") or []
    if not rows:
        return "no deliveries match"
    now = float(data.get("now") or 0)
    out = [f"{'ID':>8}  {'FUNCTION':<14}  {'STATE':<9}  {'TRIES':>5}  {'AGE':<6}  LAST ERROR"]
    for r in rows:
        out.append(_clip(f"{r.get('id', '?'):>8}  {_clip(str(r.get('function', '?')), 14):<14}  {r.get('state', '?'):<9}  "
                         f"{r.get('attempts', 0):>5}  {_age(now - r['created_at']) if r.get('created_at') else '-':<6}  "
                         f"{_first_line(r.get('last_error')) or '-'}"))
    return "\n".join(out)


def render_delivery(d: Mapping[str, Any]) -> str:
    """One delivery: what it is, the event, then every attempt with its error and logs."""
    now = float(d.get("now") or 0)
    out = [
        f"delivery {d.get('id')}  {d.get('function')}  {d.get('state')}",
        f"messageId {d.get('message_id') or '-'}, created {_ago(d.get('created_at'), now)}, "
        f"{d.get('attempts', 0)} attempt(s)",
    ]
    if d.get("next_attempt_at"):
        out.append(f"next attempt in {_age(float(d['next_attempt_at']) - now)}")
    out += ["", "Event", _indent(json.dumps(d.get("event"), indent=2, default=str)), ""]
    history = d.get("history") or []
    out.append("Attempts" if history else "Attempts: none yet")
    for a in history:
        what = a.get("error") or a.get("outcome") or "?"
        out.append(f"  #{a.get('number', '?')} {_clock(float(a.get('at') or 0))}  {a.get('outcome', '?')}  "
                   f"{_ms(a.get('duration_ms'))}  version {a.get('version') or '-'}")
        if a.get("error"):
            out.append(_indent(str(what), "      "))
        for line in a.get("logs") or []:
            out.append(_indent(f"[{line.get('level', 'log')}] {line.get('message', '')}", "      "))
    return "\n".join(out)


# --- `segfuncctl init` --------------------------------------------------------------------

EXAMPLE_PLUGIN = """\
// An example destination function (segfuncctl init). Each handler is
// `async (event, settings)`; return to deliver, throw to say why not.
// Settings come from [functions.example] in segfuncd.toml.

async function onTrack(event, settings) {
  console.log(`track "${event.event}" from ${event.userId || event.anonymousId}`)
  if (!settings.endpoint) {
    return { forwarded: false, hint: "set functions.example.settings.endpoint" }
  }
  const res = await fetch(settings.endpoint, {
    method: "post",
    headers: {
      "Content-Type": "application/json",
      Authorization: "Basic " + btoa(`${settings.apiKey}:`),
    },
    body: JSON.stringify(event),
  })
  if (res.status === 429 || res.status >= 500) {
    throw new RetryError(`endpoint answered ${res.status}`) // retried with backoff
  }
  if (!res.ok) {
    throw new ValidationError(`endpoint refused the event: ${res.status}`) // discarded
  }
  return { forwarded: true, status: res.status }
}

async function onIdentify(event, settings) {
  throw new EventNotSupported("identify is not supported") // discarded, never retried
}
"""

# (section, comment above it, [(key, value, comment)]) — values are written by tomli-w.
_STARTER: list[tuple[str, str, list[tuple[str, Any, str]]]] = [
    ("intake", "Where events come in: the Segment HTTP Tracking API (/v1/track, /v1/batch, ...).", [
        ("listen", "127.0.0.1:8088", 'TCP address; "" disables TCP'),
        ("write_keys", [], "accepted write keys; empty: no auth (loopback clients only)"),
    ]),
    ("admin", "segfuncctl talks to the daemon over this Unix socket (mode 0600).", [
        ("socket", "var/admin.sock", "relative paths are relative to this file's folder"),
    ]),
    ("storage", "Every event is committed to SQLite before intake answers 200.", [
        ("path", "var/segfuncd.db", ""),
    ]),
    ("runtime", "Functions run in separate runner processes, with limits per invocation.", [
        ("plugins_dir", "plugins", "one NAME.js per function; edits go live by themselves"),
        ("workers", 2, "runner processes; 0: one per CPU"),
        ("timeout_ms", 10_000, "wall-clock limit of one invocation"),
        ("cpu_ms", 2_000, "CPU limit of one invocation"),
        ("memory_mb", 256, "per runner process"),
    ]),
    ("retry", "Failed deliveries are retried with backoff, then dead-lettered (segfuncctl replay).", [
        ("max_attempts", 10, "first try + 9 retries over about 4 hours, as Segment does"),
        ("base_delay_s", 30.0, "doubling each time, with jitter"),
    ]),
]


def starter_config() -> str:
    """A commented segfuncd.toml: the data written by tomli-w, the comments around it."""
    out = ["# segfuncd configuration, written by `segfuncctl init`. Every key is optional;",
           "# the values below are the defaults. Reference: the README's Configuration section.", ""]
    for section, comment, keys in _STARTER:
        out += [f"# {comment}", f"[{section}]"]
        for key, value, note in keys:
            line = tomli_w.dumps({key: value}).strip()
            out.append(f"{line}  # {note}" if note else line)
        out.append("")
    out += [
        "# One table per plugin file: plugins/example.js is [functions.example].",
        "# settings is the handler's `settings` argument; the values of apiKey and of the",
        "# settings named in secret_settings are redacted from logs.",
        tomli_w.dumps({"functions": {"example": {
            "enabled": True,
            "settings": {"apiKey": "replace-me", "endpoint": ""},
            "secret_settings": [],
        }}}).strip(),
        "",
    ]
    return "\n".join(out)


# --- the commands -------------------------------------------------------------------------


@click.group(context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES_HELP)
@click.option("--config", "config", metavar="PATH", type=click.Path(dir_okay=False),
              help="Config file (else $SEGFUNCD_CONFIG, ./segfuncd.toml, /etc/segfuncd/segfuncd.toml).")
@click.option("--socket", "socket", metavar="PATH", type=click.Path(dir_okay=False),
              help="Admin socket of the daemon (overrides the config's admin.socket).")
@click.version_option(__version__, "-V", "--version", prog_name="segfuncctl")
@click.pass_context
def cli(ctx: click.Context, config: str | None, socket: str | None) -> None:
    """Inspect and control a running segfuncd over its admin socket.

    \b
    Example:
      segfuncctl status
    """
    ctx.ensure_object(dict).update(config=config, socket=socket)


@cli.command(epilog=EXIT_CODES_HELP, short_help="Daemon health, queue depth, each function's state and latency.")
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Daemon health, queue depth and every function's state, counts and latency.

    \b
    Example:
      segfuncctl status
      segfuncctl status --json | jq '.functions[] | {name, state, dead}'
    """
    data = _client(ctx).get_json("/status")
    if as_json:
        _print_json(data)
    else:
        click.echo(render_status(data))


@cli.command(epilog=EXIT_CODES_HELP, short_help="Functions' console output and the daemon's events.")
@click.argument("function", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines as they are written (Ctrl-C stops).")
@click.option("-n", "--lines", "n", type=click.IntRange(0, 10_000), default=20, show_default=True,
              help="How many of the newest lines to print first.")
@click.option("--level", metavar="LEVEL", help="Only lines at this level or above (debug, info, warn, error).")
@json_option
@click.pass_context
def logs(ctx: click.Context, function: str | None, follow: bool, n: int, level: str | None, as_json: bool) -> None:
    """The functions' console output and the daemon's own events, newest last.

    FUNCTION limits the output to one function's lines.

    \b
    Example:
      segfuncctl logs -n 50 teams
      segfuncctl logs -f --level warn
    """
    client = _client(ctx)
    params = {"n": n, "function": function, "level": level}
    if follow:
        for line in client.stream_lines("/logs", follow=1, **params):
            if not line.strip():
                continue  # keep-alive
            click.echo(line if as_json else render_log_line(json.loads(line)))
        return
    data = client.get_json("/logs", **params)
    for record in data["logs"]:
        click.echo(json.dumps(record, default=str) if as_json else render_log_line(record))


@cli.command(epilog=EXIT_CODES_HELP, short_help="Run a test event through a function now (Send Test Event).")
@click.argument("function")
@click.argument("event_file", metavar="[EVENT.json | -]", required=False, type=click.File("r"))
@click.option("--settings", "settings_file", metavar="FILE", type=click.File("r"),
              help="JSON object of settings to use instead of the configured ones (merged over them).")
@json_option
@click.pass_context
def test(ctx: click.Context, function: str, event_file: Any, settings_file: Any, as_json: bool) -> None:
    """Run one event through FUNCTION's current version now, like the editor's Send Test Event.

    Prints the Callback Return (the returned value, or the error thrown), the Log Output and
    the requests the function made. Nothing is queued and nothing counts as a delivery.
    EVENT.json holds one event or an array of events; "-" reads standard input; without it a
    sample event of a type the function handles is used.

    \b
    Example:
      segfuncctl test teams event.json
      echo '{"type": "track", "event": "Signed Up", "userId": "u1"}' | segfuncctl test teams -
    """
    body: dict[str, Any] = {"function": function}
    if event_file is not None:
        payload = _read_json(event_file, "EVENT")
        if isinstance(payload, list):
            body["events"] = payload
        elif isinstance(payload, dict):
            body["event"] = payload
        else:
            raise click.BadParameter("expected a JSON object or an array of objects", param_hint="EVENT.json")
    if settings_file is not None:
        settings = _read_json(settings_file, "--settings")
        if not isinstance(settings, dict):
            raise click.BadParameter("expected a JSON object", param_hint="--settings")
        body["settings"] = settings
    data = _client(ctx).post_json("/test", body, timeout=TEST_TIMEOUT_S)
    if as_json:
        _print_json(data)
    else:
        click.echo(render_test(data))
    if any(r.get("error") for r in data.get("results", [])):
        ctx.exit(EXIT_FAILED)


def _read_json(f: Any, what: str) -> Any:
    try:
        return json.load(f)
    except ValueError as exc:
        raise click.BadParameter(f"{getattr(f, 'name', '?')}: not JSON: {exc}", param_hint=what) from exc


@cli.command(epilog=EXIT_CODES_HELP, short_help="Re-read the config and the plugins now.")
@click.pass_context
def reload(ctx: click.Context) -> None:
    """Re-read the config and the plugins now (the daemon also does it by itself).

    \b
    Example:
      segfuncctl reload
    """
    data = _client(ctx).post_json("/reload", {})
    click.echo(data.get("message") or "reloaded")


@cli.command(epilog=EXIT_CODES_HELP, short_help="Move dead letters back to pending.")
@click.argument("function", required=False)
@click.option("--id", "delivery_id", type=int, help="Replay only this delivery.")
@click.pass_context
def replay(ctx: click.Context, function: str | None, delivery_id: int | None) -> None:
    """Move dead-lettered deliveries back to pending, so they are tried again now.

    Without FUNCTION or --id, every dead letter is replayed.

    \b
    Example:
      segfuncctl replay teams
      segfuncctl replay --id 1234
    """
    data = _client(ctx).post_json("/replay", {"function": function, "id": delivery_id})
    n = int(data.get("replayed", 0))
    scope = f" of {function}" if function else ""
    scope += f" (id {delivery_id})" if delivery_id is not None else ""
    click.echo(f"replayed {n} dead-lettered {'delivery' if n == 1 else 'deliveries'}{scope}")


@cli.command(epilog=EXIT_CODES_HELP, short_help="List deliveries, or show one with every attempt.")
@click.argument("args", metavar="[FUNCTION] | show ID", nargs=-1)
@click.option("--state", type=click.Choice(["dead", "retrying", "pending", "leased", "delivered", "discarded", "filtered"]),
              help="Only deliveries in this state.")
@click.option("-n", "n", type=click.IntRange(1, 10_000), default=20, show_default=True, help="How many, newest first.")
@json_option
@click.pass_context
def deliveries(ctx: click.Context, args: tuple[str, ...], state: str | None, n: int, as_json: bool) -> None:
    """List deliveries, or show one with its event and every attempt.

    \b
    Example:
      segfuncctl deliveries teams --state dead
      segfuncctl deliveries show 1234
    """
    client = _client(ctx)
    if args and args[0] == "show":
        if len(args) != 2 or not args[1].isdigit():
            raise click.UsageError("usage: segfuncctl deliveries show ID")
        data = client.get_json(f"/deliveries/{int(args[1])}")
        _print_json(data) if as_json else click.echo(render_delivery(data))
        return
    if len(args) > 1:
        raise click.UsageError("expected at most one FUNCTION")
    data = client.get_json("/deliveries", function=args[0] if args else None, state=state, n=n)
    _print_json(data) if as_json else click.echo(render_deliveries(data))


@cli.command(epilog=EXIT_CODES_HELP, short_help="Write a starter segfuncd.toml and an example plugin.")
@click.argument("directory", metavar="[DIR]", default=".", type=click.Path(file_okay=False))
def init(directory: str) -> None:
    """Write a commented starter segfuncd.toml and an example plugin into DIR.

    Existing files are never overwritten.

    \b
    Example:
      segfuncctl init /etc/segfuncd && segfuncd --config /etc/segfuncd/segfuncd.toml
    """
    root = Path(directory)
    config_path, plugin_path = root / "segfuncd.toml", root / "plugins" / "example.js"
    existing = [str(p) for p in (config_path, plugin_path) if p.exists()]
    if existing:
        raise CtlError(f"refusing to overwrite {', '.join(existing)}")
    plugin_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(starter_config(), encoding="utf-8")
    plugin_path.write_text(EXAMPLE_PLUGIN, encoding="utf-8")
    click.echo(f"wrote {config_path}\nwrote {plugin_path}\nstart with: segfuncd --config {config_path}")


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point: operator mistakes print one line; bugs keep their traceback."""
    try:
        code = cli.main(args=argv, prog_name="segfuncctl", standalone_mode=False)
    except SegfuncdError as exc:
        click.echo(f"segfuncctl: {exc}", err=True)
        sys.exit(EXIT_FAILED if isinstance(exc, CtlError) else EXIT_UNREACHABLE)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)  # Ctrl-C ends `logs -f`: not an error worth a traceback
    except BrokenPipeError:
        sys.exit(EXIT_OK)  # `segfuncctl logs | head`
    sys.exit(code if isinstance(code, int) else EXIT_OK)


if __name__ == "__main__":
    main()
