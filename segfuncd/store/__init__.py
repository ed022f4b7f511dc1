"""The durable queue on SQLite: `open_store()` and the values that cross its boundary.

Layout (each module says what it owns):
    schema.py     migrations (sqlite-utils), schema version, WAL, how connections open
    writer.py     owner threads; the GroupWriter's group commit
    checkpoints.py  the WAL checkpointer thread (commits never wait for a checkpoint)
    ingest.py     accept(): events + delivery rows + dedupe keys, merged per commit
    queue.py      lease / complete / postpone / release / wake / replay / next_due
    stats.py      per-function counters, bumped in the same transactions
    logs.py       the bounded log table
    pauses.py     functions paused by `segfuncctl pause`
    retention.py  pruning of finished rows, orphaned events, old dedupe keys
    reads.py      admin listings and status figures
    timeline.py   per-minute counters and error groups (the console's charts)
    cluster_records.py  cluster mode: this node's records of the cluster's deliveries
    models.py     the frozen values below
    service.py    Store: the async API, backpressure, wake-ups
    lifecycle.py  open_store(): migrate, recover leases, start and stop the threads

sqlite3 errors never leave this package: they become StoreError (`raise ... from exc`).
"""

from __future__ import annotations

from .ingest import DEDUPE_WINDOW_S
from .lifecycle import open_store
from .models import (
    AttemptRecord,
    Completion,
    DeliveryDetail,
    DeliverySummary,
    FunctionStats,
    Lease,
    LogRecord,
    NewEvent,
    PruneResult,
    StoreFault,
    StoreStatistics,
    StoreStats,
)
from .schema import SCHEMA_VERSION
from .service import Store

__all__ = [
    "DEDUPE_WINDOW_S",
    "SCHEMA_VERSION",
    "AttemptRecord",
    "Completion",
    "DeliveryDetail",
    "DeliverySummary",
    "FunctionStats",
    "Lease",
    "LogRecord",
    "NewEvent",
    "PruneResult",
    "Store",
    "StoreFault",
    "StoreStatistics",
    "StoreStats",
    "open_store",
]
