"""The bounded log table behind `segfuncctl logs`, and waiting for new lines (`-f`).

The table keeps the newest `log_lines` rows: every append deletes what fell off the end
(ids are consecutive, so that is one range delete). Followers do not poll the table: the
Store signals a trio.Event after each committed append, and `wait_logs` wakes on it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from .ingest import IdCounters
from .models import LOG_LEVELS, LogRecord

_INSERT = (
    "INSERT INTO logs (id, time, level, source, function, version, message_id, outcome, message, fields) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_COLUMNS = "id, time, level, source, function, version, message_id, outcome, message, fields"


def append(conn: sqlite3.Connection, ids: IdCounters, records: Sequence[LogRecord], *, keep: int) -> int:
    """Insert `records`, trim the table to `keep` rows; returns the newest id (0: none)."""
    rows = []
    next_id = ids.log
    for r in records:
        fields = json.dumps(dict(r.fields), default=str, separators=(",", ":"))
        rows.append(
            (next_id, r.time, r.level, r.source, r.function, r.version, r.message_id, r.outcome, r.message, fields)
        )
        next_id += 1
    if rows:
        conn.executemany(_INSERT, rows)
        conn.execute("DELETE FROM logs WHERE id <= ?", (next_id - 1 - keep,))
        ids.log = next_id
    return next_id - 1


def newest_id(conn: sqlite3.Connection) -> int:
    (top,) = conn.execute("SELECT coalesce(max(id), 0) FROM logs").fetchone()
    return int(top)


def read(
    conn: sqlite3.Connection,
    *,
    after_id: int | None,
    limit: int,
    function: str | None,
    level: str | None,
    message_id: str | None = None,
) -> list[LogRecord]:
    """Newest `limit` lines by time (after_id None), or the first `limit` by id after
    `after_id` (a follower's cursor); oldest first either way.

    By time, because daemon events are pumped into the table in batches, after function
    lines that happened later: `logs -n` must still end with the latest thing that happened.
    """
    where = []
    args: list[object] = []
    if after_id is not None:
        where.append("id > ?")
        args.append(after_id)
    if function is not None:
        where.append("function = ?")
        args.append(function)
    if message_id is not None:
        where.append("message_id = ?")
        args.append(message_id)
    if level is not None:
        where.append(f"level IN ({', '.join('?' for _ in levels_from(level))})")
        args.extend(levels_from(level))
    sql = f"SELECT {_COLUMNS} FROM logs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if after_id is None:
        sql += " ORDER BY time DESC, id DESC LIMIT ?"
    else:
        sql += " ORDER BY id LIMIT ?"
    rows = conn.execute(sql, [*args, limit]).fetchall()
    if after_id is None:
        rows.reverse()
    return [
        LogRecord(
            id=r[0],
            time=r[1],
            level=r[2],
            source=r[3],
            function=r[4],
            version=r[5],
            message_id=r[6],
            outcome=r[7],
            message=r[8],
            fields=json.loads(r[9]),
        )
        for r in rows
    ]


def levels_from(level: str) -> tuple[str, ...]:
    """`level` and every more severe one (unknown levels match only themselves)."""
    level = level.lower()
    if level not in LOG_LEVELS:
        return (level,)
    return LOG_LEVELS[LOG_LEVELS.index(level) :]
