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
* Faults are a state, not a crash (issue 12). Every write that fails records a StoreFault
  under its operation ("lease", "complete", "append_logs", ...); its next success clears
  it. While any operation other than accept is failing, accept() refuses at once with
  Backpressure (503 + Retry-After), since the queue cannot make progress; accept's own
  failures already answer 503. The dispatcher keeps retrying, so the faults clear by
  themselves once space returns.
* Log lines that cannot be written wait in memory (up to LOG_BACKLOG lines, then the
  oldest are dropped and counted); append_logs never raises.
* complete() retries a write that failed for a passing cause (disk full, I/O, locked) for
  up to COMPLETE_RETRY_S, so an outcome already reached is not thrown away; after that the
  rows stay leased in the file and are delivered again when the lease expires.
"""

from __future__ import annotations

import collections
import functools
import sqlite3
from collections.abc import Callable, Sequence
from typing import TypeVar

import trio

from ..errors import Backpressure, StoreError
from . import attempt_details, cluster_records, reads, retention
from . import logs as logs_sql
from . import pauses as pauses_sql
from . import queue as queue_sql
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
    StoreFault,
    StoreStatistics,
    StoreStats,
)
from .queue import Moves
from .writer import GroupWriter, Job, OwnerThread

T = TypeVar("T")
Clock = Callable[[], float]

LOG_BACKLOG = 20_000  # log lines kept in memory while the store cannot write them
COMPLETE_RETRY_S = 30.0
PASSING = frozenset({"full", "io", "busy"})  # causes worth retrying a write for
PRUNE_RETRY_S = 10.0  # a failed retention pass is retried this soon (it holds a fault)
# Operations whose failure is a fault of the store (the ones that recur by themselves, so
# their next success clears it); the rest (replay, wake, ...) fail only their caller.
TRACKED = frozenset({"accept", "lease", "complete", "append_logs", "prune"})
# A success of these wrote rows, which proves the disk takes writes again: it clears every
# fault with a passing cause, not only its own.
WRITES_ROWS = frozenset({"accept", "complete", "append_logs", "probe"})
# ...except a full disk's fault: small writes can succeed in the WAL's recycled space while
# the file system is still full (the checkpointer copied it back), so that fault clears
# only once the file system has this much free again.
FULL_CLEARS_AT_BYTES = 2 * 1024 * 1024
# ...or after this many probe writes in a row succeeded (a file system whose free space
# figure cannot be trusted must not keep intake shut for ever)
FULL_CLEARS_AFTER_PROBES = 30


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
        keep_details: int = attempt_details.KEEP_PER_FUNCTION,
        checkpoints: Callable[[], int] = lambda: 0,
        free_bytes: Callable[[], int | None] = lambda: None,
    ) -> None:
        self._free_bytes = free_bytes  # on the database's file system; None: unknown
        self._probes_ok = 0  # probe writes in a row that succeeded while a full disk's fault held
        self._keep_details = keep_details  # attempt records kept per function
        self._checkpoints = checkpoints  # WAL checkpoints done by the checkpointer thread
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
        self._log_shares: logs_sql.LogShares | None = None  # writer thread only
        self._log_event = trio.Event()
        self._work_generation = 0
        self._work_event = trio.Event()
        self._work_waiters = 0
        self._accept_calls = 0
        self._events_stored = 0
        self._duplicates = 0
        self._faults: dict[str, StoreFault] = {}
        self._log_backlog: collections.deque[LogRecord] = collections.deque()
        self._logs_dropped = 0

    def set_limits(self, *, max_pending: int, retention_s: float, log_lines: int) -> None:
        """Apply reloaded storage limits; they count from the next write or prune."""
        self._max_pending, self._retention_s, self._log_lines = max_pending, retention_s, log_lines

    # --- intake ---------------------------------------------------------------------------

    async def accept(self, events: Sequence[NewEvent]) -> list[bool]:
        """Store events and their delivery rows; True = stored, False = duplicate messageId.

        Returns only after the commit that holds them. Raises Backpressure when the queue
        is full, StoreError when SQLite fails (then nothing of this call was stored).
        """
        if not events:
            return []
        if self._disk_full():  # the room left is for recording deliveries' outcomes
            raise Backpressure(
                f"storage full: less than {FULL_CLEARS_AT_BYTES >> 20} MiB free beside the database; "
                "intake resumes by itself when there is more"
            )
        blocking = self._blocking_fault()
        if blocking is not None:
            raise Backpressure(
                f"{blocking.condition}: the queue cannot make progress ({blocking.what} fails: {blocking.message})"
            )
        if self._pending >= self._max_pending:
            raise Backpressure(
                f"{self._pending} deliveries are pending, at the limit of storage.max_pending = {self._max_pending}"
            )
        payload = prepare([(e.message_id, e.type, e.body, e.functions, e.source, e.dedupe_scope) for e in events])
        rows = payload.deliveries
        self._pending += rows  # reserved: concurrent callers see the queue as it will be
        try:
            stored: list[bool] = await self._writer.submit(
                Job(None, payload=payload, rows=len(payload.keys), what="accept"), shield=True
            )
        except StoreError as exc:
            self._pending -= rows
            self._fault("accept", exc)
            raise
        except BaseException:
            self._pending -= rows
            raise
        if self._faults:
            self._cleared("accept")
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

    async def lease(self, *, limit: int, lease_s: float, skip: Sequence[str] = ()) -> list[Lease]:
        """Lease up to `limit` due deliveries for `lease_s` seconds, oldest due first, none of `skip`'s."""
        skipped = tuple(skip)
        leases, moves = await self._write(
            lambda c, now: queue_sql.lease(c, now, limit=limit, lease_s=lease_s, skip=skipped), "lease"
        )
        self._apply(moves)
        return leases

    async def renew(self, ids: Sequence[int], *, lease_s: float) -> None:
        """Extend leases the caller still holds (rows waiting for an invocation slot)."""
        id_list = list(ids)
        await self._write(lambda c, now: queue_sql.renew(c, now, id_list, lease_s=lease_s), "renew")

    async def complete(self, completions: Sequence[Completion]) -> None:
        """Record outcomes of leased deliveries: state, attempt rows, counters."""
        if not completions:
            return
        items = list(completions)
        delay, deadline = 0.25, trio.current_time() + COMPLETE_RETRY_S
        while True:
            try:
                moves = await self._write(lambda c, now: queue_sql.complete(c, now, items), "complete")
                break
            except StoreError as exc:
                if exc.kind not in PASSING or trio.current_time() + delay > deadline:
                    raise
            await trio.sleep(delay)
            delay = min(delay * 2, 5.0)
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

    async def hold(self, function: str, ids: Sequence[int], *, reason: str) -> None:
        """`function` cannot run: its rows (these leased ones and every pending one) wait,
        without a due time, until `wake(function)`. Costs nothing per row while they wait."""
        id_list = list(ids)
        moves = await self._write(lambda c, now: queue_sql.hold(c, now, function, id_list, reason=reason), "hold")
        self._apply(moves)

    async def held_functions(self) -> list[str]:
        """Functions with rows on hold (the dispatcher watches them for a live version)."""
        return await self._read(lambda c, now: queue_sql.held_functions(c), "held_functions")

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

    async def set_paused(self, function: str, paused: bool) -> bool:
        """Pause or resume `function` (kept across restarts); True when that changed anything."""
        changed: bool = await self._write(lambda c, now: pauses_sql.set_paused(c, now, function, paused), "pause")
        return changed

    async def paused(self) -> frozenset[str]:
        """The functions paused now."""
        names: frozenset[str] = await self._read(lambda c, now: pauses_sql.paused(c), "paused")
        return names

    async def next_due(self, *, skip: Sequence[str] = ()) -> float | None:
        """When the earliest pending (or leased) delivery becomes due, `skip`'s aside; None: none."""
        skipped = tuple(skip)
        return await self._read(lambda c, now: queue_sql.next_due(c, skip=skipped), "next_due")

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
        self, *, function: str | None = None, state: str | None = None, limit: int = 20, message_id: str | None = None
    ) -> list[DeliverySummary]:
        """Newest deliveries first, optionally of one function, in one state and/or of one messageId."""
        return await self._read(
            lambda c, now: reads.deliveries(c, function=function, state=state, limit=limit, message_id=message_id),
            "deliveries",
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
            fault=self.fault,
            logs_buffered=len(self._log_backlog),
            logs_dropped=self._logs_dropped,
        )

    async def cluster_stats(self) -> None:
        """No cluster: one node, one SQLite file (storage.Storage asks every backend)."""
        return None

    async def cluster_logs(
        self,
        *,
        limit: int,
        function: str | None = None,
        level: str | None = None,
        message_id: str | None = None,
        after: int | None = None,
    ) -> None:
        """No cluster, so no other nodes' lines (`logs --cluster` says so)."""
        return None

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

    # --- cluster mode: this node's records of the cluster's deliveries (cluster_records.py) ---

    async def record_cluster(self, records: Sequence[cluster_records.ClusterRecord]) -> None:
        """Record completions this node reached on cluster deliveries (one writer job)."""
        if records:
            items = list(records)
            await self._write(lambda c, now: cluster_records.record(c, now, items), "record_cluster")

    async def replayed_cluster(self, *, delivery_ids: Sequence[int] | None = None, function: str | None = None) -> None:
        """Records of dead deliveries replayed from this node (these, one function's, or all): pending again."""
        ids = None if delivery_ids is None else list(delivery_ids)
        await self._write(
            lambda c, now: cluster_records.replayed(c, now, delivery_ids=ids, function=function), "record_cluster"
        )

    async def cluster_deliveries(
        self,
        *,
        function: str | None = None,
        state: str | None = None,
        limit: int = 20,
        message_id: str | None = None,
        retrying: bool = False,
    ) -> list[DeliverySummary]:
        """This node's records, newest first (filters as deliveries())."""
        return await self._read(
            lambda c, now: cluster_records.deliveries(
                c, function=function, state=state, limit=limit, message_id=message_id, retrying=retrying
            ),
            "deliveries",
        )

    async def cluster_delivery(self, delivery_id: int) -> DeliveryDetail | None:
        """One record with the attempts this node ran; None when this node has none."""
        return await self._read(lambda c, now: cluster_records.delivery(c, delivery_id), "delivery")

    async def prune_cluster(self) -> int:
        """Records older than the retention go (in chunks); how many."""
        total = 0
        while True:
            n, _ = await self._write(
                lambda c, now: cluster_records.prune(c, now, retention_s=self._retention_s, keep=self._keep_details),
                "prune",
            )
            total += n
            if n < cluster_records.CHUNK:
                return total

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
            checkpoints=self._checkpoints(),
        )

    @property
    def healthy(self) -> bool:
        """False while any store operation is failing (see `fault`) or the last commit failed."""
        return not self._faults and self._writer.healthy

    @property
    def fault(self) -> StoreFault | None:
        """The most telling operation failing now (disk full first), or None."""
        if not self._faults:
            return None
        order = {"full": 0, "corrupt": 1, "io": 2}
        return min(self._faults.values(), key=lambda f: (order.get(f.kind, 9), f.since))

    def _blocking_fault(self) -> StoreFault | None:
        """A failing operation other than accept: the queue is stuck, so intake must refuse."""
        if not self._faults or set(self._faults) == {"accept"}:
            return None
        return min((f for w, f in self._faults.items() if w != "accept"), key=lambda f: f.since)

    def _fault(self, what: str, exc: StoreError) -> None:
        if exc.kind == "closed" or what not in TRACKED:
            return
        if what not in self._faults:
            self._faults[what] = StoreFault(what=what, kind=exc.kind, message=str(exc), since=self._clock())

    def _cleared(self, what: str) -> None:
        full = self._disk_full()  # a full disk's fault stays while the disk is full
        self._faults = {
            w: f
            for w, f in self._faults.items()
            if (full and f.kind == "full") or (w != what and (what not in WRITES_ROWS or f.kind not in PASSING))
        }

    def _disk_full(self) -> bool:
        """A full disk's fault holds while the file system has less than FULL_CLEARS_AT_BYTES
        free, and at most FULL_CLEARS_AFTER_PROBES successful probe writes."""
        if not any(f.kind == "full" for f in self._faults.values()):
            self._probes_ok = 0
            return False
        if self._probes_ok >= FULL_CLEARS_AFTER_PROBES:
            return False
        free = self._free_bytes()
        return free is not None and free < FULL_CLEARS_AT_BYTES

    @property
    def pending_count(self) -> int:
        """Pending + leased deliveries (what backpressure compares to max_pending)."""
        return self._pending

    # --- logs -------------------------------------------------------------------------------

    async def append_logs(self, records: Sequence[LogRecord]) -> None:
        """Add log lines; the oldest beyond `log_lines` are dropped."""
        if not records and not self._log_backlog:
            return
        items = [*self._log_backlog, *records]
        self._log_backlog.clear()
        try:
            newest = await self._write(lambda c, now: self._append_logs(c, items), "append_logs")
        except StoreError:
            # Kept for the next append (the pump tries every fraction of a second); beyond
            # LOG_BACKLOG the oldest go, counted, so a long outage cannot fill the memory.
            excess = max(0, len(items) - LOG_BACKLOG)
            self._logs_dropped += excess
            self._log_backlog.extend(items[excess:])
            return
        if newest > self._newest_log_id:
            self._newest_log_id = newest
            self._log_event.set()
            self._log_event = trio.Event()

    def _append_logs(self, conn: sqlite3.Connection, items: list[LogRecord]) -> int:
        """On the writer thread: append, with the per-share row counts loaded once."""
        if self._log_shares is None:
            self._log_shares = logs_sql.LogShares.load(conn)
        try:
            return logs_sql.append(conn, self._ingest.ids, items, keep=self._log_lines, shares=self._log_shares)
        except BaseException:
            self._log_shares = None  # the transaction rolls back: count again next time
            raise

    async def read_logs(
        self,
        *,
        after_id: int | None = None,
        limit: int = 100,
        function: str | None = None,
        level: str | None = None,
        message_id: str | None = None,
    ) -> list[LogRecord]:
        """Oldest first: the newest `limit` lines, or the first `limit` after `after_id`."""
        return await self._read(
            lambda c, now: logs_sql.read(
                c, after_id=after_id, limit=limit, function=function, level=level, message_id=message_id
            ),
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
        # Hand the freed pages back to the file system, a chunk per job, then truncate the WAL.
        while await self._write(retention.reclaim, "prune"):
            pass
        await self._writer.submit(Job(retention.checkpoint, what="checkpoint", bare=True), shield=True)
        await self._write(lambda c, now: attempt_details.trim(c, now, keep=self._keep_details), "prune")
        return PruneResult(deliveries=deliveries, events=events, attempts=attempts, dedupe_keys=keys)

    async def _prune_forever(self, interval_s: float) -> None:
        delay = interval_s
        while True:
            await trio.sleep(delay)
            try:
                await self.prune()
                delay = interval_s
            except StoreError:
                delay = min(interval_s, PRUNE_RETRY_S)  # it holds a fault: look again soon

    async def _probe_forever(self, interval_s: float = 1.0) -> None:
        """While a fault with a passing cause (disk full) holds, try a small write each second:
        its success clears the fault, so intake reopens by itself once space returns."""
        while True:
            await trio.sleep(interval_s)
            if any(f.kind in PASSING for f in self._faults.values()):
                try:
                    await self._write(queue_sql.probe, "probe")
                except StoreError:
                    self._probes_ok = 0
                else:
                    self._probes_ok += 1

    # --- plumbing ---------------------------------------------------------------------------

    async def _write(self, fn: Callable[[sqlite3.Connection, float], T], what: str) -> T:
        try:
            result = await self._writer.submit(Job(fn, what=what), shield=True)
        except StoreError as exc:
            self._fault(what, exc)
            raise
        if self._faults:
            self._cleared(what)
        return result

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
