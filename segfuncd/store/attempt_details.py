"""Bounds on attempt records (the `attempts.detail` JSON): the newest KEEP_PER_FUNCTION per function.

A record is deleted with its attempt row when retention prunes the delivery; besides
that, each retention pass clears the records of a function beyond its newest
KEEP_PER_FUNCTION (the attempt row itself, its outcome and error, stays), so a function
failing in a loop cannot fill the disk with request bodies. segfuncd.attempts caps one
record at ~64 KB, so a function's records stay under ~64 MB, typically a few MB.
"""

from __future__ import annotations

import sqlite3

KEEP_PER_FUNCTION = 1000

_TRIM = (
    "UPDATE attempts SET detail = NULL WHERE id IN ("
    "SELECT a.id FROM attempts AS a JOIN deliveries AS d ON d.id = a.delivery_id "
    "WHERE d.function = ? AND a.detail IS NOT NULL ORDER BY a.id DESC LIMIT -1 OFFSET ?)"
)


def trim(conn: sqlite3.Connection, now: float, *, keep: int = KEEP_PER_FUNCTION) -> int:
    """Clear records beyond the newest `keep` of each function; how many were cleared."""
    functions = [row[0] for row in conn.execute("SELECT function FROM function_stats")]
    return sum(conn.execute(_TRIM, (function, keep)).rowcount for function in functions)
