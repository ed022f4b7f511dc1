"""The admin API's pure views: JSON shaping for /status, /logs and /test, and sample events.

Here: `plain` (dataclasses and enums -> JSON-safe data), `function_status` (one function's
row of /status), `result_dict` (one /test result, redacted), `first_line`, the log-level
filter, and `sample_event` / `sample_type` for `segfuncctl test` without an event. Plain
functions over plain data: no trio, no store, no request handling. Not here: routing,
request validation, log following and the calls into the store, registry and runner pool
(`admin.py`).
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import __version__
from .outcomes import InvocationResult
from .redact import Redactor

if TYPE_CHECKING:
    from .plugins import PluginState

LEVELS = ("debug", "log", "info", "warn", "warning", "error", "critical")  # increasing severity

# handler name -> event type, in the order a sample event is chosen
_HANDLER_TYPES = (
    ("onTrack", "track"),
    ("track", "track"),
    ("onIdentify", "identify"),
    ("identify", "identify"),
    ("onPage", "page"),
    ("page", "page"),
    ("onScreen", "screen"),
    ("screen", "screen"),
    ("onGroup", "group"),
    ("group", "group"),
    ("onAlias", "alias"),
    ("alias", "alias"),
    ("onDelete", "delete"),
)


def plain(value: Any) -> Any:
    """Dataclasses, enums, mappings and tuples -> JSON-safe data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def sample_event(event_type: str, *, now: float) -> dict[str, Any]:
    """A Segment-spec event of `event_type`, for `segfuncctl test` without an event."""
    ts = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    base: dict[str, Any] = {
        "type": event_type,
        "messageId": f"test-{uuid.uuid4()}",
        "userId": "test-user-id",
        "anonymousId": "test-anonymous-id",
        "timestamp": ts,
        "sentAt": ts,
        "receivedAt": ts,
        "originalTimestamp": ts,
        "channel": "server",
        "context": {"library": {"name": "segfuncctl", "version": __version__}, "ip": "127.0.0.1"},
        "integrations": {},
        "version": 2,
    }
    extra: dict[str, dict[str, Any]] = {
        "track": {"event": "Test Event", "properties": {"plan": "pro", "revenue": 42.5, "currency": "USD"}},
        "identify": {"traits": {"name": "Test User", "email": "test@example.com", "plan": "pro"}},
        "page": {
            "name": "Home",
            "properties": {"title": "Home", "path": "/", "url": "https://example.com/", "referrer": ""},
        },
        "screen": {"name": "Home", "properties": {"variation": "blue"}},
        "group": {"groupId": "test-group-id", "traits": {"name": "Example Inc.", "industry": "Technology"}},
        "alias": {"previousId": "test-previous-id"},
        "delete": {},
    }
    base.update(extra.get(event_type, {}))
    return base


def sample_type(handlers: tuple[str, ...]) -> str:
    """The event type a sample should have so that one of `handlers` runs (track by default)."""
    have = set(handlers)
    return next((t for h, t in _HANDLER_TYPES if h in have), "track")


def level_at_least(level: str | None, minimum: str | None) -> bool:
    """Whether a log record at `level` passes `--level minimum` (unknown levels match exactly)."""
    if not minimum:
        return True
    try:
        return LEVELS.index((level or "log").lower()) >= LEVELS.index(minimum.lower())
    except ValueError:
        return (level or "").lower() == minimum.lower()


def function_status(
    name: str, ps: PluginState | None, fs: Any, fm: Any, *, redactor: Redactor, plugins_dir: Any
) -> dict[str, Any]:
    """One function's row of /status: registry state `ps`, store counts `fs`, metrics windows `fm`."""
    if ps is None or ps.removed:
        state = "removed"
    elif not ps.enabled:
        state = "disabled"
    elif ps.error:
        state = "load error"
    elif ps.version is not None:
        state = "live"
    else:
        state = "loading"
    last_error, last_error_at = (fs.last_error, fs.last_error_at) if fs is not None else (None, None)
    if fm is not None and fm.last_error and (last_error_at is None or (fm.last_error_at or 0) > last_error_at):
        last_error, last_error_at = fm.last_error, fm.last_error_at
    error = redactor(ps.error) if ps is not None and ps.error else None
    windows = {}
    for key in ("last_5m", "last_24h"):
        w = getattr(fm, key) if fm is not None else None
        windows[key] = (
            plain(w)
            if w is not None
            else {"count": 0, "delivered": 0, "success_rate": None, "p50_ms": None, "p99_ms": None}
        )
    return {
        "name": name,
        "state": state,
        "error": error,
        "error_first_line": first_line(error, plugins_dir),
        "error_at": ps.error_at if ps is not None else None,
        "version": ps.version.hash if ps is not None and ps.version is not None else None,
        "loaded_at": ps.loaded_at if ps is not None else None,
        "handlers": list(ps.handlers) if ps is not None else [],
        "delivered": fs.delivered if fs is not None else 0,
        "discarded": dict(fs.discarded_by_reason) if fs is not None else {},
        "discarded_total": fs.discarded if fs is not None else 0,
        "filtered": fs.filtered if fs is not None else 0,
        "pending": fs.pending if fs is not None else 0,
        "retrying": fs.retrying if fs is not None else 0,
        "dead": fs.dead if fs is not None else 0,
        "attempts": fs.attempts if fs is not None else 0,
        **windows,
        "last_error": redactor(last_error) if last_error else None,
        "last_error_at": last_error_at,
    }


def result_dict(event_type: Any, r: InvocationResult, redact: Redactor) -> dict[str, Any]:
    """One test result: the return value as returned; logs, error and URLs redacted."""
    return {
        "type": event_type,
        "outcome": r.outcome.value,
        "return": r.value,
        "error": None
        if r.error_name is None
        else {"name": r.error_name, "message": redact(r.error_message or "")} | ({"stack": r.stack} if r.stack else {}),
        "logs": [{"level": ln.level, "message": redact(ln.message), "time": ln.time} for ln in r.logs],
        "requests": [
            {**plain(q), "url": redact(q.url), "error": redact(q.error) if q.error else None} for q in r.requests
        ],
        "duration_ms": r.duration_ms,
    }


def first_line(error: str | None, plugins_dir: Any) -> str | None:
    """The first line of a load error, with the plugins directory left off its file names."""
    if not error or not error.strip():
        return None
    return error.strip().splitlines()[0].replace(f"{plugins_dir}/", "")
