"""Refuse damaged state: what the state directory remembers about its database, checked at start.

The state directory keeps a small record beside the database (`<db>.state`, JSON):
the database's identity (a random id also stored inside the file, in `segfuncd_meta`)
and whether the last stop was clean. At start, before anything writes to the file:

* the record names a database, but the file is missing or empty (0 bytes): the queue is
  gone (deleted, truncated, a volume not mounted);
* the file's id differs from the record: another database was put in its place;
* the last stop was not clean and the write-ahead log (`<db>-wal`) is missing: the last
  acknowledged events lived only there;
* `PRAGMA quick_check` fails: pages are damaged.

Each is a DamagedState naming the file, what is wrong and what the operator can do:
restore it, or start with `--accept-state-loss`, which starts anyway (and says so loudly
in the log) and records the database found as the new identity.

A state directory with a database but no record (written by an older segfuncd) is
adopted after its quick_check. Here: `check_state`, `mark_started`, `mark_stopped`;
plain functions on files, called by `open_store()` from a worker thread.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..errors import DamagedState

ACCEPT_HINT = (
    "restore the file (and its -wal) from a backup, or start with `segfuncd --accept-state-loss` "
    "to begin with what is there"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class StateRecord:
    """What the state directory remembers about its database."""

    database: str  # the file name, for operators reading the record
    id: str
    clean_stop: bool


def record_path(db: Path) -> Path:
    return db.with_name(db.name + ".state")


def wal_path(db: Path) -> Path:
    return db.with_name(db.name + "-wal")


def read_record(db: Path) -> StateRecord | None:
    """The record, or None when there is none; DamagedState when it cannot be read."""
    path = record_path(db)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return StateRecord(database=str(raw["database"]), id=str(raw["id"]), clean_stop=bool(raw["clean_stop"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DamagedState(f"{path}: the state record cannot be read ({exc}); {ACCEPT_HINT}") from exc


def write_record(db: Path, record: StateRecord) -> None:
    """Replace the record atomically (write, fsync, rename)."""
    path = record_path(db)
    tmp = path.with_name(path.name + ".tmp")
    data = {"database": record.database, "id": record.id, "clean_stop": record.clean_stop, "at": time.time()}
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def check_state(db: Path) -> list[str]:
    """Every problem found with the database at `db` (empty: fine to open). Never writes."""
    record = read_record(db)
    problems: list[str] = []
    exists = db.exists()
    if record is not None:
        if not exists:
            return [f"the database {db} is missing: this state directory held one (id {record.id})"]
        if db.stat().st_size == 0:
            return [f"the database {db} is empty (0 bytes): this state directory held one (id {record.id})"]
        if not record.clean_stop and not wal_path(db).exists():
            problems.append(
                f"the write-ahead log {wal_path(db)} is missing after an unclean stop: "
                "the last acknowledged events were in it"
            )
    elif not exists or db.stat().st_size == 0:
        return []  # a new state directory
    problems.extend(_inspect(db, record))
    return problems


def _inspect(db: Path, record: StateRecord | None) -> list[str]:
    try:
        conn = sqlite3.connect(str(db), isolation_level=None)
    except sqlite3.Error as exc:
        return [f"the database {db} cannot be opened: {exc}"]
    problems = []
    try:
        found = _stored_id(conn)
        if record is not None and found != record.id:
            what = f"id {found}" if found else "no id (a database segfuncd did not make, or an older one)"
            problems.append(f"the database {db} was replaced: it has {what}, this state directory held id {record.id}")
        rows = [r[0] for r in conn.execute("PRAGMA quick_check(5)").fetchall()]
        if rows != ["ok"]:
            problems.append(f"the database {db} fails its integrity check: {'; '.join(map(str, rows))}")
    except sqlite3.DatabaseError as exc:
        problems.append(f"the database {db} is damaged: {exc}")
    finally:
        conn.close()
    return problems


def _stored_id(conn: sqlite3.Connection) -> str | None:
    has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'segfuncd_meta'").fetchone()
    if not has_meta:
        return None
    row = conn.execute("SELECT value FROM segfuncd_meta WHERE key = 'id'").fetchone()
    return None if row is None else str(row[0])


def damaged(db: Path, problems: list[str]) -> DamagedState:
    """The error refusing to start, naming every problem and the way out."""
    return DamagedState(f"refusing to start on damaged state: {'; '.join(problems)}. To proceed: {ACCEPT_HINT}")


def mark_started(db: Path) -> str:
    """After migrate: make sure the file has an id, record it with clean_stop = False."""
    conn = sqlite3.connect(str(db), isolation_level=None)
    try:
        found = _stored_id(conn)
        if found is None:
            found = uuid.uuid4().hex
            conn.execute("INSERT OR REPLACE INTO segfuncd_meta (key, value) VALUES ('id', ?)", (found,))
    finally:
        conn.close()
    write_record(db, StateRecord(database=db.name, id=found, clean_stop=False))
    return found


def mark_stopped(db: Path, db_id: str) -> None:
    """After every connection closed cleanly: the next start need not find a WAL."""
    write_record(db, StateRecord(database=db.name, id=db_id, clean_stop=True))
