"""The Store: the async API over the writer and reader threads (opened by lifecycle.py).

Rules:
* Two connections, each owned by one thread (writer.py): every write goes through the
  GroupWriter (group commit), reads go to the reader. WAL lets them overlap.
* In-memory figures (pending / leased counts for backpressure and status, the newest log
  id, the work generation) change only on the trio thread, after the commit they
  describe; the writer thread reports deltas, never touches them.
* Backpressure is checked before a write is queued: at or above `max_pending` pending
  deliveries, accept() raises Backpressure. A request that gets in may overshoot the limit
  by its own rows, never more; its rows are reserved while it waits for the commit.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from typing import TypeVar

import trio

from ..errors import Backpressure, StoreError
from . import logs as logs_sql
from . import queue as queue_sql
from . import reads, retention
from . import timeline as timeline_sql
from .ingest import Ingest, prepare
from .models import (
    Completion,
    DeliveryDetail,
    DeliverySummary,
    Lease,
    LogRecord,
    NewEvent,
    PruneResult,
    StoreStatistics,
    StoreStats,
)
from .queue import Moves
from .writer import GroupWriter, Job, OwnerThread

T = TypeVar("T")
Clock = Callable[[], float]


class Store:
    """The durable queue; made by `open_store()`, usable until its block exits."""

    def __init__(
        self,
        *,
        writer: GroupWriter,
        reader: OwnerThread,
        ingest: Ingest,
        clock: Clock,
        max_pending: int,
        retention_s: float,
        log_lines: int,
        pending: int,
        newest_log_id: int,
    ) -> None:
        self._writer = writer
        self._reader = reader
        self._ingest = ingest
        self._clock = clock
        self._max_pending = max_pending
        self._retention_s = retention_s
        self._log_lines = log_lines
        self._pending = pending
        self._leased = 0
        self._newest_log_id = newest_log_id
        self._log_event = trio.Event()
        self._work_generation = 0
        self._work_event = trio.Event()
        self._work_waiters = 0
        self._accept_calls = 0
        self._events_stored = 0
        self._duplicates = 0

    # --- intake ---------------------------------------------------------------------------

    async def accept(self, events: Sequence[NewEvent]) -> list[bool]:
        """Store events and their delivery rows; True = stored, False = duplicate messageId.

        Returns only after the commit that holds them. Raises Backpressure when the queue
        is full, StoreError when SQLite fails (then nothing of this call was stored).
        """
        if not events:
            return []
        if self._pending >= self._max_pending:
            raise Backpressure(
                f"{self._pending} deliveries are pending, at the limit of storage.max_pending = {self._max_pending}"
            )
        payload = prepare([(e.message_id, e.type, e.body, e.functions) for e in events])
        rows = payload.deliveries
        self._pending += rows  # reserved: concurrent callers see the queue as it will be
        try:
            stored: list[bool] = await self._writer.submit(
                Job(None, payload=payload, rows=len(payload.keys), what="accept"), shield=True
            )
        except BaseException:
            self._pending -= rows
            raise
        self._accept_calls += 1
        if all(stored):  # the usual case, kept cheap: this runs once per request
            self._events_stored += len(stored)
            dup_rows = 0
        else:
            dup_rows = sum(n for n, ok in zip(payload.fanout, stored, strict=True) if not ok)
            self._pending -= dup_rows
            n_stored = sum(stored)
            self._events_stored += n_stored
            self._duplicates += len(stored) - n_stored
        if rows > dup_rows:
            self._signal_work()
        return stored

    # --- the queue --------------------------------------------------------------------------

    async def lease(self, *, limit: int, lease_s: float) -> list[Lease]:
        """Lease up to `limit` due deliveries for `lease_s` seconds, oldest due first."""
        leases, moves = await self._write(lambda c, now: queue_sql.lease(c, now, limit=limit, lease_s=lease_s), "lease")
        self._apply(moves)
        return leases

    async def complete(self, completions: Sequence[Completion]) -> None:
        """Record outcomes of leased deliveries: state, attempt rows, counters."""
        if not completions:
            return
        items = list(completions)
        moves = await self._write(lambda c, now: queue_sql.complete(c, now, items), "complete")
        self._apply(moves)
        if any(c.state.value == "pending" for c in items):
            self._signal_work()

    async def postpone(self, ids: Sequence[int], *, until: float, reason: str) -> None:
        """Pending again, due at `until`, no attempt used; `reason` shows in listings."""
        id_list = list(ids)
        moves = await self._write(
            lambda c, now: queue_sql.postpone(c, now, id_list, until=until, reason=reason), "postpone"
        )
        self._apply(moves)
        self._signal_work()

    async def release(self, ids: Sequence[int]) -> None:
        """Give leases back unused: pending and due now."""
        id_list = list(ids)
        moves = await self._write(lambda c, now: queue_sql.release(c, now, id_list), "release")
        self._apply(moves)
        self._signal_work()

    async def wake(self, function: str) -> int:
        """Make `function`'s postponed rows due now (call when its file loads again)."""
        n = await self._write(lambda c, now: queue_sql.wake(c, now, function), "wake")
        if n:
            self._signal_work()
        return n

    async def next_due(self) -> float | None:
        """When the earliest pending (or leased) delivery becomes due; None: queue empty."""
        return await self._read(lambda c, now: queue_sql.next_due(c), "next_due")

    async def replay(self, *, function: str | None = None, delivery_id: int | None = None) -> int:
        """Dead letters back to pending, attempts reset: all, one function's, or one."""
        n, moves = await self._write(
            lambda c, now: queue_sql.replay(c, now, function=function, delivery_id=delivery_id), "replay"
        )
        self._apply(moves)
        if n:
            self._signal_work()
        return n

    @property
    def work_generation(self) -> int:
        """Bumped whenever deliveries may have become due (accept, release, replay, ...)."""
        return self._work_generation

    async def wait_work(self, generation: int) -> None:
        """Return once `work_generation` has moved past `generation` (the dispatcher's wake-up)."""
        self._work_waiters += 1
        try:
            while self._work_generation <= generation:
                await self._work_event.wait()
        finally:
            self._work_waiters -= 1

    # --- admin reads ------------------------------------------------------------------------

    async def deliveries(
        self, *, function: str | None = None, state: str | None = None, limit: int = 20
    ) -> list[DeliverySummary]:
        """Newest deliveries first, optionally of one function and/or in one state."""
        return await self._read(
            lambda c, now: reads.deliveries(c, function=function, state=state, limit=limit), "deliveries"
        )

    async def delivery(self, delivery_id: int) -> DeliveryDetail | None:
        """One delivery with its event and every attempt; None when unknown (or pruned)."""
        return await self._read(lambda c, now: reads.delivery(c, delivery_id), "delivery")

    async def stats(self) -> StoreStats:
        """Queue figures and per-function counters, from the counters table."""
        functions, dead, oldest = await self._read(lambda c, now: reads.stats(c), "stats")
        age = None if oldest is None else max(0.0, self._clock() - oldest)
        return StoreStats(
            pending=self._pending,
            leased=self._leased,
            dead=dead,
            oldest_pending_age_s=age,
            functions=functions,
            healthy=self.healthy,
        )

    async def timeline(
        self, *, function: str | None = None, since: float, until: float, step_minutes: int = 1
    ) -> list[timeline_sql.MinuteBucket]:
        """Per-function delivery counts in buckets of `step_minutes` (non-empty ones, oldest first)."""
        return await self._read(
            lambda c, now: timeline_sql.timeline(
                c, function=function, since=since, until=until, step_minutes=step_minutes
            ),
            "timeline",
        )

    async def error_groups(self, function: str, *, limit: int = 20) -> list[timeline_sql.ErrorGroup]:
        """The function's errors grouped by name and message, most frequent first."""
        return await self._read(lambda c, now: timeline_sql.error_groups(c, function=function, limit=limit), "errors")

    async def retrying(self, function: str, *, limit: int = 20) -> list[DeliverySummary]:
        """The function's newest deliveries waiting for a retry (bounded by the queue, not the table)."""

        def read(c: sqlite3.Connection, now: float) -> list[DeliverySummary]:
            ids = timeline_sql.retrying(c, function=function, limit=limit)
            rows = {r.id: r for i in ids if (r := reads.delivery_summary(c, i)) is not None}
            return [rows[i] for i in ids if i in rows]

        return await self._read(read, "retrying")

    def statistics(self) -> StoreStatistics:
        """In-memory writer figures; no I/O."""
        return StoreStatistics(
            commits=self._writer.commits,
            accept_calls=self._accept_calls,
            events_stored=self._events_stored,
            duplicates=self._duplicates,
            largest_group=self._writer.largest_group,
            pending=self._pending,
            leased=self._leased,
        )

    @property
    def healthy(self) -> bool:
        """False after a failed commit, until the next one succeeds."""
        return self._writer.healthy

    @property
    def pending_count(self) -> int:
        """Pending + leased deliveries (what backpressure compares to max_pending)."""
        return self._pending

    # --- logs -------------------------------------------------------------------------------

    async def append_logs(self, records: Sequence[LogRecord]) -> None:
        """Add log lines; the oldest beyond `log_lines` are dropped."""
        if not records:
            return
        items = list(records)
        newest = await self._write(
            lambda c, now: logs_sql.append(c, self._ingest.ids, items, keep=self._log_lines), "append_logs"
        )
        if newest > self._newest_log_id:
            self._newest_log_id = newest
            self._log_event.set()
            self._log_event = trio.Event()

    async def read_logs(
        self,
        *,
        after_id: int | None = None,
        limit: int = 100,
        function: str | None = None,
        level: str | None = None,
    ) -> list[LogRecord]:
        """Oldest first: the newest `limit` lines, or the first `limit` after `after_id`."""
        return await self._read(
            lambda c, now: logs_sql.read(c, after_id=after_id, limit=limit, function=function, level=level),
            "read_logs",
        )

    async def wait_logs(self, after_id: int) -> None:
        """Return once a log line newer than `after_id` exists."""
        while self._newest_log_id <= after_id:
            await self._log_event.wait()

    # --- retention --------------------------------------------------------------------------

    async def prune(self) -> PruneResult:
        """One retention pass: finished deliveries, orphaned events, old dedupe keys."""
        deliveries = attempts = events = keys = 0
        while True:
            d, a = await self._write(
                lambda c, now: retention.prune_deliveries(c, now, retention_s=self._retention_s), "prune"
            )
            deliveries += d
            attempts += a
            if d < retention.CHUNK:
                break
        resume: int | None = 0
        while resume is not None:
            after = resume
            prune = functools.partial(retention.prune_events, retention_s=self._retention_s, after_id=after)
            e, resume = await self._write(prune, "prune")
            events += e
        await self._write(lambda c, now: timeline_sql.prune(c, now), "prune")
        while True:
            k = await self._write(lambda c, now: retention.prune_dedupe(c, now), "prune")
            keys += k
            if k < retention.CHUNK:
                break
        return PruneResult(deliveries=deliveries, events=events, attempts=attempts, dedupe_keys=keys)

    async def _prune_forever(self, interval_s: float) -> None:
        while True:
            await trio.sleep(interval_s)
            try:
                await self.prune()
            except StoreError:
                pass  # healthy turns False; the next pass tries again

    # --- plumbing ---------------------------------------------------------------------------

    async def _write(self, fn: Callable[[sqlite3.Connection, float], T], what: str) -> T:
        return await self._writer.submit(Job(fn, what=what), shield=True)

    async def _read(self, fn: Callable[[sqlite3.Connection, float], T], what: str) -> T:
        return await self._reader.submit(Job(fn, what=what), shield=False)

    def _apply(self, moves: Moves) -> None:
        self._pending += moves.pending
        self._leased += moves.leased

    def _signal_work(self) -> None:
        self._work_generation += 1
        if self._work_waiters:  # a fresh Event per accept only when someone listens
            self._work_event.set()
            self._work_event = trio.Event()
