"""Attempt summaries shared through the cluster's attempts stream (`deliveries show` on any node); pure.

A node records every attempt it runs in its own SQLite file (store/cluster_records.py), with
the full attempt record. Attempts that matter to someone looking from another node (every
attempt but a first-try success: retried, dead, discarded, failed, or a success after a
retry) are also published as a summary to `P.attempts.<delivery id>`, one message each:
the delivery's identity and state, and the attempt's number, time, outcome, error, duration,
version and node, all already redacted. The event's body rides along while it is small
(MAX_BODY_CHARS), so a node that never ran the delivery can still show it. The full attempt
record (return value, console lines, requests) stays on the node that ran it.

Summaries come from other nodes: anything malformed is skipped, never trusted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..outcomes import DeliveryState, Outcome
from ..store import AttemptRecord, DeliveryDetail, DeliverySummary
from ..store.cluster_records import ClusterRecord

MAX_BODY_CHARS = 16_384
MAX_ERROR_CHARS = 2_000

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False, default=str).encode


def worth_sharing(r: ClusterRecord) -> bool:
    """Everything but a first-try success or a filter (the common case, kept free)."""
    c = r.completion
    if c.state is DeliveryState.FILTERED:
        return False
    return not (r.attempts_before == 0 and c.result.outcome is Outcome.DELIVERED)


def encode(r: ClusterRecord) -> bytes:
    """One attempt as its summary message (times are the store clock's: wall-clock seconds)."""
    c = r.completion
    result = c.result
    doc: dict[str, Any] = {
        "id": r.delivery_id,
        "function": c.function,
        "message_id": r.message_id,
        "type": r.type,
        "source": r.source,
        "state": c.state.value,
        "number": r.attempts_before + 1,
        "at": r.at,
        "next_attempt_at": c.next_attempt_at if c.state is DeliveryState.PENDING else None,
        "outcome": result.outcome.value,
        "error": (result.error or "")[:MAX_ERROR_CHARS] or None,
        "duration_ms": round(result.duration_ms, 1),
        "version": c.version,
        "node": r.node,
    }
    if len(r.body) <= MAX_BODY_CHARS:
        doc["body"] = r.body
    return _encode(doc).encode("ascii")


def _read(raw: bytes, delivery_id: int) -> dict[str, Any] | None:
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("id") != delivery_id:
        return None
    try:
        DeliveryState(doc["state"])
        float(doc["at"])
        int(doc["number"])
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(doc.get("function"), str):
        return None
    return doc


def _str(doc: dict[str, Any], key: str) -> str | None:
    value = doc.get(key)
    return value if isinstance(value, str) else None


def _attempt(doc: dict[str, Any]) -> AttemptRecord:
    duration = doc.get("duration_ms")
    return AttemptRecord(
        number=int(doc["number"]),
        time=float(doc["at"]),
        version=_str(doc, "version"),
        outcome=_str(doc, "outcome") or "?",
        error=_str(doc, "error"),
        duration_ms=float(duration) if isinstance(duration, int | float) else 0.0,
        node=_str(doc, "node") or "",
    )


def merge(
    local: DeliveryDetail | None, shared: Sequence[bytes], delivery_id: int, *, node: str
) -> DeliveryDetail | None:
    """This node's record with the other nodes' summaries of the same delivery, attempts by
    time; from the summaries alone when this node never ran it; None when neither knows it."""
    docs = [d for raw in shared if (d := _read(raw, delivery_id)) is not None]
    # This node's own summaries are its records already (also when it ran them under another
    # name: a node is named host/pid, so a restart renames it): the same attempt, same time.
    mine = {(a.number, a.time) for a in local.attempts} if local is not None else set()
    others = [d for d in docs if d.get("node") != node and (int(d["number"]), float(d["at"])) not in mine]
    if local is None and not docs:
        return None
    if local is not None and not others:
        return local
    attempts = sorted(
        [*(local.attempts if local is not None else ()), *(_attempt(d) for d in others)], key=lambda a: a.time
    )
    newest = max(docs, key=lambda d: float(d["at"])) if docs else None
    if local is not None and (newest is None or local.summary.updated_at >= float(newest["at"])):
        summary = local.summary
        event = local.event
    else:
        assert newest is not None
        base = local.summary if local is not None else None
        state = DeliveryState(newest["state"])
        due = newest.get("next_attempt_at")
        summary = DeliverySummary(
            id=delivery_id,
            function=str(newest["function"]),
            message_id=_str(newest, "message_id") or (base.message_id if base else ""),
            type=_str(newest, "type") or (base.type if base else ""),
            state=state,
            attempts=int(newest["number"]),
            next_attempt_at=float(due) if isinstance(due, int | float) and state is DeliveryState.PENDING else None,
            created_at=base.created_at if base else min(float(d["at"]) for d in docs),
            updated_at=float(newest["at"]),
            version=_str(newest, "version"),
            last_error=_str(newest, "error") or (base.last_error if base else None),
            note=None,
            source=_str(newest, "source") or (base.source if base else ""),
        )
        event = local.event if local is not None else _event(docs)
    return DeliveryDetail(summary=summary, event=event, attempts=tuple(attempts))


def _event(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    for d in docs:
        body = d.get("body")
        if isinstance(body, str):
            try:
                value = json.loads(body)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return {}
