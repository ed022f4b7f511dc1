"""The bounded log table behind `segfuncctl logs`, and waiting for new lines (`-f`).

The table keeps at most `log_lines` rows, shared fairly (issue 10): each function's
lines are one share and the daemon's own lines another. When an append goes over the
bound, the largest shares are cut back to an equal level (max-min fair, `fair_levels`),
oldest lines first, so a function that floods its console trims its own history and
never pushes out another function's lines (nor the daemon's) while those stay within
their share. Row counts per share live in `LogShares`, owned by the writer thread and
loaded once from the table. Followers do not poll the table: the Store signals a
trio.Event after each committed append, and `wait_logs` wakes on it.
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


DAEMON_SHARE = None  # the share key of the daemon's own lines; a function's is its name
_SHARE_OF_ROW = "CASE WHEN source = 'daemon' THEN NULL ELSE coalesce(function, '') END"


def share_of(record: LogRecord) -> str | None:
    return DAEMON_SHARE if record.source == "daemon" else (record.function or "")


class LogShares:
    """Rows in the log table per share; used only on the writer thread."""

    def __init__(self, counts: dict[str | None, int]) -> None:
        self.counts = counts

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> LogShares:
        rows = conn.execute(f"SELECT {_SHARE_OF_ROW}, count(*) FROM logs GROUP BY 1").fetchall()
        return cls({share: int(n) for share, n in rows})

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def fair_levels(counts: dict[str | None, int], keep: int) -> dict[str | None, int]:
    """How many rows each share over the fair level must drop so that at most `keep` remain.

    Water-filling: shares below the level keep everything; the rest are cut to the level.
    """
    if sum(counts.values()) <= keep:
        return {}
    order = sorted(counts.items(), key=lambda kv: kv[1])
    remaining = max(0, keep)
    cuts: dict[str | None, int] = {}
    for i, (_share, n) in enumerate(order):
        level = remaining // (len(order) - i)
        if n <= level:
            remaining -= n
            continue
        for other, m in order[i:]:
            if m > level:
                cuts[other] = m - level
        break
    return cuts


def append(
    conn: sqlite3.Connection,
    ids: IdCounters,
    records: Sequence[LogRecord],
    *,
    keep: int,
    shares: LogShares | None = None,
) -> int:
    """Insert `records`, trim the table to `keep` rows fairly; returns the newest id (0: none).

    `shares` is the writer's running count (loaded from the table when None).
    """
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
        if shares is None:
            shares = LogShares.load(conn)
        else:
            for r in records:
                key = share_of(r)
                shares.counts[key] = shares.counts.get(key, 0) + 1
        counts = shares.counts
        for share, drop in fair_levels(counts, keep).items():
            _drop_oldest(conn, share, drop)
            counts[share] -= drop
            if not counts[share]:
                del counts[share]
        ids.log = next_id
    return next_id - 1


def _drop_oldest(conn: sqlite3.Connection, share: str | None, n: int) -> None:
    args: tuple[str, ...] = ()
    if share is DAEMON_SHARE:
        where = "source = 'daemon'"
    else:
        where, args = "source != 'daemon' AND coalesce(function, '') = ?", (share,)
    conn.execute(f"DELETE FROM logs WHERE id IN (SELECT id FROM logs WHERE {where} ORDER BY id LIMIT ?)", (*args, n))


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
