"""Helpers shared by tests/test_intake*.py (no tests here): the real store in tmp_path, and
readers that look at the SQLite file itself, through a connection of their own."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

from segfuncd.store import Store, open_store

_paths: dict[int, Path] = {}


@asynccontextmanager
async def open_test_store(path: Path, *, max_pending: int = 1_000_000) -> AsyncIterator[Store]:
    """The real store on a real SQLite file."""
    async with open_store(path, max_pending=max_pending, commit_window_s=0.001) as store:
        _paths[id(store)] = path
        try:
            yield store
        finally:
            del _paths[id(store)]


def _query(store: Store, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(_paths[id(store)])) as conn:
        return conn.execute(sql).fetchall()


async def stored_events(store: Store) -> list[dict[str, Any]]:
    """Every event row committed to the file, oldest first, as the JSON stored."""
    return [json.loads(body) for (body,) in _query(store, "SELECT body FROM events ORDER BY id")]


async def stored_functions(store: Store) -> dict[str, list[str]]:
    """messageId -> the functions it has delivery rows for."""
    out: dict[str, list[str]] = {}
    rows = _query(store, "SELECT e.message_id, d.function FROM events e JOIN deliveries d ON d.event_id = e.id")
    for message_id, function in rows:
        out.setdefault(message_id, []).append(function)
    return {k: sorted(v) for k, v in out.items()}
