"""This node's outcome counters and the cluster's figures, as the Storage types status shows; pure.

The JetStreamStore owns the I/O (one cached round of stream and consumer info, cluster.Info);
here the counters are bumped per completion and the figures are assembled from plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import JetStreamConfig
from ..outcomes import DeliveryState, Outcome
from ..storage import ClusterStats, ConsumerFigures
from ..store import Completion, FunctionStats, StoreFault, StoreStats
from .cluster import Info
from .codec import Names, token


@dataclass(slots=True)
class Counts:
    """This node's outcome counters for one function (since start)."""

    accepted: int = 0
    delivered: int = 0
    discarded: int = 0
    filtered: int = 0
    failed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    replayed: int = 0
    attempts: int = 0
    duration_ms_total: float = 0.0
    last_error: str | None = None
    last_error_at: float | None = None
    last_delivered_at: float | None = None
    discarded_by_reason: dict[str, int] = field(default_factory=dict)
    filtered_by_reason: dict[str, int] = field(default_factory=dict)


def counts_for(counts: dict[str, Counts], function: str) -> Counts:
    found = counts.get(function)
    if found is None:
        found = counts[function] = Counts()
    return found


def record(counts: dict[str, Counts], c: Completion, now: float) -> None:
    """Bump the counters for one completion (as the SQLite store's stats.py does in SQL)."""
    k = counts_for(counts, c.function)
    result = c.result
    if c.state is DeliveryState.FILTERED:
        k.filtered += 1
        reason = result.error_message or "dropped"
        k.filtered_by_reason[reason] = k.filtered_by_reason.get(reason, 0) + 1
        return
    k.attempts += 1
    k.duration_ms_total += result.duration_ms
    if result.outcome is Outcome.DELIVERED:
        k.delivered += 1
        k.last_delivered_at = now
    elif result.outcome is Outcome.DISCARDED:
        k.discarded += 1
        reason = result.error_name or "discarded"
        k.discarded_by_reason[reason] = k.discarded_by_reason.get(reason, 0) + 1
    elif result.outcome is Outcome.RETRY:
        k.retried += 1
    else:
        k.failed += 1
    if c.state is DeliveryState.DEAD:
        k.dead_lettered += 1
    if result.error:
        k.last_error, k.last_error_at = result.error, now


def _names_by_token(info: Info) -> dict[str, str]:
    """Subject token -> function name, from the consumers' descriptions."""
    return {token(c.config.description or ""): c.config.description or "" for c in info.consumers}


def dead_by_function(info: Info, names: Names) -> dict[str, int]:
    by_token = _names_by_token(info)
    out: dict[str, int] = {}
    prefix = f"{names.prefix}.dead."
    for subject, n in (info.dead.state.subjects or {}).items():
        tok = subject.removeprefix(prefix)
        name = by_token.get(tok, tok)
        out[name] = out.get(name, 0) + int(n)
    return out


def parked_by_function(info: Info) -> dict[str, int]:
    by_token = _names_by_token(info)
    return {by_token.get(tok, tok): n for tok, n in info.held.items()}


def cluster_stats(info: Info | None, error: str | None, *, names: Names, config: JetStreamConfig) -> ClusterStats:
    """What status shows about the cluster; zeros and `error` when it could not be asked."""
    if info is None:
        return ClusterStats(
            backend="jetstream",
            connected_url=None,
            stream=names.events_stream,
            messages=0,
            bytes=0,
            max_bytes=config.max_bytes,
            replicas=config.replicas,
            leader=None,
            current_replicas=0,
            dead=0,
            error=error,
        )
    state, cl = info.events.state, info.events.cluster
    return ClusterStats(
        backend="jetstream",
        connected_url=info.connected_url,
        stream=names.events_stream,
        messages=int(state.messages),
        bytes=int(state.bytes),
        max_bytes=int(info.events.config.max_bytes or 0),
        replicas=int(info.events.config.num_replicas or 1),
        leader=None if cl is None else cl.leader,
        current_replicas=0 if cl is None else sum(1 for r in (cl.replicas or []) if r.current),
        dead=int(info.dead.state.messages),
        dead_by_function=dead_by_function(info, names),
        parked=sum(info.held.values()),
        consumers={
            c.config.description or c.name: ConsumerFigures(
                pending=int(c.num_pending or 0),
                ack_pending=int(c.num_ack_pending or 0),
                redelivered=int(c.num_redelivered or 0),
                waiting=int(c.num_waiting or 0),
            )
            for c in info.consumers
        },
    )


def store_stats(
    counts: dict[str, Counts],
    info: Info | None,
    *,
    names: Names,
    leased: int,
    healthy: bool,
    fault: StoreFault | None,
) -> StoreStats:
    """The cluster's queue figures (pending incl. parked, dead) with this node's counters."""
    pending: dict[str, int] = {}
    dead: dict[str, int] = {}
    if info is not None:
        for c in info.consumers:
            name = c.config.description or c.name
            pending[name] = int(c.num_pending or 0) + int(c.num_ack_pending or 0)
        dead = dead_by_function(info, names)
        for name, n in parked_by_function(info).items():
            pending[name] = pending.get(name, 0) + n
    functions: dict[str, FunctionStats] = {}
    for name in sorted(set(counts) | set(pending) | set(dead)):
        k = counts.get(name) or Counts()
        functions[name] = FunctionStats(
            function=name,
            accepted=k.accepted,
            delivered=k.delivered,
            discarded=k.discarded,
            filtered=k.filtered,
            failed=k.failed,
            retried=k.retried,
            dead_lettered=k.dead_lettered,
            replayed=k.replayed,
            attempts=k.attempts,
            duration_ms_total=k.duration_ms_total,
            pending=pending.get(name, 0),
            retrying=0,
            dead=dead.get(name, 0),
            last_error=k.last_error,
            last_error_at=k.last_error_at,
            last_delivered_at=k.last_delivered_at,
            discarded_by_reason=dict(k.discarded_by_reason),
            filtered_by_reason=dict(k.filtered_by_reason),
        )
    return StoreStats(
        pending=sum(pending.values()),
        leased=leased,
        dead=0 if info is None else int(info.dead.state.messages),
        oldest_pending_age_s=None,
        functions=functions,
        healthy=healthy,
        fault=fault,
    )
