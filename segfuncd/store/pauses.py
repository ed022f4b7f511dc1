"""The paused_functions table: which functions `segfuncctl pause` holds (survives restarts)."""

from __future__ import annotations

import sqlite3


def set_paused(conn: sqlite3.Connection, now: float, function: str, paused: bool) -> bool:
    """Add or remove `function`; True when the table changed."""
    if paused:
        cur = conn.execute(
            "INSERT INTO paused_functions (function, paused_at) VALUES (?, ?) ON CONFLICT (function) DO NOTHING",
            (function, now),
        )
    else:
        cur = conn.execute("DELETE FROM paused_functions WHERE function = ?", (function,))
    return cur.rowcount > 0


def paused(conn: sqlite3.Connection) -> frozenset[str]:
    return frozenset(row[0] for row in conn.execute("SELECT function FROM paused_functions"))
