"""Per-minute delivery counters and error groups: what the web console charts, kept small.

Two tables (migration m006_timeline), bumped in the same transaction as the completions
they count, so the console never scans deliveries or attempts to draw a chart:

    function_minutes  (function, minute) -> delivered / retried / dead / discarded / failed
                      counts, attempts, summed and max latency. `minute` is epoch // 60.
    function_errors   (function, name, message) -> count, first / last time seen; the
                      message is cut to MAX_ERROR_MESSAGE characters so a message that
                      embeds ids cannot grow the key without bound.

Both are pruned by age (`prune`, called by the retention pass). Reads: `timeline` answers
buckets of `step_minutes` over a time range (one PK range scan per function), `error_groups`
the most frequent errors of one function.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass

from ..outcomes import DeliveryState, InvocationResult, Outcome
from .schema import ACTIVE

MAX_ERROR_MESSAGE = 300
MINUTES_KEPT = 8 * 24 * 60  # a week and a day of minutes
ERRORS_KEPT_S = 8 * 86_400  # error groups not seen for this long are dropped

_MINUTE_COLS = ("delivered", "retried", "dead", "discarded", "failed", "attempts", "duration_ms_total")
_MINUTE_SQL = (
    f"INSERT INTO function_minutes (function, minute, {', '.join(_MINUTE_COLS)}, duration_ms_max) "
    f"VALUES (?, ?, {', '.join('?' for _ in _MINUTE_COLS)}, ?) "
    "ON CONFLICT (function, minute) DO UPDATE SET "
    + ", ".join(f"{c} = {c} + excluded.{c}" for c in _MINUTE_COLS)
    + ", duration_ms_max = max(duration_ms_max, excluded.duration_ms_max)"
)
_ERROR_SQL = (
    "INSERT INTO function_errors (function, name, message, count, first_at, last_at) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (function, name, message) DO UPDATE SET count = count + excluded.count, "
    "last_at = max(last_at, excluded.last_at)"
)

RETRYING = f"{ACTIVE} AND attempts > 0"  # must match ix_deliveries_retrying's WHERE exactly

CREATE_SQL = f"""
    CREATE TABLE function_minutes (
        function TEXT NOT NULL,
        minute INTEGER NOT NULL,          -- unix time // 60
        delivered INTEGER NOT NULL DEFAULT 0,
        retried INTEGER NOT NULL DEFAULT 0,   -- attempts that failed and will be retried
        dead INTEGER NOT NULL DEFAULT 0,      -- deliveries dead-lettered in this minute
        discarded INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,    -- FAILED outcomes (a bug in the function)
        attempts INTEGER NOT NULL DEFAULT 0,
        duration_ms_total REAL NOT NULL DEFAULT 0,
        duration_ms_max REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (function, minute)
    ) WITHOUT ROWID;
    CREATE INDEX ix_function_minutes_minute ON function_minutes(minute);
    CREATE TABLE function_errors (
        function TEXT NOT NULL,
        name TEXT NOT NULL,
        message TEXT NOT NULL,
        count INTEGER NOT NULL DEFAULT 0,
        first_at REAL NOT NULL,
        last_at REAL NOT NULL,
        PRIMARY KEY (function, name, message)
    ) WITHOUT ROWID;
    -- Deliveries waiting for a retry, per function, newest first. A row enters only once it
    -- has failed (attempts > 0), so accepting and delivering at the first try never pay.
    CREATE INDEX ix_deliveries_retrying ON deliveries(function, created_at) WHERE {RETRYING};
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class MinuteBucket:
    """Counts of one function over `[start, start + step_s)` (unix seconds)."""

    function: str
    start: float
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    discarded: int = 0
    failed: int = 0
    attempts: int = 0
    duration_ms_total: float = 0.0
    duration_ms_max: float = 0.0

    @property
    def mean_ms(self) -> float | None:
        return self.duration_ms_total / self.attempts if self.attempts else None

    @property
    def success_rate(self) -> float | None:
        return self.delivered / self.attempts if self.attempts else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorGroup:
    """One error name + message a function threw, and how often."""

    name: str
    message: str
    count: int
    first_at: float
    last_at: float


