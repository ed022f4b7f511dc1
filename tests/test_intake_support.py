"""Helpers shared by tests/test_intake*.py (no tests here): a store in tmp_path, and readers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from segfuncd.errors import Backpressure


class _StandInStore:
    """TEMPORARY stand-in until segfuncd.store is committed; same accept() contract."""

    def __init__(self, max_pending: int) -> None:
        self.rows: dict[str, Any] = {}
        self.max_pending = max_pending
        self.healthy = True

    @property
    def pending_count(self) -> int:
        return len(self.rows)

    async def accept(self, events: list[Any]) -> list[bool]:
        if len(self.rows) >= self.max_pending:
            raise Backpressure(retry_after_s=2)
        out = []
        for e in events:
            out.append(e.message_id not in self.rows)
            self.rows.setdefault(e.message_id, e)
        return out


@asynccontextmanager
async def open_test_store(path: Path, *, max_pending: int = 1_000_000) -> AsyncIterator[Any]:
    yield _StandInStore(max_pending)


async def stored_events(store: Any) -> list[dict[str, Any]]:
    return [dict(e.body) for e in store.rows.values()]


async def stored_functions(store: Any) -> dict[str, list[str]]:
    return {e.message_id: sorted(e.functions) for e in store.rows.values()}
