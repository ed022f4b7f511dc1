"""What one invocation produced, what that means for the delivery, and the retry schedule.

Pure: no I/O, no clock, no randomness of its own (time and rng are passed in).

The outcome table (README, "Writing functions"; Segment's own table discards "any other
error" and does not retry network failures, segfuncd loses nothing instead):

    returned anything                                   -> DELIVERED
    EventNotSupported / no handler / InvalidEventPayload
      / ValidationError                                 -> DISCARDED (never retried)
    RetryError, FetchError, timeout, CPU or memory
      limit, runner crash, function failing to load,
      its context rebuilt (ContextReset)                -> RETRY (backoff, then dead letter)
    any other thrown error (a bug)                      -> FAILED (dead letter at once)
"""

from __future__ import annotations

import email.utils
import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Segment: "retries nine times over the course of four hours".
DEFAULT_MAX_ATTEMPTS = 10
DEFAULT_BASE_DELAY_S = 30.0
MAX_DELAY_S = 6 * 3600.0
MAX_RETRY_AFTER_S = 3600.0  # a Retry-After beyond this is capped: the schedule stays bounded
RETRY_AFTER_STATUSES = frozenset({429, 503})


class Outcome(enum.Enum):
    """How one invocation of a handler on one event ended."""

    DELIVERED = "delivered"  # the handler returned
    DISCARDED = "discarded"  # the function said the event cannot be delivered; never retried
    RETRY = "retry"  # transient: try again later
    FAILED = "failed"  # a bug in the function: dead-letter now, replay after the fix


class DeliveryState(enum.Enum):
    """Where a delivery row stands in the store."""

    PENDING = "pending"
    LEASED = "leased"
    DELIVERED = "delivered"
    DISCARDED = "discarded"
    FILTERED = "filtered"  # dropped or sampled out by a destination filter
    DEAD = "dead"


DISCARD_ERRORS = frozenset({"EventNotSupported", "InvalidEventPayload", "ValidationError"})
RETRY_ERRORS = frozenset(
    {
        "RetryError",
        "FetchError",
        "TimeoutError",  # wall-clock timeout_ms
        "CPULimitError",  # cpu_ms
        "MemoryLimitError",  # memory_mb / out of memory
        "RunnerCrashed",  # the runner process died mid-invocation
        "FunctionNotLoaded",  # the function currently fails to load or was removed
        "ContextReset",  # its context was rebuilt after another invocation of it hit a limit
    }
)


def classify(error_name: str | None) -> Outcome:
    """Map a thrown error's class name (None: it returned) to an Outcome."""
    if error_name is None:
        return Outcome.DELIVERED
    if error_name in DISCARD_ERRORS:
        return Outcome.DISCARDED
    if error_name in RETRY_ERRORS:
        return Outcome.RETRY
    return Outcome.FAILED


@dataclass(frozen=True, slots=True, kw_only=True)
class LogLine:
    """One console.* call made by a function during an invocation."""

    level: str  # "log" | "info" | "warn" | "error" | "debug"
    message: str
    time: float  # unix seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRecord:
    """One outbound fetch made by a function (shown by `segfuncctl test`)."""

    method: str
    url: str
    status: int | None  # None when the request failed before a response
    duration_ms: float
    error: str | None = None
    retry_after: float | None = None  # the response's Retry-After, in seconds (delta or HTTP date)
    # For attempt records (capped in the runner at CAPTURE_CHARS each; redacted before storage):
    request_headers: tuple[tuple[str, str], ...] = ()
    request_body: str | None = None
    response_headers: tuple[tuple[str, str], ...] = ()
    response_body: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InvocationResult:
    """What the runner reports for one event (or one onBatch position)."""

    outcome: Outcome
    value: Any = None  # JSON-safe return value (truncated), when DELIVERED
    error_name: str | None = None  # e.g. "ValidationError", "TypeError", "TimeoutError"
    error_message: str | None = None
    logs: tuple[LogLine, ...] = ()
    requests: tuple[RequestRecord, ...] = ()
    duration_ms: float = 0.0
    retry_after: float | None = None  # seconds, from `new RetryError(msg, {retryAfter})`
    stack: str | None = None  # the thrown error's JS stack, as QuickJS wrote it
    runner: int | None = None  # pid of the runner process that ran it

    @property
    def error(self) -> str | None:
        """`Name: message`, as shown to operators."""
        if self.error_name is None:
            return None
        return f"{self.error_name}: {self.error_message}" if self.error_message else self.error_name


