"""The delivery queue: lease, complete, postpone, release, wake, replay, next_due.

Plain functions of (conn, now, ...) run by the writer thread inside its transaction; each
returns its result plus the change to the in-memory gauges (`Moves`), which the Store
applies on the trio side once the commit is known.

States and the `due_at` column:
    pending  -> due_at is when the next attempt may start (leased once due_at <= now)
    leased   -> due_at is when the lease expires; an expired lease is leased again, so a
                daemon killed mid-delivery delivers again after restart (at-least-once)
    delivered / discarded / filtered -> finished, pruned after retention
    dead     -> kept with its event and attempts until replayed
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from ..outcomes import DeliveryState, Outcome
from .models import Completion, Lease
from .schema import ACTIVE
from .stats import Bumps
from .timeline import MinuteBumps

_TERMINAL = {
    DeliveryState.DELIVERED.value,
    DeliveryState.DISCARDED.value,
    DeliveryState.FILTERED.value,
    DeliveryState.DEAD.value,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Moves:
    """How many rows entered / left the pending+leased and leased sets, and dead."""

    pending: int = 0
    leased: int = 0
    dead: int = 0


_LEASE = (
    "SELECT d.id, d.function, d.attempts, d.created_at, d.state, e.message_id, e.body, d.due_at, e.type "
    "FROM deliveries AS d JOIN events AS e ON e.id = d.event_id "
    f"WHERE {ACTIVE} AND d.due_at <= ? "
)
# The distinct functions with active rows, by skip-scan: each step is one seek in
# ix_deliveries_active_function (its WHERE is ACTIVE, as here).
_ACTIVE_FUNCTIONS = (
    "WITH RECURSIVE f(name) AS ("
    f" SELECT (SELECT min(function) FROM deliveries WHERE {ACTIVE})"
    f" UNION ALL SELECT (SELECT min(function) FROM deliveries WHERE {ACTIVE} AND function > f.name)"
    " FROM f WHERE f.name IS NOT NULL"
    ") SELECT name FROM f WHERE name IS NOT NULL"
)


def lease(
    conn: sqlite3.Connection, now: float, *, limit: int, lease_s: float, skip: Sequence[str] = ()
) -> tuple[list[Lease], Moves]:
    """Lease up to `limit` due deliveries, oldest due first (expired leases included).

    Rows of the functions in `skip` are left alone: the dispatcher holds its fair share of
    their rows already, and their backlog must not hide other functions' rows. Then each
    other function is leased through the (function, due_at) index, so a skipped function's
    backlog is never scanned (it may be 300k rows, and this runs after every settle).
    """
    if not skip:
        rows = conn.execute(_LEASE + "ORDER BY d.due_at LIMIT ?", (now, limit)).fetchall()
    else:
        rows = []
        for function in _others(conn, skip):
            rows += conn.execute(_LEASE + "AND d.function = ? ORDER BY d.due_at LIMIT ?", (now, function, limit))
        rows = sorted(rows, key=lambda row: row[7])[:limit]
    if not rows:
        return [], Moves()
    until = now + lease_s
    conn.executemany(
        "UPDATE deliveries SET state = 'leased', due_at = ?, updated_at = ? WHERE id = ?",
        [(until, now, row[0]) for row in rows],
    )
    newly = sum(1 for row in rows if row[4] == "pending")
    leases = [
        Lease(id=i, function=f, body=body, type=ty, message_id=mid, attempts=a, created_at=c)
        for i, f, a, c, _state, mid, body, _due, ty in rows
    ]
    return leases, Moves(leased=newly)


def complete(conn: sqlite3.Connection, now: float, completions: Sequence[Completion]) -> Moves:
    """Record outcomes: the row's new state, an attempt row, the counters.

    A completion for a row that is no longer pending or leased (already finished by an
    earlier completion) is ignored, so counters never count a delivery twice.
    """
    if not completions:
        return Moves()
    current = {
        row[0]: (row[1], row[2])
        for row in conn.execute(
            "SELECT id, state, attempts FROM deliveries WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps([c.delivery_id for c in completions]),),
        )
    }
    bumps = Bumps()
    minutes = MinuteBumps()  # the console's per-minute charts and error groups
    updates: list[tuple[object, ...]] = []
    attempts: list[tuple[object, ...]] = []
    left_pending = left_leased = dead = 0
    for c in completions:
        found = current.pop(c.delivery_id, None)
        if found is None or found[0] in _TERMINAL:
            continue
        old_state, old_attempts = found
        state = c.state.value
        left_leased += old_state == "leased"
        finished = state != "pending"
        if finished:
            left_pending += 1
            bumps.add(c.function, pending=-1, retrying=-1 if old_attempts > 0 else 0)
        result = c.result
        if c.state is DeliveryState.FILTERED:
            reason = result.error_message or result.error_name or "filtered"
            updates.append((state, old_attempts, None, now, c.version, None, reason, c.delivery_id))
            bumps.add(c.function, filtered=1)
            bumps.reason(c.function, "filtered", reason)
            continue
        number = old_attempts + 1
        error = result.error
        due = c.next_attempt_at if state == "pending" else None
        note = result.error_name if c.state is DeliveryState.DISCARDED else None
        updates.append((state, number, due, now, c.version, error, note, c.delivery_id))
        attempts.append(
            (c.delivery_id, number, now, c.version, result.outcome.value, error, result.duration_ms, c.detail)
        )
        bumps.add(c.function, attempts=1, duration_ms_total=result.duration_ms)
        minutes.record(c.function, now, result, c.state)
        if state == "pending" and old_attempts == 0:
            bumps.add(c.function, retrying=1)
        if result.outcome is Outcome.DELIVERED:
            bumps.add(c.function, delivered=1)
            bumps.delivered_at(c.function, now)
        elif result.outcome is Outcome.DISCARDED:
            bumps.add(c.function, discarded=1)
            bumps.reason(c.function, "discarded", result.error_name or "discarded")
        elif result.outcome is Outcome.FAILED:
            bumps.add(c.function, failed=1)
        else:
            bumps.add(c.function, retried=1)
        if error is not None and result.outcome is not Outcome.DISCARDED:
            bumps.error(c.function, error, now)
        if state == "dead":
            dead += 1
            bumps.add(c.function, dead=1, dead_lettered=1)
    conn.executemany(
        "UPDATE deliveries SET state = ?, attempts = ?, due_at = ?, updated_at = ?, version = ?, "
        "last_error = coalesce(?, last_error), note = ?, held = 0 WHERE id = ?",
        updates,
    )
    if attempts:
        conn.executemany(
            "INSERT INTO attempts (delivery_id, number, at, version, outcome, error, duration_ms, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            attempts,
        )
    bumps.write(conn)
    minutes.write(conn)
    return Moves(pending=-left_pending, leased=-left_leased, dead=dead)


def postpone(conn: sqlite3.Connection, now: float, ids: Sequence[int], *, until: float, reason: str) -> Moves:
    """Back to pending until `until`, no attempt used; `wake(function)` cuts the wait short."""
    return _back_to_pending(conn, ids, due=until, note=reason, held=1, now=now)


def release(conn: sqlite3.Connection, now: float, ids: Sequence[int]) -> Moves:
    """Give leases back unused: pending and due now, no attempt used.

    Only rows still leased move: releasing a delivery that was completed meanwhile (say,
    scheduled for a retry in an hour) must not make it due now.
    """
    return _back_to_pending(conn, ids, due=now, note=None, held=0, now=now, only_leased=True)


def _back_to_pending(
    conn: sqlite3.Connection,
    ids: Sequence[int],
    *,
    due: float | None,
    note: str | None,
    held: int,
    now: float,
    only_leased: bool = False,
) -> Moves:
    if not ids:
        return Moves()
    id_list = json.dumps(list(ids))
    (leased,) = conn.execute(
        "SELECT count(*) FROM deliveries WHERE id IN (SELECT value FROM json_each(?)) AND state = 'leased'",
        (id_list,),
    ).fetchone()
    states = "state = 'leased'" if only_leased else ACTIVE
    conn.execute(
        "UPDATE deliveries SET state = 'pending', due_at = ?, updated_at = ?, note = coalesce(?, note), held = ? "
        f"WHERE id IN (SELECT value FROM json_each(?)) AND {states}",
        (due, now, note, held, id_list),
    )
    return Moves(leased=-leased)


def hold(conn: sqlite3.Connection, now: float, function: str, ids: Sequence[int], *, reason: str) -> Moves:
    """Put `function`'s rows on hold: pending with no due time, so leasing (which walks the
    due index from the oldest due time) never meets them; `wake(function)` ends the hold.

    `ids` are the leased rows that met the function's failure; every other pending row
    of the function is held too, in one statement on the (function, due_at) index, so a
    backlog of 300k rows costs one update, not 3,000 lease-and-postpone rounds a minute.
    """
    moves = _back_to_pending(conn, ids, due=None, note=reason, held=1, now=now)
    conn.execute(
        "UPDATE deliveries SET due_at = NULL, held = 1, note = ?, updated_at = ? "
        f"WHERE {ACTIVE} AND function = ? AND due_at IS NOT NULL AND state = 'pending'",
        (reason, now, function),
    )
    return moves


def held_functions(conn: sqlite3.Connection) -> list[str]:
    """Functions with rows on hold, one index probe per function (a skip scan by hand)."""
    found: list[str] = []
    after = ""
    while True:
        row = conn.execute(
            f"SELECT function FROM deliveries WHERE {ACTIVE} AND function > ? ORDER BY function LIMIT 1", (after,)
        ).fetchone()
        if row is None:
            return found
        after = row[0]
        held = conn.execute(
            f"SELECT 1 FROM deliveries WHERE {ACTIVE} AND function = ? AND due_at IS NULL LIMIT 1", (after,)
        ).fetchone()
        if held is not None:
            found.append(after)


def probe(conn: sqlite3.Connection, now: float) -> None:
    """A tiny write: does the disk take writes again?"""
    conn.execute("INSERT OR REPLACE INTO segfuncd_meta (key, value) VALUES ('probe', ?)", (repr(now),))


def wake(conn: sqlite3.Connection, now: float, function: str) -> int:
    """Make `function`'s postponed or held rows due now (its file loads again); returns the count."""
    cur = conn.execute(
        f"UPDATE deliveries SET due_at = ?, held = 0 WHERE {ACTIVE} AND function = ? AND state = 'pending' "
        "AND held = 1",
        (now, function),
    )
    return cur.rowcount


