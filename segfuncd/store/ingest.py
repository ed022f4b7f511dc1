"""The accept path: new events and their delivery rows, merged across concurrent callers.

Hot path, so plain sqlite3 (no sqlite-utils): one dedupe lookup, then one executemany per
table for the whole commit group. Row ids are assigned here rather than by SQLite, so a
delivery row can name its event without a round trip per row (the writer thread is the
only writer of these tables; `IdCounters` starts above every id ever used).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from .stats import Bumps

DEDUPE_WINDOW_S = 24 * 3600.0  # a messageId seen in the last 24 h is a duplicate

# (message_id, type, body as JSON, functions): prepared on the trio side, so a body that
# cannot be serialised fails its own caller, not the whole group.
Prepared = tuple[str, str, str, tuple[str, ...]]

_SEEN_SQL = "SELECT message_id FROM seen WHERE message_id IN (SELECT value FROM json_each(?)) AND at >= ?"
_INSERT_SEEN = "INSERT OR REPLACE INTO seen (message_id, at) VALUES (?, ?)"
_INSERT_EVENT = "INSERT INTO events (id, message_id, type, body, received_at) VALUES (?, ?, ?, ?, ?)"
_INSERT_DELIVERY = (
    "INSERT INTO deliveries (id, event_id, function, state, attempts, due_at, created_at, updated_at) "
    "VALUES (?, ?, ?, 'pending', 0, ?, ?, ?)"
)


@dataclass(slots=True)
class IdCounters:
    """The next free ids; never reused, even after retention empties a table."""

    event: int = 1
    delivery: int = 1
    log: int = 1

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> IdCounters:
        """max(id) + 1 of each table, or the high-water mark retention saved in `meta`."""
        meta = dict(conn.execute("SELECT key, value FROM meta WHERE key LIKE 'next_%_id'").fetchall())

        def nxt(table: str, key: str) -> int:
            (top,) = conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()
            return max(int(top), int(meta.get(key, 1)))

        return cls(
            event=nxt("events", "next_event_id"),
            delivery=nxt("deliveries", "next_delivery_id"),
            log=nxt("logs", "next_log_id"),
        )

    def save(self, conn: sqlite3.Connection) -> None:
        """Record the high-water marks (retention calls this before deleting rows)."""
        conn.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [("next_event_id", self.event), ("next_delivery_id", self.delivery), ("next_log_id", self.log)],
        )


class Ingest:
    """Writes accept() payloads; `merge` is the GroupWriter's merge function."""

    def __init__(self, ids: IdCounters) -> None:
        self.ids = ids

    def merge(self, conn: sqlite3.Connection, now: float, payloads: list[list[Prepared]]) -> list[list[bool]]:
        """Store every payload of a commit group; per event True = stored, False = duplicate."""
        message_ids = [p[0] for payload in payloads for p in payload if p[0]]
        seen: set[str] = set()
        if message_ids:
            cutoff = now - DEDUPE_WINDOW_S
            seen = {row[0] for row in conn.execute(_SEEN_SQL, (json.dumps(message_ids), cutoff))}
        events: list[tuple[int, str, str, str, float]] = []
        keys: list[tuple[str, float]] = []
        deliveries: list[tuple[int, int, str, float, float, float]] = []
        per_function: dict[str, int] = {}
        event_id, delivery_id = self.ids.event, self.ids.delivery
        results = []
        for payload in payloads:
            out = []
            for message_id, type_, body, functions in payload:
                if message_id:
                    if message_id in seen:
                        out.append(False)
                        continue
                    seen.add(message_id)  # a repeat later in the same group is a duplicate too
                    keys.append((message_id, now))
                out.append(True)
                if not functions:
                    continue  # nothing to deliver: only the dedupe key is worth keeping
                events.append((event_id, message_id, type_, body, now))
                for function in functions:
                    deliveries.append((delivery_id, event_id, function, now, now, now))
                    delivery_id += 1
                    per_function[function] = per_function.get(function, 0) + 1
                event_id += 1
            results.append(out)
        if keys:
            conn.executemany(_INSERT_SEEN, keys)
        if events:
            conn.executemany(_INSERT_EVENT, events)
            conn.executemany(_INSERT_DELIVERY, deliveries)
            bumps = Bumps()
            for function, n in per_function.items():
                bumps.add(function, accepted=n, pending=n)
            bumps.write(conn)
        # Ids are taken only once the statements succeeded; a rolled-back group leaves
        # gaps at worst, never reuses an id.
        self.ids.event, self.ids.delivery = event_id, delivery_id
        return results


def prepare(message_id: str, type_: str, body: object, functions: tuple[str, ...]) -> Prepared:
    """Serialise one event on the caller's side (TypeError / ValueError for bad bodies)."""
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return (message_id, type_, text, tuple(dict.fromkeys(functions)))
