"""The accept path: new events and their delivery rows, merged across concurrent callers.

Hot path, so plain sqlite3 (no sqlite-utils), and as little Python per row as possible:
Python holds the GIL, and the trio thread needs it to run intake while the writer thread
writes. Each event is serialised once, on the caller's side: its body as JSON text, and a
small key `[messageId, [functions...]]`. The writer inserts bodies with one executemany,
and joins the group's keys into one small JSON document from which SQLite itself derives
the dedupe keys, the delivery rows and the counters (`json_each` in INSERT ... SELECT):
that per-row work runs in C with the GIL released. (Measured here: bodies inside the JSON
document cost more, since SQLite would parse them once per statement.)

Event ids are `base + position in the group` (the writer thread is the only writer of
these tables, so it knows the next free id); delivery ids come from AUTOINCREMENT. Both
tables are AUTOINCREMENT, so an id is never reused even after retention empties them.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

DEDUPE_WINDOW_S = 24 * 3600.0  # a messageId seen from the same source in the last 24 h is a duplicate


@dataclass(frozen=True, slots=True)
class Prepared:
    """One accept() call, serialised on the caller's side (so a bad body fails only it)."""

    message_ids: tuple[str, ...]  # per event: its dedupe key, `scope:messageId` ("" when it has none)
    events: tuple[tuple[str, str, str, str], ...]  # (message_id, type, body as JSON text, source)
    keys: tuple[str, ...]  # per event: JSON `[dedupe key, [functions...]]`
    fanout: tuple[int, ...]  # delivery rows per event

    @property
    def deliveries(self) -> int:
        return sum(self.fanout)


_SEEN = "SELECT message_id FROM seen WHERE message_id IN (SELECT value FROM json_each(?1)) AND at >= ?2"
_INSERT_SEEN = (
    "INSERT OR REPLACE INTO seen (message_id, at) SELECT value ->> 0, ?1 FROM json_each(?2) WHERE value ->> 0 != ''"
)
_INSERT_EVENT = "INSERT INTO events (id, message_id, type, body, source, received_at) VALUES (?, ?, ?, ?, ?, ?)"
# Bodies go in multi-row INSERTs of this many rows: one sqlite3_step (one release of the
# GIL) per chunk instead of per row, so the trio thread cannot make the writer queue for
# the GIL once per row. The statement text is fixed, so it stays prepared in the cache.
EVENT_CHUNK = 32
_INSERT_EVENTS = "INSERT INTO events (id, message_id, type, body, source, received_at) VALUES " + ",".join(
    ["(?, ?, ?, ?, ?, ?)"] * EVENT_CHUNK
)
_INSERT_DELIVERIES = (
    "INSERT INTO deliveries (event_id, function, state, attempts, due_at, created_at, updated_at) "
    "SELECT ?1 + e.key, f.value, 'pending', 0, ?2, ?2, ?2 FROM json_each(?3) AS e, json_each(e.value, '$[1]') AS f"
)
_BUMP_ACCEPTED = (
    "INSERT INTO function_stats (function, accepted, pending) "
    "SELECT f.value, count(*), count(*) FROM json_each(?1) AS e, json_each(e.value, '$[1]') AS f "
    "WHERE true GROUP BY f.value "  # WHERE true: SQLite's upsert-after-SELECT parsing rule
    "ON CONFLICT (function) DO UPDATE SET accepted = accepted + excluded.accepted, "
    "pending = pending + excluded.pending"
)


@dataclass(slots=True)
class IdCounters:
    """The next free event and log ids (the writer thread assigns them)."""

    event: int = 1
    log: int = 1

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> IdCounters:
        """Above every id ever used: AUTOINCREMENT's sqlite_sequence remembers pruned ones."""
        (seq,) = conn.execute("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'events'").fetchone()
        (top,) = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
        (log,) = conn.execute("SELECT coalesce(max(id), 0) FROM logs").fetchone()
        return cls(event=max(int(seq), int(top)) + 1, log=int(log) + 1)


