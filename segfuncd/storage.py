"""The storage interface both backends satisfy; intake, delivery and admin know only this.

Two implementations:
* `store.Store` (SQLite, one node): the default; its internals are store/'s business.
* `jetstream.JetStreamStore` (NATS JetStream, many nodes sharing one cluster): the queue
  lives in the cluster (streams and durable consumers); logs, pauses and the metrics
  windows stay in the node's own SQLite store.

`Storage` is a Protocol, so `Store` satisfies it without importing it (store/ stays
unaware that a second backend exists). `ClusterStats` is what `status` shows about the
cluster's queue next to the node's own figures; the SQLite store has none (None).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .store import (
    Completion,
    DeliveryDetail,
    DeliverySummary,
    Lease,
    LogRecord,
    NewEvent,
    StoreFault,
    StoreStats,
)
from .store.timeline import ErrorGroup, MinuteBucket


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerFigures:
    """One function's durable consumer, as the cluster reports it (shared by every node)."""

    pending: int  # messages not yet handed to any node
    ack_pending: int  # handed to a node, not yet acked (running, or waiting for a nak delay)
    redelivered: int  # of those, handed out more than once
    waiting: int  # pull requests from nodes waiting for messages


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterStats:
    """The shared queue in cluster mode; the same figures on every node."""

    backend: str  # "jetstream"
    connected_url: str | None  # the server this node talks to now
    stream: str  # the events stream
    messages: int  # events retained (not yet acked by every function's consumer)
    bytes: int
    max_bytes: int
    replicas: int
    leader: str | None  # the stream's RAFT leader
    current_replicas: int  # replicas in sync with the leader (R3: 2 when all are healthy)
    dead: int  # dead letters in the cluster (the dead-letter stream)
    dead_by_function: Mapping[str, int] = field(default_factory=dict)
    parked: int = 0  # events of held functions (paused, failing to load) waiting in the held stream
    consumers: Mapping[str, ConsumerFigures] = field(default_factory=dict)  # function -> figures
    error: str | None = None  # set when the cluster could not be asked (the rest are then zero)


class Storage(Protocol):
    """What intake, the dispatcher, admin, pauses and reload call on the storage."""

    # intake
    async def accept(self, events: list[NewEvent]) -> list[bool]: ...

    @property
    def healthy(self) -> bool: ...

    @property
    def fault(self) -> StoreFault | None: ...

    @property
    def pending_count(self) -> int: ...

    # the dispatcher
    async def lease(self, *, limit: int, lease_s: float, skip: Sequence[str] = ()) -> list[Lease]: ...

    async def renew(self, ids: Sequence[int], *, lease_s: float) -> None: ...

    async def complete(self, completions: Sequence[Completion]) -> None: ...

    async def postpone(self, ids: Sequence[int], *, until: float, reason: str) -> None: ...

    async def hold(self, function: str, ids: Sequence[int], *, reason: str) -> None: ...

    async def held_functions(self) -> list[str]: ...

    async def release(self, ids: Sequence[int]) -> None: ...

    async def wake(self, function: str) -> int: ...

    async def next_due(self, *, skip: Sequence[str] = ()) -> float | None: ...

    @property
    def work_generation(self) -> int: ...

    async def wait_work(self, generation: int) -> None: ...

    # dead letters
    async def replay(self, *, function: str | None = None, delivery_id: int | None = None) -> int: ...

    # admin reads
    async def stats(self) -> StoreStats: ...

    async def cluster_stats(self) -> ClusterStats | None: ...

    async def deliveries(
        self, *, function: str | None = None, state: str | None = None, limit: int = 20, message_id: str | None = None
    ) -> list[DeliverySummary]: ...

    async def delivery(self, delivery_id: int) -> DeliveryDetail | None: ...

    async def timeline(
        self, *, function: str | None = None, since: float, until: float, step_minutes: int = 1
    ) -> list[MinuteBucket]: ...

    async def error_groups(self, function: str, *, limit: int = 20) -> list[ErrorGroup]: ...

    async def retrying(self, function: str, *, limit: int = 20) -> list[DeliverySummary]: ...

    # pauses, logs, limits
    async def set_paused(self, function: str, paused: bool) -> bool: ...

    async def paused(self) -> frozenset[str]: ...

    async def append_logs(self, records: Sequence[LogRecord]) -> None: ...

    async def read_logs(
        self,
        *,
        after_id: int | None = None,
        limit: int = 100,
        function: str | None = None,
        level: str | None = None,
        message_id: str | None = None,
    ) -> list[LogRecord]: ...

    async def wait_logs(self, after_id: int) -> None: ...

    async def cluster_logs(
        self,
        *,
        limit: int,
        function: str | None = None,
        level: str | None = None,
        message_id: str | None = None,
        after: int | None = None,
    ) -> tuple[int, list[LogRecord]] | None: ...

    def set_limits(self, *, max_pending: int, retention_s: float, log_lines: int) -> None: ...
