"""Retention: finished deliveries and their events go after `retention_s`; dead letters stay.

Pruning runs in chunks of `CHUNK` rows, each its own writer job, so accepts keep
committing between chunks instead of waiting behind one long delete.

Every statement here has a constant text: ids travel as one JSON parameter read with
`json_each`, never inlined into the SQL. (Inlined lists made a new 0.6 MB statement per
chunk, and the connection's statement cache kept them: memory grew with every prune.)

After a pass, `reclaim` hands free pages back to the file system (incremental
auto-vacuum, in chunks of RECLAIM_PAGES) and the writer truncates the WAL.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import sqlite3
from collections.abc import Callable

from .ingest import DEDUPE_WINDOW_S
from .schema import FINISHED

CHUNK = 5_000
RECLAIM_PAGES = 2_000  # pages freed per writer job (8 MB at 4 KiB pages)

_IDS = "SELECT value FROM json_each(?)"


def prune_deliveries(conn: sqlite3.Connection, now: float, *, retention_s: float) -> tuple[int, int]:
    """Delete up to CHUNK finished deliveries older than retention; (deliveries, attempts)."""
    victims = [
        row[0]
        for row in conn.execute(
            f"SELECT id FROM deliveries WHERE {FINISHED} AND updated_at < ? LIMIT ?",
            (now - retention_s, CHUNK),
        )
    ]
    if not victims:
        return 0, 0
    ids = json.dumps(victims)
    attempts = conn.execute(f"DELETE FROM attempts WHERE delivery_id IN ({_IDS})", (ids,)).rowcount
    deliveries = conn.execute(f"DELETE FROM deliveries WHERE id IN ({_IDS})", (ids,)).rowcount
    return deliveries, attempts


def prune_events(conn: sqlite3.Connection, now: float, *, retention_s: float, after_id: int) -> tuple[int, int | None]:
    """Delete, among the next CHUNK events after `after_id`, the old ones nothing refers to.

    Events are scanned in id order, which is arrival order; the scan stops at the first
    event younger than retention. Returns (deleted, id to resume after, or None when
    done), so old events still held by dead letters are stepped over, not rescanned.
    """
    cutoff = now - retention_s
    rows = conn.execute(
        "SELECT e.id, e.received_at, NOT EXISTS (SELECT 1 FROM deliveries AS d WHERE d.event_id = e.id) "
        "FROM events AS e WHERE e.id > ? ORDER BY e.id LIMIT ?",
        (after_id, CHUNK),
    ).fetchall()
    victims = []
    last = after_id
    for event_id, received_at, orphan in rows:
        if received_at >= cutoff:
            done = True
            break
        if orphan:
            victims.append(event_id)
        last = event_id
    else:
        done = len(rows) < CHUNK
    deleted = 0
    if victims:
        deleted = conn.execute(f"DELETE FROM events WHERE id IN ({_IDS})", (json.dumps(victims),)).rowcount
    return deleted, None if done else last


def prune_dedupe(conn: sqlite3.Connection, now: float) -> int:
    """Forget messageIds older than the 24 h dedupe window (up to CHUNK)."""
    cur = conn.execute(
        "DELETE FROM seen WHERE message_id IN (SELECT message_id FROM seen WHERE at < ? LIMIT ?)",
        (now - DEDUPE_WINDOW_S, CHUNK),
    )
    return cur.rowcount


def reclaim(conn: sqlite3.Connection, now: float) -> int:
    """Give up to RECLAIM_PAGES free pages back to the file system; how many are still free."""
    conn.execute(f"PRAGMA incremental_vacuum({RECLAIM_PAGES})").fetchall()
    (left,) = conn.execute("PRAGMA freelist_count").fetchone()
    return int(left)


def checkpoint(conn: sqlite3.Connection, now: float) -> None:
    """Copy the WAL into the database and truncate it, and give the page cache that the
    pass filled back to the allocator (run outside any transaction)."""
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    conn.execute("PRAGMA shrink_memory")
    _trim_heap()


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc: the allocator keeps its own policy
    return trim


_MALLOC_TRIM = _load_malloc_trim()


def _trim_heap() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them otherwise: a prune pass fills
    and frees tens of MB of page cache, and RSS would stay at its peak)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
