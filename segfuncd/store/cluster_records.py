"""Cluster mode's delivery records: what this node saw of the cluster's deliveries and ran of them.

In cluster mode (jetstream/) the queue lives in NATS, not in rows; each node still keeps its
own record, in its own SQLite file, of every delivery it ran an attempt of: the event, its
state as this node last saw it, and one row per attempt this node ran (outcome, error and
the attempt record, already redacted by the dispatcher, as the SQLite path stores them).
`segfuncctl deliveries` lists them, `deliveries show ID` shows one, and the console's
per-minute charts (timeline.py's tables, bumped here too) show this node's deliveries.

Two tables of their own (migration m012_cluster_records), apart from the SQLite queue's
`deliveries` / `attempts`: a record is never something the SQLite queue would lease or
replay, so a node switched back to `backend = "sqlite"` cannot deliver a record again.

Ids are the cluster's delivery ids (jetstream/codec.py delivery_id): the same delivery has
the same id on every node, and a retry run by another node is another node's record.

Rules:
* Written in batches by the JetStreamStore (never in the dispatcher's critical section):
  one writer job per batch, an upsert per delivery and an insert per attempt.
* Bounded like the SQLite queue: `prune` deletes records not updated within the retention
  (every state: the dead letter itself lives in the cluster's dead-letter stream, and
  `replay --id` finds it there, not here), and clears attempt records beyond the newest
  KEEP_PER_FUNCTION per function (attempt_details.py's bound).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from ..outcomes import DeliveryState
from .attempt_details import KEEP_PER_FUNCTION
from .models import AttemptRecord, Completion, DeliveryDetail, DeliverySummary
from .reads import summary
from .timeline import RETRYING, MinuteBumps

CHUNK = 5_000

CREATE_SQL = """
    CREATE TABLE cluster_deliveries (
        id INTEGER PRIMARY KEY,           -- the cluster-wide delivery id
        function TEXT NOT NULL,
        message_id TEXT NOT NULL,
        type TEXT NOT NULL,
        source TEXT NOT NULL DEFAULT '',
        body TEXT NOT NULL,               -- the event, JSON, as delivered
        state TEXT NOT NULL,              -- as this node last saw it (DeliveryState values)
        attempts INTEGER NOT NULL,        -- attempts made (by any node) as of this node's last
        due_at REAL,                      -- pending: when the retry is due
        created_at REAL NOT NULL,         -- when this node first ran it
        updated_at REAL NOT NULL,
        version TEXT,
        last_error TEXT,
        note TEXT
    );
    CREATE INDEX ix_cluster_deliveries_updated ON cluster_deliveries(updated_at);
    CREATE INDEX ix_cluster_deliveries_function ON cluster_deliveries(function, id);
    CREATE TABLE cluster_attempts (
        id INTEGER PRIMARY KEY,
        delivery_id INTEGER NOT NULL,
        number INTEGER NOT NULL,
        at REAL NOT NULL,
        version TEXT,
        outcome TEXT NOT NULL,
        error TEXT,
        duration_ms REAL NOT NULL DEFAULT 0,
        detail TEXT,
        node TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX ix_cluster_attempts_delivery ON cluster_attempts(delivery_id);
"""

_UPSERT = (
    "INSERT INTO cluster_deliveries (id, function, message_id, type, source, body, state, attempts, due_at, "
    "created_at, updated_at, version, last_error, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET state = excluded.state, attempts = excluded.attempts, due_at = excluded.due_at, "
    "updated_at = excluded.updated_at, version = coalesce(excluded.version, version), "
    "last_error = coalesce(excluded.last_error, last_error), note = excluded.note"
)
_ATTEMPT = (
    "INSERT INTO cluster_attempts (delivery_id, number, at, version, outcome, error, duration_ms, detail, node) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SUMMARY = (
    "SELECT id, function, message_id, type, state, attempts, due_at, created_at, updated_at, version, "
    "last_error, note, source FROM cluster_deliveries"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterRecord:
    """One completion this node reached on a cluster delivery, to record."""

    delivery_id: int  # the cluster-wide id
    completion: Completion  # its delivery_id is the node's lease id, not this one
    message_id: str
    type: str
    source: str
    body: str  # the event, JSON text
    attempts_before: int  # attempts made before this one (by any node)
    at: float  # when it completed (store clock)
    node: str


def record(conn: sqlite3.Connection, now: float, records: Sequence[ClusterRecord]) -> int:
    """Upsert each delivery, add its attempt row, bump the per-minute counters; rows written."""
    upserts: list[tuple[object, ...]] = []
    attempts: list[tuple[object, ...]] = []
    minutes = MinuteBumps()
    for r in records:
        c = r.completion
        result = c.result
        if c.state is DeliveryState.FILTERED:
            reason = result.error_message or result.error_name or "filtered"
            upserts.append(_row(r, c.state.value, r.attempts_before, None, None, reason))
            continue
        number = r.attempts_before + 1
        due = c.next_attempt_at if c.state is DeliveryState.PENDING else None
        note = result.error_name if c.state is DeliveryState.DISCARDED else None
        upserts.append(_row(r, c.state.value, number, due, result.error, note))
        attempts.append(
            (r.delivery_id, number, r.at, c.version, result.outcome.value, result.error, result.duration_ms, c.detail)
            + (r.node,)
        )
        minutes.record(c.function, r.at, result, c.state)
    conn.executemany(_UPSERT, upserts)
    if attempts:
        conn.executemany(_ATTEMPT, attempts)
    minutes.write(conn)
    return len(upserts)


def _row(
    r: ClusterRecord, state: str, attempts: int, due: float | None, error: str | None, note: str | None
) -> tuple[object, ...]:
    c = r.completion
    return (
        r.delivery_id,
        c.function,
        r.message_id,
        r.type,
        r.source,
        r.body,
        state,
        attempts,
        due,
        r.at,
        r.at,
        c.version,
        error,
        note,
    )


def replayed(conn: sqlite3.Connection, now: float, *, delivery_ids: Sequence[int] | None, function: str | None) -> int:
    """Records of dead deliveries replayed (these ids, or every one of `function`, or all):
    pending again, attempts count from 0 (as the dead letter that went back)."""
    where = "state = 'dead'"
    args: list[object] = [now, now]
    if delivery_ids is not None:
        where += " AND id IN (SELECT value FROM json_each(?))"
        args.append(json.dumps(list(delivery_ids)))
    if function is not None:
        where += " AND function = ?"
        args.append(function)
    return conn.execute(
        f"UPDATE cluster_deliveries SET state = 'pending', attempts = 0, due_at = ?, updated_at = ? WHERE {where}",
        args,
    ).rowcount


def deliveries(
    conn: sqlite3.Connection,
    *,
    function: str | None,
    state: str | None,
    limit: int,
    message_id: str | None = None,
    retrying: bool = False,
) -> list[DeliverySummary]:
    """Newest first (by id: the event's place in the cluster's stream)."""
    where: list[str] = []
    args: list[object] = []
    if state is not None:
        DeliveryState(state)  # ValueError for a state that does not exist
        where.append("state = ?")
        args.append(state)
    if retrying:
        where.append(RETRYING)
    if function is not None:
        where.append("function = ?")
        args.append(function)
    if message_id is not None:
        where.append("message_id = ?")
        args.append(message_id)
    sql = _SUMMARY + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?"
    return [summary(row) for row in conn.execute(sql, [*args, limit])]


def delivery(conn: sqlite3.Connection, delivery_id: int) -> DeliveryDetail | None:
    """The record, its event, and the attempts this node ran, oldest first."""
    row = conn.execute(_SUMMARY + " WHERE id = ?", (delivery_id,)).fetchone()
    if row is None:
        return None
    (body,) = conn.execute("SELECT body FROM cluster_deliveries WHERE id = ?", (delivery_id,)).fetchone()
    attempts = tuple(
        AttemptRecord(number=n, time=at, version=v, outcome=o, error=err, duration_ms=ms, detail=detail, node=node)
        for n, at, v, o, err, ms, detail, node in conn.execute(
            "SELECT number, at, version, outcome, error, duration_ms, detail, node FROM cluster_attempts "
            "WHERE delivery_id = ? ORDER BY id",
            (delivery_id,),
        )
    )
    try:
        event = json.loads(body)
    except ValueError:
        event = {}
    return DeliveryDetail(summary=summary(row), event=event if isinstance(event, dict) else {}, attempts=attempts)


def prune(
    conn: sqlite3.Connection, now: float, *, retention_s: float, keep: int = KEEP_PER_FUNCTION
) -> tuple[int, int]:
    """Up to CHUNK records older than the retention go, with their attempts; then attempt
    records beyond the newest `keep` of each function are cleared. (deliveries, attempts) deleted."""
    victims = [
        row[0]
        for row in conn.execute(
            "SELECT id FROM cluster_deliveries WHERE updated_at < ? LIMIT ?", (now - retention_s, CHUNK)
        )
    ]
    n_attempts = 0
    if victims:
        ids = json.dumps(victims)
        n_attempts = conn.execute(
            "DELETE FROM cluster_attempts WHERE delivery_id IN (SELECT value FROM json_each(?))", (ids,)
        ).rowcount
        conn.execute("DELETE FROM cluster_deliveries WHERE id IN (SELECT value FROM json_each(?))", (ids,))
    for (function,) in conn.execute("SELECT DISTINCT function FROM cluster_deliveries").fetchall():
        conn.execute(
            "UPDATE cluster_attempts SET detail = NULL WHERE id IN ("
            "SELECT a.id FROM cluster_attempts AS a JOIN cluster_deliveries AS d ON d.id = a.delivery_id "
            "WHERE d.function = ? AND a.detail IS NOT NULL ORDER BY a.id DESC LIMIT -1 OFFSET ?)",
            (function, keep),
        )
    return len(victims), n_attempts