def next_due(conn: sqlite3.Connection, *, skip: Sequence[str] = ()) -> float | None:
    """The earliest due_at of pending or leased rows (lease expiry counts), `skip`'s aside."""
    if not skip:
        (due,) = conn.execute(f"SELECT min(due_at) FROM deliveries WHERE {ACTIVE}").fetchone()
        return None if due is None else float(due)
    dues = [
        due
        for function in _others(conn, skip)
        for (due,) in conn.execute(f"SELECT min(due_at) FROM deliveries WHERE {ACTIVE} AND function = ?", (function,))
        if due is not None
    ]
    return float(min(dues)) if dues else None


def renew(conn: sqlite3.Connection, now: float, ids: Sequence[int], *, lease_s: float) -> Moves:
    """Extend the leases of rows still leased to `now + lease_s` (the holder still has them)."""
    if ids:
        conn.execute(
            "UPDATE deliveries SET due_at = ? WHERE id IN (SELECT value FROM json_each(?)) AND state = 'leased'",
            (now + lease_s, json.dumps(list(ids))),
        )
    return Moves()


def _others(conn: sqlite3.Connection, skip: Sequence[str]) -> list[str]:
    """Functions with pending or leased rows, `skip`'s aside: one index seek per function
    (a skip-scan of the (function, due_at) index), never a walk over their rows."""
    skipped = set(skip)
    return [name for (name,) in conn.execute(_ACTIVE_FUNCTIONS) if name not in skipped]


def replay(conn: sqlite3.Connection, now: float, *, function: str | None, delivery_id: int | None) -> tuple[int, Moves]:
    """Dead -> pending with attempts reset (all, one function's, or one delivery)."""
    where = "state = 'dead'"
    args: list[object] = []
    if function is not None:
        where += " AND function = ?"
        args.append(function)
    if delivery_id is not None:
        where += " AND id = ?"
        args.append(delivery_id)
    counts = conn.execute(f"SELECT function, count(*) FROM deliveries WHERE {where} GROUP BY function", args).fetchall()
    if not counts:
        return 0, Moves()
    conn.execute(
        f"UPDATE deliveries SET state = 'pending', attempts = 0, due_at = ?, updated_at = ?, held = 0 WHERE {where}",
        [now, now, *args],
    )
    bumps = Bumps()
    total = 0
    for fn, n in counts:
        bumps.add(fn, dead=-n, pending=n, replayed=n)
        total += n
    bumps.write(conn)
    return total, Moves(pending=total, dead=-total)
