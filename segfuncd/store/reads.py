"""Read-only queries for admin: delivery listings, one delivery in full, status figures.

Run on the reader thread's connection, each inside one read transaction (a snapshot).
"""

from __future__ import annotations

import json
import sqlite3

from ..outcomes import DeliveryState
from .models import AttemptRecord, DeliveryDetail, DeliverySummary, FunctionStats
from .schema import ACTIVE
from .stats import read_function_stats, totals

_SUMMARY = (
    "SELECT d.id, d.function, e.message_id, e.type, d.state, d.attempts, d.due_at, d.created_at, "
    "d.updated_at, d.version, d.last_error, d.note, e.source FROM deliveries AS d JOIN events AS e ON e.id = d.event_id"
)


def summary(row: tuple[object, ...]) -> DeliverySummary:
    """A summary row (id, function, message_id, type, state, attempts, due_at, created_at,
    updated_at, version, last_error, note, source) as a DeliverySummary; cluster_records.py
    selects the same columns."""
    i, fn, mid, typ, state, attempts, due, created, updated, version, error, note, source = row
    return DeliverySummary(
        id=int(i),  # type: ignore[call-overload]
        function=str(fn),
        message_id=str(mid),
        type=str(typ),
        state=DeliveryState(state),
        attempts=int(attempts),  # type: ignore[call-overload]
        next_attempt_at=None if due is None else float(due),  # type: ignore[arg-type]
        created_at=float(created),  # type: ignore[arg-type]
        updated_at=float(updated),  # type: ignore[arg-type]
        version=None if version is None else str(version),
        last_error=None if error is None else str(error),
        note=None if note is None else str(note),
        source=str(source or ""),
    )


def deliveries(
    conn: sqlite3.Connection, *, function: str | None, state: str | None, limit: int, message_id: str | None = None
) -> list[DeliverySummary]:
    """Newest first. `state` is a DeliveryState value ("dead", "pending", ...)."""
    where = []
    args: list[object] = []
    if state is not None:
        DeliveryState(state)  # ValueError for a state that does not exist
        where.append("d.state = ?")
        args.append(state)
    if function is not None:
        where.append("d.function = ?")
        args.append(function)
    if message_id is not None:
        # No index on events.message_id (it would cost every insert): admin lookups scan.
        where.append("d.event_id IN (SELECT id FROM events WHERE message_id = ?)")
        args.append(message_id)
    sql = _SUMMARY + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY d.id DESC LIMIT ?"
    return [summary(row) for row in conn.execute(sql, [*args, limit])]


def delivery_summary(conn: sqlite3.Connection, delivery_id: int) -> DeliverySummary | None:
    """One delivery row as listed; None when unknown."""
    row = conn.execute(_SUMMARY + " WHERE d.id = ?", (delivery_id,)).fetchone()
    return None if row is None else summary(row)


def delivery(conn: sqlite3.Connection, delivery_id: int) -> DeliveryDetail | None:
    """The row, its event, and its attempts oldest first."""
    row = conn.execute(_SUMMARY + " WHERE d.id = ?", (delivery_id,)).fetchone()
    if row is None:
        return None
    (body,) = conn.execute(
        "SELECT body FROM events WHERE id = (SELECT event_id FROM deliveries WHERE id = ?)", (delivery_id,)
    ).fetchone()
    attempts = tuple(
        AttemptRecord(number=n, time=at, version=v, outcome=o, error=err, duration_ms=ms, detail=detail)
        for n, at, v, o, err, ms, detail in conn.execute(
            "SELECT number, at, version, outcome, error, duration_ms, detail FROM attempts "
            "WHERE delivery_id = ? ORDER BY id",
            (delivery_id,),
        )
    )
    return DeliveryDetail(summary=summary(row), event=json.loads(body), attempts=attempts)


def stats(conn: sqlite3.Connection) -> tuple[dict[str, FunctionStats], int, float | None]:
    """(per-function counters, dead total, created_at of the oldest pending delivery)."""
    functions = read_function_stats(conn)
    _pending, dead = totals(conn)
    (oldest,) = conn.execute(
        f"SELECT min(created_at) FROM deliveries INDEXED BY ix_deliveries_active_created WHERE {ACTIVE}"
    ).fetchone()
    return functions, dead, None if oldest is None else float(oldest)
