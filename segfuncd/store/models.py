"""The frozen values that cross the store's boundary, in both directions.

Nothing here touches SQLite: these are what intake, delivery and admin hand to the store
and get back from it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..outcomes import DeliveryState, InvocationResult
from ..spec import EncodedEvent

# Log levels in increasing severity; `read_logs(level=...)` keeps this level and above.
LOG_LEVELS = ("debug", "log", "info", "warn", "warning", "error", "critical")


@dataclass(frozen=True, slots=True, kw_only=True)
class NewEvent:
    """One validated, enriched event to store, and the functions it goes to."""

    message_id: str  # "" disables dedupe for this event
    type: str
    body: Mapping[str, Any]  # JSON-serialisable
    functions: tuple[str, ...]
    # The source it came in through ("" = the unnamed default source), stored with the event.
    source: str = ""
    # Whose messageIds it shares the 24 h dedupe window with (intake.dedupe_scope): its named
    # source, or its write key for the default source.
    dedupe_scope: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """A delivery handed to the dispatcher; it is ours until `lease_s` runs out."""

    id: int
    function: str
    body: str  # the stored event, JSON text (handed to the runner as is)
    type: str  # its type, as stored beside it
    message_id: str
    attempts: int  # attempts made before this one
    created_at: float

    @property
    def event(self) -> dict[str, Any]:
        """The event, parsed: a fresh copy each time (filters and callers may mutate it)."""
        value: dict[str, Any] = json.loads(self.body)
        return value

    @property
    def encoded(self) -> EncodedEvent:
        return EncodedEvent(self.body, self.type)


@dataclass(frozen=True, slots=True, kw_only=True)
class Completion:
    """What happened to one leased delivery; the dispatcher decides `state`."""

    delivery_id: int
    function: str
    result: InvocationResult
    version: str | None  # PluginVersion.hash that ran (None when nothing ran)
    state: DeliveryState
    next_attempt_at: float | None = None  # required when state is PENDING
    detail: str | None = None  # the attempt record, JSON (segfuncd.attempts), already redacted

    def __post_init__(self) -> None:
        if self.state is DeliveryState.PENDING and self.next_attempt_at is None:
            raise ValueError("a completion back to pending needs next_attempt_at")
        if self.state is DeliveryState.LEASED:
            raise ValueError("a completion cannot leave a delivery leased")


@dataclass(frozen=True, slots=True, kw_only=True)
class LogRecord:
    """One line of `segfuncctl logs`: a function's console output or a daemon event."""

    id: int | None = None  # assigned by the store
    time: float
    level: str
    source: str  # "function" | "daemon"
    function: str | None = None
    version: str | None = None
    message_id: str | None = None
    outcome: str | None = None
    message: str
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptRecord:
    """One invocation of a function on a delivery, as recorded."""

    number: int  # 1-based, counted since the last replay
    time: float
    version: str | None
    outcome: str  # Outcome.value
    error: str | None
    duration_ms: float
    detail: str | None = None  # the attempt record, JSON (segfuncd.attempts); None when trimmed
    node: str = ""  # cluster mode: the node that ran it ("" with SQLite: this one)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverySummary:
    """One delivery row, as listed by admin."""

    id: int
    function: str
    message_id: str
    type: str
    state: DeliveryState
    attempts: int
    next_attempt_at: float | None  # when pending: when it is due; when leased: lease expiry
    created_at: float
    updated_at: float
    version: str | None
    last_error: str | None
    note: str | None  # why it waits (postponed), or the filter / discard reason
    source: str = ""  # the source its event came in through ("" = the unnamed default)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryDetail:
    """A delivery with its event and every recorded attempt (oldest first)."""

    summary: DeliverySummary
    event: dict[str, Any]
    attempts: tuple[AttemptRecord, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionStats:
    """Per-function counters, kept in the same transactions as the rows they count."""

    function: str
    accepted: int = 0  # delivery rows created
    delivered: int = 0
    discarded: int = 0
    filtered: int = 0
    failed: int = 0  # FAILED outcomes (a bug in the function: dead at once)
    retried: int = 0  # RETRY outcomes
    dead_lettered: int = 0  # transitions to dead, all time
    replayed: int = 0
    attempts: int = 0
    duration_ms_total: float = 0.0  # sum over attempts; mean = duration_ms_total / attempts
    pending: int = 0  # gauge: pending + leased rows
    retrying: int = 0  # gauge: pending + leased rows that have failed at least once
    dead: int = 0  # gauge: dead rows now
    last_error: str | None = None
    last_error_at: float | None = None
    last_delivered_at: float | None = None
    discarded_by_reason: Mapping[str, int] = field(default_factory=dict)
    filtered_by_reason: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreStats:
    """What `status` shows about the queue; answered without scanning deliveries."""

    pending: int  # pending + leased deliveries
    leased: int
    dead: int
    oldest_pending_age_s: float | None
    functions: Mapping[str, FunctionStats]
    healthy: bool
    fault: StoreFault | None = None  # why not healthy (the most telling current fault)
    logs_buffered: int = 0  # log lines held in memory while the store cannot write them
    logs_dropped: int = 0  # log lines dropped because that buffer was full


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreFault:
    """A store operation that is failing now; cleared by its next success.

    `condition` is what status, /health and systemd's STATUS= show: "storage full",
    "database corrupt", ...
    """

    what: str  # the operation: "lease", "complete", "accept", "append_logs", ...
    kind: str  # StoreError.kind: "full", "corrupt", "io", "busy", "other"
    message: str
    since: float  # when it started failing (store clock)

    @property
    def condition(self) -> str:
        return FAULT_CONDITIONS.get(self.kind, "storage failing")


FAULT_CONDITIONS = {
    "full": "storage full",
    "corrupt": "database corrupt",
    "io": "storage I/O error",
    "busy": "database locked",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreStatistics:
    """In-memory figures about the writer (trio's `statistics()` convention)."""

    commits: int  # transactions committed by the writer thread
    accept_calls: int  # accept() calls committed
    events_stored: int
    duplicates: int
    largest_group: int  # most accept() calls merged into one commit
    pending: int
    leased: int
    checkpoints: int = 0  # WAL checkpoints done by the checkpointer thread (checkpoints.py)


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneResult:
    """Rows removed by one retention pass."""

    deliveries: int = 0
    events: int = 0
    attempts: int = 0
    dedupe_keys: int = 0
