"""Shared helpers (no tests here) for the store and delivery tests: a hand-driven clock, event builders."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from segfuncd.outcomes import DeliveryState, InvocationResult, Outcome
from segfuncd.store import Completion, Lease, NewEvent, Store, open_store

T0 = 1_800_000_000.0


class FakeClock:
    """A wall clock that moves only when the test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def event(i: int, *, functions: tuple[str, ...] = ("f",), message_id: str | None = None, **extra: Any) -> NewEvent:
    mid = f"msg-{i}" if message_id is None else message_id
    body = {"type": "track", "event": f"E{i}", "messageId": mid, "properties": {"i": i}, **extra}
    return NewEvent(message_id=mid, type="track", body=body, functions=functions)


@asynccontextmanager
async def store_at(path: Path, clock: FakeClock, **kwargs: Any) -> AsyncIterator[Store]:
    async with open_store(path, clock=clock, prune_interval_s=math.inf, **kwargs) as store:
        yield store


def done(
    lease: Lease,
    outcome: Outcome,
    *,
    state: DeliveryState,
    error: str | None = None,
    next_attempt_at: float | None = None,
    version: str = "v1",
) -> Completion:
    result = InvocationResult(
        outcome=outcome, error_name=error, error_message="boom" if error else None, duration_ms=5.0
    )
    return Completion(
        delivery_id=lease.id,
        function=lease.function,
        result=result,
        version=version,
        state=state,
        next_attempt_at=next_attempt_at,
    )