class MinuteBumps:
    """Per-minute deltas gathered while a `complete` job runs, written with one executemany."""

    __slots__ = ("_rows", "_errors")

    def __init__(self) -> None:
        self._rows: dict[tuple[str, int], list[float]] = {}
        self._errors: defaultdict[tuple[str, str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])

    def record(self, function: str, now: float, result: InvocationResult, state: DeliveryState) -> None:
        """Count one attempt's outcome (and the delivery's new state) in `now`'s minute."""
        key = (function, int(now // 60))
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = [0.0] * (len(_MINUTE_COLS) + 1)
        outcome = result.outcome
        row[0] += outcome is Outcome.DELIVERED
        row[1] += outcome is Outcome.RETRY and state is DeliveryState.PENDING
        row[2] += state is DeliveryState.DEAD
        row[3] += outcome is Outcome.DISCARDED
        row[4] += outcome is Outcome.FAILED
        row[5] += 1
        row[6] += result.duration_ms
        row[7] = max(row[7], result.duration_ms)
        if result.error_name is not None:
            err = self._errors[(function, result.error_name, (result.error_message or "")[:MAX_ERROR_MESSAGE])]
            err[0] += 1
            err[1] = err[1] or now
            err[2] = now

    def write(self, conn: sqlite3.Connection) -> None:
        if self._rows:
            conn.executemany(
                _MINUTE_SQL,
                [(f, m, *(int(v) for v in row[:5]), int(row[5]), row[6], row[7]) for (f, m), row in self._rows.items()],
            )
        if self._errors:
            conn.executemany(_ERROR_SQL, [(*key, int(n), t0, t1) for key, (n, t0, t1) in self._errors.items()])


def timeline(
    conn: sqlite3.Connection, *, function: str | None, since: float, until: float, step_minutes: int
) -> list[MinuteBucket]:
    """Non-empty buckets of `step_minutes` in [since, until), per function, oldest first."""
    step = max(1, int(step_minutes))
    lo, hi = int(since // 60), int(until // 60)
    cols = ", ".join(f"sum({c})" for c in _MINUTE_COLS)
    sql = (
        f"SELECT function, (minute / {step}) * {step} AS b, {cols}, max(duration_ms_max) "
        "FROM function_minutes WHERE minute >= ? AND minute < ?"
    )
    args: list[object] = [lo, hi]
    if function is not None:
        sql += " AND function = ?"
        args.append(function)
    sql += " GROUP BY function, b ORDER BY function, b"
    return [
        MinuteBucket(
            function=fn,
            start=float(b * 60),
            delivered=d,
            retried=r,
            dead=x,
            discarded=ds,
            failed=fl,
            attempts=a,
            duration_ms_total=float(ms or 0.0),
            duration_ms_max=float(mx or 0.0),
        )
        for fn, b, d, r, x, ds, fl, a, ms, mx in conn.execute(sql, args)
    ]


def error_groups(conn: sqlite3.Connection, *, function: str, limit: int) -> list[ErrorGroup]:
    """The function's errors grouped by name and message, most frequent first."""
    return [
        ErrorGroup(name=n, message=m, count=c, first_at=t0, last_at=t1)
        for n, m, c, t0, t1 in conn.execute(
            "SELECT name, message, count, first_at, last_at FROM function_errors WHERE function = ? "
            "ORDER BY count DESC, last_at DESC LIMIT ?",
            (function, limit),
        )
    ]


def prune(conn: sqlite3.Connection, now: float) -> int:
    """Drop minutes and error groups older than what the console shows; rows removed."""
    n = conn.execute("DELETE FROM function_minutes WHERE minute < ?", (int(now // 60) - MINUTES_KEPT,)).rowcount
    n += conn.execute("DELETE FROM function_errors WHERE last_at < ?", (now - ERRORS_KEPT_S,)).rowcount
    return int(n)


def retrying(conn: sqlite3.Connection, *, function: str, limit: int) -> list[int]:
    """Ids of the function's newest deliveries that failed and wait for a retry (one index range)."""
    return [
        int(i)
        for (i,) in conn.execute(
            "SELECT id FROM deliveries INDEXED BY ix_deliveries_retrying "
            f"WHERE {RETRYING} AND function = ? ORDER BY created_at DESC LIMIT ?",
            (function, limit),
        )
    ]
