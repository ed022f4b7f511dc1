"""Log lines shared through the cluster's log stream (`segfuncctl logs --cluster`); pure.

Each node publishes one message per `append_logs` call: a JSON array of its lines, each
with `fields.node`. Reading takes the newest messages and keeps the newest matching lines.
Lines come from other nodes: anything malformed is skipped, never trusted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..store import LogRecord
from ..store.models import LOG_LEVELS

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False, default=str).encode


def encode(records: Sequence[LogRecord], node: str) -> bytes:
    """One message's payload: `records` as a JSON array, each tagged with `node`."""
    return _encode([_log_json(r, node) for r in records]).encode("ascii")


def newest(
    batches: Sequence[bytes],
    *,
    limit: int,
    function: str | None = None,
    level: str | None = None,
    message_id: str | None = None,
) -> list[LogRecord]:
    """The newest `limit` lines matching the filters, oldest first; `batches` newest first."""
    out: list[LogRecord] = []
    for raw in batches:
        try:
            items = json.loads(raw)
        except ValueError:
            continue
        for item in items if isinstance(items, list) else []:
            record = _log_record(item)
            if record is None:
                continue
            if function is not None and record.function != function:
                continue
            if message_id is not None and record.message_id != message_id:
                continue
            if not _at_least(record.level, level):
                continue
            out.append(record)
        if len(out) >= 4 * limit:
            break
    out.sort(key=lambda r: r.time)
    return out[-limit:] if limit else []


def _at_least(level: str, minimum: str | None) -> bool:
    """`--level minimum` for a line at `level` (unknown levels match only themselves)."""
    if not minimum:
        return True
    try:
        return LOG_LEVELS.index(level.lower()) >= LOG_LEVELS.index(minimum.lower())
    except ValueError:
        return level.lower() == minimum.lower()


def _log_json(r: LogRecord, node: str) -> dict[str, Any]:
    return {
        "time": r.time,
        "level": r.level,
        "source": r.source,
        "function": r.function,
        "version": r.version,
        "message_id": r.message_id,
        "outcome": r.outcome,
        "message": r.message,
        "fields": {**{k: v for k, v in r.fields.items() if isinstance(v, (str, int, float, bool))}, "node": node},
    }


def _log_record(item: Any) -> LogRecord | None:
    """A log line from another node; None when it is not one (the stream is shared)."""
    if not isinstance(item, dict):
        return None
    try:
        fields = item.get("fields")
        return LogRecord(
            time=float(item["time"]),
            level=str(item["level"]),
            source=str(item["source"]),
            function=None if item.get("function") is None else str(item["function"]),
            version=None if item.get("version") is None else str(item["version"]),
            message_id=None if item.get("message_id") is None else str(item["message_id"]),
            outcome=None if item.get("outcome") is None else str(item["outcome"]),
            message=str(item["message"]),
            fields=dict(fields) if isinstance(fields, dict) else {},
        )
    except (KeyError, TypeError, ValueError):
        return None