class Ingest:
    """Writes accept() payloads; `merge` is the GroupWriter's merge function."""

    def __init__(self, ids: IdCounters) -> None:
        self.ids = ids

    def merge(self, conn: sqlite3.Connection, now: float, payloads: list[Prepared]) -> list[list[bool]]:
        """Store every payload of a commit group; per event True = stored, False = duplicate."""
        message_ids = [m for p in payloads for m in p.message_ids if m]
        known: set[str] = set()
        if message_ids:
            known = {r[0] for r in conn.execute(_SEEN, (json.dumps(message_ids), now - DEDUPE_WINDOW_S))}
        if not known and len(set(message_ids)) == len(message_ids):
            # The usual case: no duplicates, no Python loop over events.
            results = [[True] * len(p.keys) for p in payloads]
            kept = [(k, e, n) for p in payloads for k, e, n in zip(p.keys, p.events, p.fanout, strict=False)]
        else:
            results, kept = _drop_duplicates(payloads, known)
        if not kept:
            return results
        base = self.ids.event
        doc = "[" + ",".join([k for k, _e, _n in kept]) + "]"
        conn.execute(_INSERT_SEEN, (now, doc))
        # Position i in `doc` is event id base + i; an event going nowhere keeps only its
        # dedupe key, and its id stays unused.
        _insert_events(conn, [(base + i, *e, now) for i, (_k, e, n) in enumerate(kept) if n])
        conn.execute(_INSERT_DELIVERIES, (base, now, doc))
        conn.execute(_BUMP_ACCEPTED, (doc,))
        # Taken only once the statements succeeded; a rolled-back group leaves a gap at
        # worst (AUTOINCREMENT keeps ids unique either way).
        self.ids.event = base + len(kept)
        return results


def _insert_events(conn: sqlite3.Connection, rows: list[tuple[int, str, str, str, str, float]]) -> None:
    full = len(rows) - len(rows) % EVENT_CHUNK
    if full:
        conn.executemany(
            _INSERT_EVENTS,
            [[v for row in rows[i : i + EVENT_CHUNK] for v in row] for i in range(0, full, EVENT_CHUNK)],
        )
    if full < len(rows):
        conn.executemany(_INSERT_EVENT, rows[full:])


Kept = list[tuple[str, tuple[str, str, str, str], int]]


def _drop_duplicates(payloads: list[Prepared], known: set[str]) -> tuple[list[list[bool]], Kept]:
    """Per event: stored unless its messageId is known or repeated earlier in the group."""
    seen = set(known)
    results = []
    kept: Kept = []
    for p in payloads:
        out = []
        for message_id, key, event, n in zip(p.message_ids, p.keys, p.events, p.fanout, strict=True):
            if message_id and message_id in seen:
                out.append(False)
                continue
            if message_id:
                seen.add(message_id)
            out.append(True)
            kept.append((key, event, n))
        results.append(out)
    return results, kept


# One encoder for every call: building a JSONEncoder per call shows up at 20k events/s.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_encode_str = json.encoder.encode_basestring
_functions_json: dict[tuple[str, ...], tuple[str, int]] = {}


def _functions(functions: tuple[str, ...]) -> tuple[str, int]:
    """JSON of the de-duplicated function list, and its length (cached: few distinct lists)."""
    found = _functions_json.get(functions)
    if found is None:
        unique = list(dict.fromkeys(functions))
        found = (_encode(unique), len(unique))
        if len(_functions_json) < 1024:
            _functions_json[functions] = found
    return found


def dedupe_key(scope: str, message_id: str) -> str:
    """The `seen` key: one sender's messageId never hides another sender's event.

    `scope` holds no ":" (intake passes "@" + a source name, or a hex digest of the write key
    for the unnamed default source), so the first ":" splits the key.
    """
    return f"{scope}:{message_id}" if message_id else ""


def prepare(events: list[tuple[str, str, object, tuple[str, ...], str, str]]) -> Prepared:
    """Serialise (message_id, type, body, functions, source, dedupe scope) tuples (TypeError /
    ValueError for bad bodies)."""
    rows = []
    keys = []
    fanout = []
    dedupe = []
    for message_id, type_, body, functions, source, scope in events:
        fns, n = _functions(tuple(functions))
        fanout.append(n)
        rows.append((message_id, type_, _encode(body), source))
        key = dedupe_key(scope, message_id)
        dedupe.append(key)
        keys.append(f"[{_encode_str(key)},{fns}]")
    return Prepared(message_ids=tuple(dedupe), events=tuple(rows), keys=tuple(keys), fanout=tuple(fanout))
