"""Per-function counters: bumped in the same transaction as the rows they count.

`status` reads `function_stats` (one row per function) and never scans deliveries.
Counters only grow; the gauges (`pending`, `retrying`, `dead`) move both ways.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from typing import Any

from .models import FunctionStats

COUNTERS = (
    "accepted",
    "delivered",
    "discarded",
    "filtered",
    "failed",
    "retried",
    "dead_lettered",
    "replayed",
    "attempts",
    "duration_ms_total",
    "pending",
    "retrying",
    "dead",
)
_INDEX = {name: i for i, name in enumerate(COUNTERS)}

# One statement for every bump, so sqlite3's statement cache keeps it prepared.
_BUMP_SQL = (
    f"INSERT INTO function_stats (function, {', '.join(COUNTERS)}, last_error, last_error_at, last_delivered_at) "
    f"VALUES (?, {', '.join('?' for _ in COUNTERS)}, ?, ?, ?) "
    "ON CONFLICT (function) DO UPDATE SET "
    + ", ".join(f"{c} = {c} + excluded.{c}" for c in COUNTERS)
    + ", last_error = coalesce(excluded.last_error, last_error)"
    ", last_error_at = coalesce(excluded.last_error_at, last_error_at)"
    ", last_delivered_at = coalesce(excluded.last_delivered_at, last_delivered_at)"
)
_REASON_SQL = (
    "INSERT INTO function_reasons (function, kind, reason, count) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (function, kind, reason) DO UPDATE SET count = count + excluded.count"
)


class Bumps:
    """Counter deltas gathered while a job runs, written with one executemany."""

    __slots__ = ("_rows", "_reasons")

    def __init__(self) -> None:
        self._rows: dict[str, list[Any]] = {}
        self._reasons: defaultdict[tuple[str, str, str], int] = defaultdict(int)

    def _row(self, function: str) -> list[Any]:
        row = self._rows.get(function)
        if row is None:
            row = self._rows[function] = [0] * len(COUNTERS) + [None, None, None]
        return row

    def add(self, function: str, **deltas: float) -> None:
        row = self._row(function)
        for name, delta in deltas.items():
            row[_INDEX[name]] += delta

    def error(self, function: str, error: str, at: float) -> None:
        row = self._row(function)
        row[-3], row[-2] = error, at

    def delivered_at(self, function: str, at: float) -> None:
        self._row(function)[-1] = at

    def reason(self, function: str, kind: str, reason: str) -> None:
        self._reasons[(function, kind, reason)] += 1

    def write(self, conn: sqlite3.Connection) -> None:
        if self._rows:
            conn.executemany(_BUMP_SQL, [(f, *row) for f, row in self._rows.items()])
        if self._reasons:
            conn.executemany(_REASON_SQL, [(*key, n) for key, n in self._reasons.items()])


def read_function_stats(conn: sqlite3.Connection) -> dict[str, FunctionStats]:
    """Every function's counters, with the discard / filter reasons folded in."""
    reasons: defaultdict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for function, kind, reason, count in conn.execute("SELECT function, kind, reason, count FROM function_reasons"):
        reasons[(function, kind)][reason] = count
    cols = ", ".join(COUNTERS)
    out = {}
    for row in conn.execute(
        f"SELECT function, {cols}, last_error, last_error_at, last_delivered_at FROM function_stats ORDER BY function"
    ):
        function = row[0]
        values = dict(zip(COUNTERS, row[1 : 1 + len(COUNTERS)], strict=True))
        out[function] = FunctionStats(
            function=function,
            **values,
            last_error=row[-3],
            last_error_at=row[-2],
            last_delivered_at=row[-1],
            discarded_by_reason=reasons.get((function, "discarded"), {}),
            filtered_by_reason=reasons.get((function, "filtered"), {}),
        )
    return out


def totals(conn: sqlite3.Connection) -> tuple[int, int]:
    """(pending + leased, dead) summed over functions."""
    pending, dead = conn.execute(
        "SELECT coalesce(sum(pending), 0), coalesce(sum(dead), 0) FROM function_stats"
    ).fetchone()
    return int(pending), int(dead)
