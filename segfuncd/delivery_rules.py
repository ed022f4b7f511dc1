"""The dispatcher's pure decisions: which handler, how rows group for onBatch, outcome -> store update.

Rules:
* Outcomes follow `outcomes.state_after` and the retry schedule `outcomes.next_attempt_at`
  (defaults: 10 attempts, 30 s doubling with jitter: about 4 h before the dead letter).
* onBatch (issue 7): when the function's config has `batch` and the plugin defines
  onBatch, rows are grouped per function up to `max_events` or `max_wait_ms`, whichever
  comes first. A group of one goes to the single-event handler when there is one.
* The pool's answer is trusted for nothing: a result count that does not match the events
  becomes RETRY for the missing ones, never a lost delivery.

Here: Target, `apply_filters`, `completion_for`, `filtered`, `single_handlers`, the onBatch chunking helpers,
redaction of results and the log records of an attempt; plain functions over plain data,
no trio, no store, no runner. Not here: leasing, timers, slots and settling (`delivery.py`).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import FunctionConfig
from .outcomes import DeliveryState, InvocationResult, Outcome, next_attempt_at, state_after
from .redact import Redactor
from .runner.version import PluginVersion
from .store import Completion, Lease, LogRecord

if TYPE_CHECKING:
    from .filters import FilterChain

Item = tuple[Lease, dict[str, Any]]  # a leased row and the event its function gets (filtered)


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """What the dispatcher needs to run one function now (from the registry and config)."""

    version: PluginVersion | None  # None: no live version, deliveries wait
    config: FunctionConfig
    filters: FilterChain | None = None
    reason: str | None = None  # why there is no live version, shown on the waiting rows
    handlers: tuple[str, ...] = ()  # LoadReport.handlers; onBatch needs "onBatch" here
    hold_s: float | None = None  # with no version: how long rows wait (None: the dispatcher's default)

    @property
    def batching(self) -> bool:
        return self.config.batch is not None and "onBatch" in self.handlers


def single_handlers(event_type: str) -> tuple[str, ...]:
    """Handler names that take one event of `event_type` (onTrack / track, ..., onDelete)."""
    if event_type == "delete":
        return ("onDelete",)
    return (f"on{event_type.capitalize()}", event_type) if event_type else ()


def goes_to_single_handler(chunk: list[Item], handlers: tuple[str, ...]) -> bool:
    """A group of one goes to onTrack & co. when the plugin has one; anything else to onBatch."""
    event_type = str(chunk[0][0].event.get("type", ""))
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
        return [(lease, lease.event) for lease in leases], []
    runnable, done = [], []
    for lease in leases:
        try:
            decision = chain.apply(lease.event)
        except Exception:  # fail closed, as a filter that cannot evaluate does
            on_crash(lease)
            done.append(filtered(lease, "filter_error"))
            continue
        if decision.event is None:
            done.append(filtered(lease, decision.reason or "dropped"))
        else:
            runnable.append((lease, decision.event))
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
    """The store update for one result: new state and, for a retry, when (pure)."""
    attempts = lease.attempts + 1
    state = state_after(result.outcome, attempts=attempts, max_attempts=max_attempts)
    due = None
    if state is DeliveryState.PENDING:
        due = next_attempt_at(attempts, now=now, base_delay_s=base_delay_s, rng=rng)
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
    """`result` with secrets removed from its error message and console lines."""
    if not result.error_message and not result.logs:
        return result  # nothing that could carry a secret (the common case: saves a copy per event)
    return dataclasses.replace(
        result,
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
