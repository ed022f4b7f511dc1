"""The dispatcher: lease due deliveries -> filters -> runner pool -> outcome -> store.

Rules:
* A leased delivery always ends settled: completed (an attempt recorded), postponed (no
  attempt used), or released on the way out. On cancellation the release runs shielded
  with its own short deadline; rows we could not release come back when the lease expires
  (or at once when the store is reopened), so nothing is lost, at worst delivered twice.
* The store may hand out a row we still hold (its lease expired while it waited in a
  batch or a slow invocation); we skip those, so one process never runs a row twice.
* A function without a live version (fails to load, removed, disabled) has its rows
  postponed with the reason, attempts untouched; the registry's `store.wake(function)`
  makes them due again when the file loads, so fixing the file delivers them.
* Secrets (`apiKey`, `secret_settings`) are redacted from console lines and error messages
  before anything is stored, logged or counted (redact.py).
* Filters run first: a filtered-out event is completed as FILTERED and never reaches the
  function (no attempt used). A filter that crashes drops the event (fail closed).
* Up to `concurrency` invocations are in flight at once, so every runner process is busy;
  leasing pauses while `concurrency * batch_size` leased rows are already in memory.
* Outcomes, the retry schedule and the onBatch grouping rules are decided by the pure
  helpers in `delivery_rules.py`; this module owns the I/O around them: leasing, timers,
  invocation slots, settling and releasing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import trio

from .attempts import attempt_detail
from .config import FunctionConfig
from .delivery_rules import (
    Item,
    Target,
    apply_filters,
    completion_for,
    filtered,
    fit_results,
    function_logs,
    goes_to_single_handler,
    redacted,
    split_full,
)
from .errors import RunnerError, StoreError
from .log import debug_enabled, get_logger
from .outcomes import DeliveryState, InvocationResult, Outcome
from .redact import redactor_for, secret_values
from .stacks import located
from .store import Completion, Lease, Store

if TYPE_CHECKING:
    from .runner import RunnerPool

__all__ = [
    "DEFAULT_LEASE_S",
    "DEFAULT_POSTPONE_S",
    "Dispatcher",
    "DispatcherStatistics",
    "Item",
    "ResultRecorder",
    "Target",
    "completion_for",
    "filtered",
    "serve_delivery",
]  # Target & co. live in delivery_rules.py

log = get_logger()

DEFAULT_LEASE_S = 300.0
DEFAULT_POSTPONE_S = 60.0  # a function that cannot run is looked at again this often
MAX_IDLE_S = 5.0  # bounds the sleep when nothing is due (wall-clock jumps, missed wake-ups)
RELEASE_DEADLINE_S = 5.0


class ResultRecorder(Protocol):
    """metrics.Metrics: latency windows per function."""

    def record(self, function: str, result: InvocationResult, now: float) -> None: ...


Resolve = Callable[[str], Target]
ResultHook = Callable[[str, InvocationResult], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatcherStatistics:
    in_flight: int  # invocations running now
    held: int  # leased rows in memory (running or waiting in a batch)
    invocations: int  # pool.invoke calls made
    completed: int  # deliveries completed (any outcome, filtered included)
    postponed: int  # deliveries postponed because their function could not run
    draining: bool


class Dispatcher:
    """Feeds the runner pool from the store; `serve()` runs it, `run_once()` steps it (tests)."""

    def __init__(
        self,
        store: Store,
        pool: RunnerPool,
        *,
        resolve: Resolve,
        max_attempts: int = 10,
        base_delay_s: float = 30.0,
        lease_s: float = DEFAULT_LEASE_S,
        batch_size: int = 100,
        invoke_size: int = 25,
        concurrency: int | None = None,
        postpone_s: float = DEFAULT_POSTPONE_S,
        metrics: ResultRecorder | None = None,
        on_result: ResultHook | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._store, self._pool, self._resolve = store, pool, resolve
        self._max_attempts, self._base_delay_s = max_attempts, base_delay_s
        self._lease_s, self._batch_size, self._postpone_s = lease_s, batch_size, postpone_s
        self._invoke_size = max(1, invoke_size)  # events per pool.invoke (single-event handlers)
        if concurrency is None:
            stats = getattr(pool, "statistics", None)
            concurrency = max(4, 2 * (stats().workers if stats is not None else 2))
        self._slots = trio.Semaphore(concurrency)  # invocations in flight
        self._max_held = concurrency * batch_size  # leased rows in memory, waiting or running
        self._metrics, self._on_result, self._clock, self._rng = metrics, on_result, clock, rng
        self._held: set[int] = set()
        self._held_changed = trio.Event()  # set (and replaced) whenever rows settle
        self._batches: dict[str, list[Item]] = {}
        self._timers: set[str] = set()
        self._in_flight = 0
        self._draining = False
        self._wait_scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        self._invocations = self._completed = self._postponed = 0

    def statistics(self) -> DispatcherStatistics:
        return DispatcherStatistics(
            in_flight=self._in_flight,
            held=len(self._held),
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
                while not self._draining:
                    if len(self._held) >= self._max_held:
                        await self._interruptible(self._held_changed.wait)
                        continue
                    generation = self._store.work_generation
                    try:
                        leases = await self._lease()
                    except StoreError as exc:
                        log.error("delivery_lease_failed", error=str(exc))
                        await self._interruptible(partial(trio.sleep, 1.0))
                        continue
                    if leases:
                        self._dispatch(nursery, leases)
                    else:
                        await self._sleep(generation)
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
        waiting = [lease.id for items in self._batches.values() for lease, _ in items]
        self._batches.clear()
        await self._release(waiting)
        with trio.move_on_after(timeout_s):
            # Every leased row settled (completed, postponed or released), not merely "no
            # invocation running": a group may be dispatched and not yet started.
            while self._held:
                await self._held_changed.wait()

    # --- leasing ----------------------------------------------------------------------------

    async def _lease(self) -> list[Lease]:
        leases = await self._store.lease(limit=self._batch_size, lease_s=self._lease_s)
        fresh = [lease for lease in leases if lease.id not in self._held]
        self._held.update(lease.id for lease in fresh)
        return fresh

    async def _sleep(self, generation: int) -> None:
        """Until new work is committed, the next row is due, or MAX_IDLE_S."""
        due = await self._store.next_due()
        delay = MAX_IDLE_S if due is None else min(max(due - self._clock(), 0.005), MAX_IDLE_S)

        async def wait() -> None:
            with trio.move_on_after(delay):
                await self._store.wait_work(generation)

        await self._interruptible(wait)

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
        """Rows of one function: postpone, filter, then batch or run."""
        target = self._target(function)
        if target.version is None or not target.config.enabled:
            until = self._clock() + (self._postpone_s if target.hold_s is None else target.hold_s)
            reason = target.reason or "function has no live version"
            await self._settle(leases, self._store.postpone([x.id for x in leases], until=until, reason=reason))
            self._postponed += len(leases)
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
        assert target.config.batch is not None
        buffer = self._batches.setdefault(function, [])
        buffer.extend(items)
        if self._nursery is None:
            return  # run_once flushes everything itself
        full, buffer[:] = split_full(buffer, target.config.batch.max_events)
        for chunk in full:
            self._nursery.start_soon(self._guarded, self._run_batch, function, chunk)
        if buffer and function not in self._timers:
            self._timers.add(function)
            self._nursery.start_soon(self._guarded, self._batch_timer, function, target.config.batch.max_wait_ms / 1000)

    async def _batch_timer(self, function: str, max_wait_s: float) -> None:
        try:
            await trio.sleep(max_wait_s)
        finally:
            self._timers.discard(function)
        await self._flush(function)

    async def _flush(self, function: str) -> None:
        items = self._batches.pop(function, [])
        batch = self._target(function).config.batch
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
            async with self._slots:
                self._in_flight += 1
                try:
                    self._invocations += 1
                    results = await self._invoke(target, function, items, batch=batch)
                finally:
                    self._in_flight -= 1
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
        self._held.difference_update(ids)
        self._held_changed.set()
        self._held_changed = trio.Event()


def _log_filter_crash(lease: Lease) -> None:
    log.exception("delivery_filter_crashed", function=lease.function, delivery_id=lease.id)


async def serve_delivery(
    store: Store,
    pool: RunnerPool,
    *,
    resolve: Resolve,
    max_attempts: int = 10,
    base_delay_s: float = 30.0,
    lease_s: float = DEFAULT_LEASE_S,
    batch_size: int = 100,
    invoke_size: int = 25,
    concurrency: int | None = None,
    postpone_s: float = DEFAULT_POSTPONE_S,
    metrics: ResultRecorder | None = None,
    on_result: ResultHook | None = None,
    clock: Callable[[], float] = time.time,
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