def requested_delay_s(result: InvocationResult) -> float | None:
    """How long the destination (or the function) asked us to wait before the next attempt.

    Only for a RetryError: the function's own `retryAfter`, else the Retry-After of the
    invocation's last response when that was a 429 or 503. Capped at MAX_RETRY_AFTER_S.
    """
    if result.outcome is not Outcome.RETRY or result.error_name != "RetryError":
        return None
    wanted = result.retry_after
    if wanted is None and result.requests:
        last = result.requests[-1]
        if last.status in RETRY_AFTER_STATUSES:
            wanted = last.retry_after
    if wanted is None or wanted != wanted or wanted <= 0:  # None, NaN, or "now"
        return None
    return min(float(wanted), MAX_RETRY_AFTER_S)


def retry_after_header(headers: Sequence[Sequence[str]], *, now: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date, RFC 9110 §10.2.3).

    `headers` are (name, value) pairs; None when absent or unreadable; never negative.
    """
    value = next((v for k, v in headers if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def batch_item_outcome(status: object) -> tuple[Outcome, str | None]:
    """The outcome of one onBatch position from the `status` the function returned for it.

    Segment's rule: a 4xx discards the event (InvalidEventPayload), a 429 or 5xx retries it
    (RetryError), anything else (2xx, 3xx, no status, not a number) delivers it. The second
    value is the error name to record, None when delivered.
    """
    if not isinstance(status, int | float) or 200 <= status < 300 or status < 400 or status >= 600:
        return Outcome.DELIVERED, None
    if status == 429 or status >= 500:
        return Outcome.RETRY, "RetryError"
    return Outcome.DISCARDED, "InvalidEventPayload"


def next_delay_s(
    attempt: int,
    *,
    base_delay_s: float = DEFAULT_BASE_DELAY_S,
    rng: random.Random | None = None,
) -> float:
    """Delay before retry number `attempt` (1 = after the first failure): doubling, ±20% jitter.

    With the defaults, 9 retries are spread over about 4.3 hours (30 s, 1 min, 2 min, ...,
    ~2 h 8 min), matching Segment's "nine times over four hours".
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    delay = min(base_delay_s * (2.0 ** (attempt - 1)), MAX_DELAY_S)
    jitter: float = (rng or random).uniform(0.8, 1.2)
    return delay * jitter


def next_attempt_at(
    attempt: int,
    *,
    now: float,
    base_delay_s: float = DEFAULT_BASE_DELAY_S,
    rng: random.Random | None = None,
    retry_after_s: float | None = None,
) -> float:
    """When retry number `attempt` becomes due: the schedule's delay, or at least
    `retry_after_s` when the destination asked for that (requested_delay_s)."""
    delay = next_delay_s(attempt, base_delay_s=base_delay_s, rng=rng)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
    return now + delay


def state_after(outcome: Outcome, *, attempts: int, max_attempts: int) -> DeliveryState:
    """The state a delivery moves to after an attempt (attempts counts this one)."""
    if outcome is Outcome.DELIVERED:
        return DeliveryState.DELIVERED
    if outcome is Outcome.DISCARDED:
        return DeliveryState.DISCARDED
    if outcome is Outcome.FAILED:
        return DeliveryState.DEAD
    return DeliveryState.DEAD if attempts >= max_attempts else DeliveryState.PENDING
