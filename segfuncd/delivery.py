"""The dispatcher: lease due deliveries -> filters -> runner pool -> outcome -> store.

Rules:
* A leased delivery always ends settled: completed (an attempt recorded), postponed (no
  attempt used), or released on the way out. On cancellation the release runs shielded
  with its own short deadline; rows we could not release come back when the lease expires
  (or at once when the store is reopened), so nothing is lost, at worst delivered twice.
* The store may hand out a row we still hold (its lease expired while it waited in a
  batch or a slow invocation); we skip those, so one process never runs a row twice.
* A function without a live version (fails to load, removed, disabled) has its rows put
  on hold with the reason, attempts untouched: every pending row of the function at once,
  with no due time, so leasing never meets them again (issue 12: a 300k backlog of a
  broken plugin costs nothing while it waits). The registry's `store.wake(function)`
  makes them due when the file loads; the dispatcher also looks at held functions every
  HELD_CHECK_S (per function, not per row) and wakes those that can run again.
* Drain finishes what runs and starts nothing new: rows leased but not started (waiting
  for a slot or in a batch) go back to pending at once.
* Secrets (`apiKey`, `secret_settings`) are redacted from console lines and error messages
  before anything is stored, logged or counted (redact.py).
* Filters run first: a filtered-out event is completed as FILTERED and never reaches the
  function (no attempt used). A filter that crashes drops the event (fail closed).
* Fair share (issue 10): invocation slots are a FairShare (fairshare.py) keyed by
  function: up to `concurrency` invocations are in flight at once, so every runner process
  is busy; functions waiting for a slot are served in turn; one function holds at most its
  `max_concurrency`; and a function below its share always gets a slot, so a neighbour
  whose invocations hang until timeout_ms cannot hold another function's events back.
* Leasing is fair too: at most `concurrency * batch_size` leased rows of one function are
  in memory; a function at that bound is skipped by the next lease (its backlog would
  otherwise fill every lease and memory with rows that wait for its slots), and leasing
  pauses only when no function with due work is below it.
* A held row's lease is renewed (every `lease_s / 3`) while it waits for a slot or runs:
  a lease never expires under a row we still hold, so no other holder can run it twice.
* Outcomes follow `outcomes.state_after` and the retry schedule `outcomes.next_attempt_at`
  (a RetryError after a 429/503 with Retry-After, or with its own `retryAfter`, waits at
  least that long: `outcomes.requested_delay_s`, capped at 1 h).
  Which version and handlers run, and whether a function batches, is `functions.Target`.
* onBatch: rows are grouped per function up to `max_events` or `max_wait_ms`, whichever
  comes first. A group of one goes to the single-event handler when there is one.
* The pool's answer is trusted for nothing: a result count that does not match the events
  becomes RETRY for the missing ones, never a lost delivery.

Layout: the Dispatcher (leasing, timers, invocation slots, settling, releasing), then the
plain functions it applies to one group of rows (filters, outcome -> store update,
onBatch chunking, redaction, log records), no trio or store calls in those.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import trio

from .attempts import attempt_detail
from .clock import steady_time
from .config import FunctionConfig
from .errors import RunnerError, StoreError
from .fairshare import FairShare, FairShareStatistics
from .functions import Target
from .log import debug_enabled, get_logger
from .outcomes import (
    DEFAULT_BASE_DELAY_S,
    DEFAULT_MAX_ATTEMPTS,
    DeliveryState,
    InvocationResult,
    Outcome,
    next_attempt_at,
    requested_delay_s,
    state_after,
)
from .redact import Redactor, redactor_for, secret_values
from .spec import EncodedEvent, single_handlers
from .stacks import located
from .storage import Storage
from .store import Completion, Lease, LogRecord

if TYPE_CHECKING:
    from .filters import FilterChain
    from .runner import RunnerPool

Item = tuple[Lease, EncodedEvent]  # a leased row and the event its function gets (filtered)

log = get_logger()

DEFAULT_LEASE_S = 300.0
DEFAULT_POSTPONE_S = 60.0  # a function that cannot run is looked at again this often
MAX_IDLE_S = 5.0  # bounds the sleep when nothing is due (wall-clock jumps, missed wake-ups)
RELEASE_DEADLINE_S = 5.0
HELD_CHECK_S = 1.0  # held functions are looked at this often (one resolve each, no I/O)


class ResultRecorder(Protocol):
    """metrics.Metrics: latency windows per function."""

    def record(self, function: str, result: InvocationResult, now: float) -> None: ...


Resolve = Callable[[str], Target]
ResultHook = Callable[[str, InvocationResult], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatcherStatistics:
    in_flight: int  # invocations running now
    held: int  # leased rows in memory (running or waiting in a batch)
    slots: FairShareStatistics  # invocation slots held / waited for, per function
    invocations: int  # pool.invoke calls made
    completed: int  # deliveries completed (any outcome, filtered included)
    postponed: int  # deliveries postponed because their function could not run
    draining: bool


class Dispatcher:
    """Feeds the runner pool from the store; `serve()` runs it, `run_once()` steps it (tests)."""

    def __init__(
        self,
        store: Storage,
        pool: RunnerPool,
        *,
        resolve: Resolve,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        base_delay_s: float = DEFAULT_BASE_DELAY_S,
        lease_s: float = DEFAULT_LEASE_S,
        batch_size: int = 100,
        invoke_size: int = 25,
        concurrency: int | None = None,
        postpone_s: float = DEFAULT_POSTPONE_S,
        metrics: ResultRecorder | None = None,
        on_result: ResultHook | None = None,
        clock: Callable[[], float] = steady_time,
        rng: random.Random | None = None,
    ) -> None:
        self._store, self._pool, self._resolve = store, pool, resolve
        self._max_attempts, self._base_delay_s = max_attempts, base_delay_s
        self._lease_s, self._batch_size, self._postpone_s = lease_s, batch_size, postpone_s
        self._invoke_size = max(1, invoke_size)  # events per pool.invoke (single-event handlers)
        if concurrency is None:
            stats = getattr(pool, "statistics", None)
            concurrency = max(4, 2 * (stats().workers if stats is not None else 2))
        self._slots = FairShare(max(1, concurrency))  # invocations in flight, shared by function
        self._max_held = concurrency * batch_size  # leased rows of one function in memory
        self._metrics, self._on_result, self._clock, self._rng = metrics, on_result, clock, rng
        self._held: dict[int, str] = {}  # leased rows in memory -> their function
        self._held_by: dict[str, int] = {}  # leased rows in memory per function
        self._held_changed = trio.Event()  # set (and replaced) whenever rows settle
        self._batches: dict[str, list[Item]] = {}
        self._timers: set[str] = set()
        self._in_flight = 0
        self._draining = False
        self._wait_scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        self._invocations = self._completed = self._postponed = 0
        self._held_functions: set[str] = set()  # functions whose rows are on hold in the store
        self._held_checked = -math.inf
        self._slot_waiters: set[trio.CancelScope] = set()  # cancelled by drain()

    def set_retry(self, *, max_attempts: int, base_delay_s: float, lease_s: float) -> None:
        """Apply a reloaded [retry] (and lease length) to every attempt recorded from now on."""
        self._max_attempts, self._base_delay_s, self._lease_s = max_attempts, base_delay_s, lease_s

    def statistics(self) -> DispatcherStatistics:
        return DispatcherStatistics(
            in_flight=self._in_flight,
            held=len(self._held),
            slots=self._slots.statistics(),
            invocations=self._invocations,
            completed=self._completed,
            postponed=self._postponed,
            draining=self._draining,
        )

    # --- driving ----------------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[Dispatcher] = trio.TASK_STATUS_IGNORED) -> None:
        """Lease and dispatch until cancelled or drained; releases what it holds on the way out."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started(self)
                try:
                    self._held_functions.update(await self._store.held_functions())
                except StoreError as exc:
                    log.error("delivery_store_failed", error=str(exc))
                renewing = trio.CancelScope()
                nursery.start_soon(self._renew_forever, renewing)
                while not self._draining:
                    await self._wake_held()
                    generation = self._store.work_generation
                    held_changed = self._held_changed
                    full = self._full()
                    try:
                        leases = await self._lease(skip=full)
                    except StoreError as exc:
                        log.error("delivery_lease_failed", error=str(exc))
                        await self._interruptible(partial(trio.sleep, 1.0))
                        continue
                    if leases:
                        self._dispatch(nursery, leases)
                    else:
                        await self._sleep(generation, skip=full, held_changed=held_changed)
                renewing.cancel()  # draining: what is still held settles within drain's timeout
        finally:
            self._batches.clear()
            await self._release(sorted(self._held))

    async def run_once(self) -> int:
        """Lease one round, run it to the end, flush batches at once; the number leased."""
        leases = await self._lease()
        async with trio.open_nursery() as nursery:
            self._dispatch(nursery, leases)
        async with trio.open_nursery() as nursery:
            for function in list(self._batches):
                nursery.start_soon(self._guarded, self._flush, function)
        return len(leases)

    async def drain(self, *, timeout_s: float) -> None:
        """Stop leasing; give running invocations up to `timeout_s`; hand batches back."""
        self._draining = True
        if self._wait_scope is not None:
            self._wait_scope.cancel()
        for scope in self._slot_waiters:  # leased, not started: handed back at once
            scope.cancel()
        waiting = [lease.id for items in self._batches.values() for lease, _ in items]
        self._batches.clear()
        await self._release(waiting)
        with trio.move_on_after(timeout_s):
            # Every leased row settled (completed, postponed or released), not merely "no
            # invocation running": a group may be dispatched and not yet started.
            while self._held:
                await self._held_changed.wait()

    # --- leasing ----------------------------------------------------------------------------

    async def _lease(self, *, skip: Sequence[str] = ()) -> list[Lease]:
        leases = await self._store.lease(limit=self._batch_size, lease_s=self._lease_s, skip=skip)
        fresh = [lease for lease in leases if lease.id not in self._held]
        for lease in fresh:
            self._held[lease.id] = lease.function
            self._held_by[lease.function] = self._held_by.get(lease.function, 0) + 1
        return fresh

    async def _wake_held(self) -> None:
        """Wake held functions that can run again (loaded, enabled); per function, not per row."""
        if not self._held_functions or trio.current_time() - self._held_checked < HELD_CHECK_S:
            return
        self._held_checked = trio.current_time()
        for function in sorted(self._held_functions):
            target = self._target(function)
            if target.version is None or not target.config.enabled:
                continue
            try:
                await self._store.wake(function)
            except StoreError as exc:
                log.error("delivery_store_failed", error=str(exc))
                return
            self._held_functions.discard(function)

    async def _take_slot(self, function: str, *, limit: int | None) -> bool:
        """One of `function`'s fair-share slots, or False when drain() began while we waited
        (the rows were not started)."""
        if self._draining:
            return False
        with trio.CancelScope() as waiting:
            self._slot_waiters.add(waiting)
            try:
                await self._slots.acquire(function, limit=limit)
            finally:
                self._slot_waiters.discard(waiting)
        if waiting.cancelled_caught:
            return False
        if self._draining:
            self._slots.release(function)
            return False
        return True

    def _full(self) -> list[str]:
        """Functions holding their bound of leased rows: the next lease skips them."""
        return [function for function, n in self._held_by.items() if n >= self._max_held]

    async def _sleep(self, generation: int, *, skip: Sequence[str] = (), held_changed: trio.Event) -> None:
        """Until new work is committed, the next row is due, a held row settles, or MAX_IDLE_S.

        Rows of `skip` (functions at their bound) do not count as due: they wait for their
        own rows to settle, which `held_changed` reports.
        """
        due = await self._store.next_due(skip=skip)
        delay = MAX_IDLE_S if due is None else min(max(due - self._clock(), 0.005), MAX_IDLE_S)

        async def wait() -> None:
            with trio.move_on_after(delay):
                async with trio.open_nursery() as nursery:

                    async def until(fn: Callable[[], Awaitable[Any]]) -> None:
                        await fn()
                        nursery.cancel_scope.cancel()

                    nursery.start_soon(until, partial(self._store.wait_work, generation))
                    if skip:
                        nursery.start_soon(until, held_changed.wait)

        await self._interruptible(wait)

    async def _renew_forever(self, scope: trio.CancelScope) -> None:
        """Keep the leases of held rows alive (see the module rules) until `scope` is cancelled."""
        with scope:
            while True:
                await trio.sleep(self._lease_s / 3)
                if self._held:
                    try:
                        await self._store.renew(list(self._held), lease_s=self._lease_s)
                    except StoreError as exc:
                        log.error("delivery_renew_failed", error=str(exc), deliveries=len(self._held))

    async def _interruptible(self, fn: Callable[[], Awaitable[Any]]) -> None:
        """Await `fn()` unless drain() interrupts it."""
        with trio.CancelScope() as scope:
            self._wait_scope = scope
            if self._draining:
                scope.cancel()
            await fn()
        self._wait_scope = None

    def _dispatch(self, nursery: trio.Nursery, leases: Sequence[Lease]) -> None:
        groups: dict[str, list[Lease]] = {}
        for lease in leases:
            groups.setdefault(lease.function, []).append(lease)
        for function, items in groups.items():
            nursery.start_soon(self._guarded, self._group, function, items)

    async def _guarded(self, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        """One unit of work; a failing store costs that unit (its leases expire), not the loop."""
        try:
            await fn(*args)
        except StoreError as exc:
            log.error("delivery_store_failed", error=str(exc))

    async def _group(self, function: str, leases: list[Lease]) -> None:
        """Rows of one function: hold, filter, then batch or run."""
        if self._draining:  # leased just before drain(): not started, so handed back now
            await self._release([x.id for x in leases])
            return
        target = self._target(function)
        if target.version is None or not target.config.enabled:
            reason = target.reason or "function has no live version"
            await self._settle(leases, self._store.hold(function, [x.id for x in leases], reason=reason))
            self._postponed += len(leases)
            self._held_functions.add(function)
            self._held_checked = -math.inf  # it may have come back while we held it
            return
        runnable, done = apply_filters(target.filters, leases, on_crash=_log_filter_crash)
        if done:
            ids = {c.delivery_id for c in done}
            await self._settle([x for x in leases if x.id in ids], self._store.complete(done))
            self._completed += len(done)
        if target.batching:
            self._batch_add(target, function, runnable)
        elif len(runnable) <= self._invoke_size:
            if runnable:
                await self._run(target, function, runnable, batch=False)
        else:
            # Smaller invocations spread one function's backlog over every runner, and a
            # result is recorded as soon as its chunk is done (fewer repeats after a crash).
            async with trio.open_nursery() as nursery:
                for i in range(0, len(runnable), self._invoke_size):
                    chunk = runnable[i : i + self._invoke_size]
                    nursery.start_soon(self._guarded, partial(self._run, target, function, chunk, batch=False))

    def _target(self, function: str) -> Target:
        try:
            return self._resolve(function)
        except Exception as exc:  # a bug in the resolver must not stop every function
            log.exception("delivery_resolve_failed", function=function)
            return Target(version=None, config=FunctionConfig(), reason=f"cannot resolve the function: {exc!r}")

    # --- onBatch grouping -------------------------------------------------------------------

    def _batch_add(self, target: Target, function: str, items: list[Item]) -> None:
        batch = target.batch
        assert batch is not None
        buffer = self._batches.setdefault(function, [])
        buffer.extend(items)
        if self._nursery is None:
            return  # run_once flushes everything itself
        full, buffer[:] = split_full(buffer, batch.max_events)
        for chunk in full:
            self._nursery.start_soon(self._guarded, self._run_batch, function, chunk)
        if buffer and function not in self._timers:
            self._timers.add(function)
            self._nursery.start_soon(self._guarded, self._batch_timer, function, batch.max_wait_ms / 1000)

    async def _batch_timer(self, function: str, max_wait_s: float) -> None:
        try:
            await trio.sleep(max_wait_s)
        finally:
            self._timers.discard(function)
        await self._flush(function)

    async def _flush(self, function: str) -> None:
        items = self._batches.pop(function, [])
        batch = self._target(function).batch
        size = batch.max_events if batch is not None else max(1, len(items))
        async with trio.open_nursery() as nursery:
            for i in range(0, len(items), size):
                nursery.start_soon(self._guarded, self._run_batch, function, items[i : i + size])

    async def _run_batch(self, function: str, chunk: list[Item]) -> None:
        target = self._target(function)
        if target.version is None or not target.batching:
            # The function changed while the rows waited: take them the ordinary way.
            await self._group(function, [lease for lease, _ in chunk])
            return
        await self._run(target, function, chunk, batch=not goes_to_single_handler(chunk, target.handlers))

    # --- running ----------------------------------------------------------------------------

    async def _run(self, target: Target, function: str, items: list[Item], *, batch: bool) -> None:
        """Invoke the pool on `items` (in a slot) and record every outcome."""
        assert target.version is not None
        leases = [lease for lease, _ in items]
        try:
            if not await self._take_slot(function, limit=target.config.max_concurrency or None):
                return  # draining: the finally below hands the rows back
            try:
                self._in_flight += 1
                self._invocations += 1
                results = await self._invoke(target, function, items, batch=batch)
            finally:
                self._in_flight -= 1
                self._slots.release(function)
            if results is None:
                until = self._clock() + self._postpone_s
                await self._settle(
                    leases,
                    self._store.postpone(
                        [x.id for x in leases], until=until, reason="dispatcher error, see the daemon log"
                    ),
                )
                return
            redact = redactor_for(secret_values(target.config))
            plugin = target.version
            results = [located(r, filename=f"{plugin.name}.js", source=plugin.source) for r in results]
            if redact:  # before anything is stored, logged or counted
                results = [redacted(r, redact) for r in results]
            now = self._clock()
            version = target.version.hash
            completions = [
                completion_for(
                    lease,
                    result,
                    version=version,
                    now=now,
                    max_attempts=self._max_attempts,
                    base_delay_s=self._base_delay_s,
                    rng=self._rng,
                    detail=attempt_detail(
                        result, started_at=now - result.duration_ms / 1000, redact=redact if redact else None
                    ),
                )
                for lease, result in zip(leases, results, strict=False)
            ]
            if not await self._settle(leases, self._store.complete(completions)):
                return
            self._completed += len(completions)
            self._report(function, version, leases, results, completions, now)
            try:
                await self._store.append_logs(function_logs(function, version, leases, results))
            except StoreError as exc:  # the outcome is recorded; losing console lines is survivable
                log.error("delivery_logs_failed", function=function, error=str(exc))
        finally:
            unsettled = [x.id for x in leases if x.id in self._held]
            if unsettled:  # cancelled (shutdown) or the store failed: hand them back
                await self._release(unsettled)

    async def _invoke(
        self, target: Target, function: str, items: list[Item], *, batch: bool
    ) -> list[InvocationResult] | None:
        """The pool's answer, one result per item; None when something below us has a bug."""
        assert target.version is not None
        try:
            results = await self._pool.invoke(
                target.version, [e for _, e in items], target.config.settings, batch=batch
            )
        except RunnerError as exc:
            return [InvocationResult(outcome=Outcome.RETRY, error_name="RunnerCrashed", error_message=str(exc))] * len(
                items
            )
        except Exception:
            log.exception("delivery_invoke_failed", function=function)
            return None
        return fit_results(results, len(items))

    def _report(
        self,
        function: str,
        version: str,
        leases: list[Lease],
        results: list[InvocationResult],
        completions: list[Completion],
        now: float,
    ) -> None:
        """Metrics, the result hook, and one canonical log line per attempt."""
        debug = debug_enabled()
        for lease, result, c in zip(leases, results, completions, strict=False):
            if self._metrics is not None:
                self._metrics.record(function, result, now)
            if self._on_result is not None:
                self._on_result(function, result)
            quiet = result.outcome is Outcome.DELIVERED
            if quiet and not debug:
                continue  # the debug line costs a logger bind per event even when filtered out
            level = "debug" if quiet else "info" if c.state is DeliveryState.PENDING else "warning"
            getattr(log, level)(
                "delivery_attempt",
                function=function,
                version=version,
                delivery_id=lease.id,
                message_id=lease.message_id,
                attempt=lease.attempts + 1,
                outcome=result.outcome.value,
                state=c.state.value,
                error=result.error,
                duration_ms=round(result.duration_ms, 1),
            )

    # --- settling ---------------------------------------------------------------------------

    async def _settle(self, leases: Sequence[Lease], write: Awaitable[None]) -> bool:
        """Await a store write that settles `leases`; they are ours no more either way.

        When the write fails the rows stay leased in the file: we let go of them, so their
        lease expires and they are leased again (at-least-once), instead of holding them
        in memory where the skip-what-we-hold rule would starve them until a restart.
        """
        try:
            await write
            return True
        except StoreError as exc:
            log.error("delivery_store_failed", error=str(exc), deliveries=len(leases))
            return False
        finally:
            self._forget(lease.id for lease in leases)

    async def _release(self, ids: list[int]) -> None:
        if not ids:
            return
        with trio.CancelScope(shield=True), trio.move_on_after(RELEASE_DEADLINE_S):
            try:
                await self._store.release(ids)
            except StoreError as exc:
                log.error("delivery_release_failed", error=str(exc), deliveries=len(ids))
        self._forget(ids)

    def _forget(self, ids: Iterable[int]) -> None:
        for i in ids:
            function = self._held.pop(i, None)
            if function is not None:
                left = self._held_by[function] - 1
                if left:
                    self._held_by[function] = left
                else:
                    del self._held_by[function]
        self._held_changed.set()
        self._held_changed = trio.Event()


# --- plain decisions over one group of rows ------------------------------------------------


def goes_to_single_handler(chunk: list[Item], handlers: tuple[str, ...]) -> bool:
    """A group of one goes to onTrack & co. when the plugin has one; anything else to onBatch."""
    event_type = chunk[0][0].type
    return len(chunk) == 1 and any(h in handlers for h in single_handlers(event_type))


def split_full(buffer: list[Item], max_events: int) -> tuple[list[list[Item]], list[Item]]:
    """The full onBatch groups of `buffer` (oldest first) and the rows left waiting."""
    full: list[list[Item]] = []
    while len(buffer) >= max_events:
        full.append(buffer[:max_events])
        buffer = buffer[max_events:]
    return full, buffer


def apply_filters(
    chain: FilterChain | None, leases: list[Lease], *, on_crash: Callable[[Lease], None]
) -> tuple[list[Item], list[Completion]]:
    """Run each event through its function's filters: (rows to run, rows completed as FILTERED).

    A filter that raises drops the event (fail closed); `on_crash` is called inside the
    `except`, so the caller can log the traceback.
    """
    if chain is None:
        return [(lease, lease.encoded) for lease in leases], []
    runnable, done = [], []
    for lease in leases:
        try:
            event = lease.event
            decision = chain.apply(event)
        except Exception:  # fail closed, as a filter that cannot evaluate does
            on_crash(lease)
            done.append(filtered(lease, "filter_error"))
            continue
        if decision.event is None:
            done.append(filtered(lease, decision.reason or "dropped"))
        else:
            kept = decision.event
            runnable.append((lease, lease.encoded if kept is event else EncodedEvent.of(kept)))
    return runnable, done


def completion_for(
    lease: Lease,
    result: InvocationResult,
    *,
    version: str | None,
    now: float,
    max_attempts: int,
    base_delay_s: float,
    rng: random.Random | None = None,
    detail: str | None = None,
) -> Completion:
    """The store update for one result: new state and, for a retry, when (pure); `detail` is
    the attempt record (attempts.py) stored with it."""
    attempts = lease.attempts + 1
    state = state_after(result.outcome, attempts=attempts, max_attempts=max_attempts)
    due = None
    if state is DeliveryState.PENDING:
        due = next_attempt_at(
            attempts, now=now, base_delay_s=base_delay_s, rng=rng, retry_after_s=requested_delay_s(result)
        )
    return Completion(
        delivery_id=lease.id,
        function=lease.function,
        result=result,
        version=version,
        state=state,
        next_attempt_at=due,
        detail=detail,
    )


def filtered(lease: Lease, reason: str) -> Completion:
    result = InvocationResult(outcome=Outcome.DISCARDED, error_name="Filtered", error_message=reason)
    return Completion(
        delivery_id=lease.id, function=lease.function, result=result, version=None, state=DeliveryState.FILTERED
    )


def fit_results(results: list[InvocationResult], n: int) -> list[InvocationResult]:
    """One result per event, whatever the pool answered (a mismatch is retried, not lost)."""
    if len(results) == n:
        return results
    missing = InvocationResult(
        outcome=Outcome.RETRY,
        error_name="RunnerCrashed",
        error_message=f"runner answered {len(results)} results for {n} events",
    )
    return (results + [missing] * n)[:n]


def redacted(result: InvocationResult, redact: Redactor) -> InvocationResult:
    """`result` with secrets removed from its error name and message and console lines."""
    if not result.error_message and not result.logs and not result.error_name:
        return result  # nothing that could carry a secret (the common case: saves a copy per event)
    return dataclasses.replace(
        result,
        error_name=redact(result.error_name) if result.error_name else result.error_name,
        error_message=redact(result.error_message) if result.error_message else result.error_message,
        logs=tuple(dataclasses.replace(line, message=redact(line.message)) for line in result.logs),
    )


def function_logs(function: str, version: str, leases: list[Lease], results: list[InvocationResult]) -> list[LogRecord]:
    return [
        LogRecord(
            time=line.time,
            level=line.level,
            source="function",
            function=function,
            version=version,
            message_id=lease.message_id,
            outcome=result.outcome.value,
            message=line.message,
        )
        for lease, result in zip(leases, results, strict=False)
        for line in result.logs
    ]


def _log_filter_crash(lease: Lease) -> None:
    log.exception("delivery_filter_crashed", function=lease.function, delivery_id=lease.id)


async def serve_delivery(
    store: Storage,
    pool: RunnerPool,
    *,
    resolve: Resolve,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    base_delay_s: float = DEFAULT_BASE_DELAY_S,
    lease_s: float = DEFAULT_LEASE_S,
    batch_size: int = 100,
    invoke_size: int = 25,
    concurrency: int | None = None,
    postpone_s: float = DEFAULT_POSTPONE_S,
    metrics: ResultRecorder | None = None,
    on_result: ResultHook | None = None,
    clock: Callable[[], float] = steady_time,
    task_status: trio.TaskStatus[Dispatcher] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a Dispatcher until cancelled; `task_status.started` hands it over (for drain())."""
    dispatcher = Dispatcher(
        store,
        pool,
        resolve=resolve,
        max_attempts=max_attempts,
        base_delay_s=base_delay_s,
        lease_s=lease_s,
        batch_size=batch_size,
        invoke_size=invoke_size,
        concurrency=concurrency,
        postpone_s=postpone_s,
        metrics=metrics,
        on_result=on_result,
        clock=clock,
    )
    await dispatcher.serve(task_status=task_status)
