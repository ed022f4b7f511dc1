"""Names and headers of the cluster's streams and messages; pure (no NATS, no trio).

Layout in the cluster, for `[storage.jetstream] stream = "P"`:
* stream `P_EVENTS`, subject `P.events`: every accepted event, published once, interest
  retention (a message lives until every function's consumer acked or terminated it).
* one durable pull consumer per function, `P_fn_<token>`, its description the function's
  name: shared by every node, so any node delivers any event.
* stream `P_DEAD`, subjects `P.dead.<token>`: dead letters, one message per function and
  event; `segfuncctl replay` publishes them back to `P.events`, routed to that function only.
* stream `P_HELD`, subjects `P.held.<token>`: events of a function held on a node (paused,
  failing to load), parked there at no cost while they wait and moved back to `P.events`
  by a node that can run the function (wake, or its periodic look). Attempts are kept.
* retries are new messages (attempts + 1, due time in headers), the original acked: the
  attempt count lives in the message, so a crash or a hold does not use one up.
* stream `P_PAUSES`, subjects `P.pauses.<token>`, one message kept per subject: which
  functions `segfuncctl pause` paused, for every node (a pause is cluster-wide).
* stream `P_LOGS`, subjects `P.logs.<node>`: every node's log lines (a JSON array per
  message), size-capped, oldest dropped: `segfuncctl logs --cluster`.
* stream `P_ATTEMPTS`, subjects `P.attempts.<delivery id>`: a summary of each attempt that
  did not deliver at the first try (retried, dead, discarded, or a later success), from every
  node, size-capped, oldest dropped: `segfuncctl deliveries show ID` on any node lists them.

* stream `P_NODES`, subjects `P.nodes.<node>`, the newest message per subject, kept
  NODE_TTL_S: the functions each live node runs, republished every PRESENCE_S. A consumer
  of a function no live node lists is swept (store.py): what is not routed to it is acked.

Delivery ids: one (event, function) pair is one delivery, named cluster-wide by
`delivery_id(sequence, index)`: the event's sequence in `P_EVENTS` times FANOUT plus the
function's place in the event's routing header. Its first fetch computes it; every copy made
afterwards (a retry, a parked event, a dead letter, a replay) carries it in Segfuncd-Delivery,
so `deliveries show ID` and `replay --id ID` name the same delivery on every node.

Header values are ASCII JSON (control characters escaped), so nothing a client sends can
break a header line: the messageId never goes into a header as is; the Nats-Msg-Id that
JetStream dedupes on is a digest of the dedupe scope and the messageId.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

H_FUNCTIONS = "Segfuncd-Functions"  # JSON list of the functions this message goes to
H_SOURCE = "Segfuncd-Source"  # JSON string: the source the event came in through
H_TYPE = "Segfuncd-Type"
H_FUNCTION = "Segfuncd-Function"  # dead letters: the function that gave up
H_ATTEMPTS = "Segfuncd-Attempts"
H_ERROR = "Segfuncd-Error"
H_DUE = "Segfuncd-Due"  # a retry: when it is due, wall-clock seconds
H_DELIVERY = "Segfuncd-Delivery"  # the delivery id (delivery_id()), carried by retries, parked events, dead letters
H_MSG_ID = "Nats-Msg-Id"
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ascii_json = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode


@dataclass(frozen=True, slots=True)
class Names:
    """Stream, subject and consumer names under one prefix."""

    prefix: str

    @property
    def events_stream(self) -> str:
        return f"{self.prefix}_EVENTS"

    @property
    def events_subject(self) -> str:
        return f"{self.prefix}.events"

    @property
    def dead_stream(self) -> str:
        return f"{self.prefix}_DEAD"

    @property
    def dead_subjects(self) -> str:
        return f"{self.prefix}.dead.>"

    @property
    def held_stream(self) -> str:
        return f"{self.prefix}_HELD"

    @property
    def held_subjects(self) -> str:
        return f"{self.prefix}.held.>"

    def held_subject(self, function: str) -> str:
        return f"{self.prefix}.held.{token(function)}"

    @property
    def pauses_stream(self) -> str:
        return f"{self.prefix}_PAUSES"

    @property
    def pauses_subjects(self) -> str:
        return f"{self.prefix}.pauses.>"

    def pauses_subject(self, function: str) -> str:
        return f"{self.prefix}.pauses.{token(function)}"

    @property
    def logs_stream(self) -> str:
        return f"{self.prefix}_LOGS"

    @property
    def logs_subjects(self) -> str:
        return f"{self.prefix}.logs.>"

    def logs_subject(self, node: str) -> str:
        return f"{self.prefix}.logs.{token(node)}"

    @property
    def nodes_stream(self) -> str:
        return f"{self.prefix}_NODES"

    @property
    def nodes_subjects(self) -> str:
        return f"{self.prefix}.nodes.>"

    def nodes_subject(self, node: str) -> str:
        return f"{self.prefix}.nodes.{token(node)}"

    @property
    def attempts_stream(self) -> str:
        return f"{self.prefix}_ATTEMPTS"

    @property
    def attempts_subjects(self) -> str:
        return f"{self.prefix}.attempts.>"

    def attempts_subject(self, delivery: int) -> str:
        return f"{self.prefix}.attempts.{delivery}"

    def dead_subject(self, function: str) -> str:
        return f"{self.prefix}.dead.{token(function)}"

    def consumer(self, function: str) -> str:
        return f"{self.prefix}_fn_{token(function)}"


def token(function: str) -> str:
    """`function` as one subject token / consumer name part: itself when it is plain, else a digest."""
    if function and len(function) <= 64 and set(function) <= _NAME_CHARS:
        return function
    return "x" + hashlib.sha256(function.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def msg_id(scope: str, message_id: str) -> str:
    """The Nats-Msg-Id JetStream dedupes on: one sender's messageId never hides another's."""
    # 128 bits: collisions stay out of reach, and the servers keep half the bytes per id in memory.
    return hashlib.sha256(f"{scope}:{message_id}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


FANOUT = 10_000  # functions one event may be routed to and still get distinct delivery ids
MAX_DELIVERY_ID = 2**63 - 1  # a SQLite INTEGER: anything larger is no delivery of ours


def delivery_id(sequence: int, index: int) -> int:
    """The cluster-wide id of the delivery of event `sequence` to the function at `index` of its routing."""
    return sequence * FANOUT + min(max(index, 0), FANOUT - 1)


def header_delivery(headers: Mapping[str, str] | None) -> int | None:
    """The Segfuncd-Delivery header (a positive integer), None when missing or malformed."""
    raw = (headers or {}).get(H_DELIVERY)
    if raw is None or not raw.isdigit() or len(raw) > 19:
        return None
    value = int(raw)
    return value if 0 < value <= MAX_DELIVERY_ID else None


def event_headers(
    *,
    functions: Sequence[str],
    source: str,
    type_: str,
    dedupe: str | None,
    attempts: int = 0,
    due: float | None = None,
    delivery: int | None = None,
) -> dict[str, str]:
    """Headers of one event message; `dedupe` is its Nats-Msg-Id (None: no dedupe).

    A retry is a new message routed to its one function, carrying the attempts made so far
    and when it is due (wall clock): the node that fetches it early naks it until then.
    """
    headers = {H_FUNCTIONS: _ascii_json(list(functions)), H_SOURCE: _ascii_json(source), H_TYPE: _ascii_json(type_)}
    if dedupe:
        headers[H_MSG_ID] = dedupe
    if attempts:
        headers[H_ATTEMPTS] = str(attempts)
    if due is not None:
        headers[H_DUE] = f"{due:.3f}"
    if delivery is not None:
        headers[H_DELIVERY] = str(delivery)
    return headers


def parked_headers(*, function: str, source: str, type_: str, attempts: int, delivery: int) -> dict[str, str]:
    """Headers of an event parked for a held function (`P.held.<token>`), attempts kept."""
    return {
        H_FUNCTION: _ascii_json(function),
        H_SOURCE: _ascii_json(source),
        H_TYPE: _ascii_json(type_),
        H_ATTEMPTS: str(attempts),
        H_DELIVERY: str(delivery),
    }


def header_number(headers: Mapping[str, str] | None, name: str) -> float | None:
    """A numeric header (attempts, due), None when missing or malformed."""
    raw = (headers or {}).get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def dead_headers(
    *, function: str, source: str, type_: str, attempts: int, error: str | None, delivery: int
) -> dict[str, str]:
    """Headers of one dead letter (its body is the event's)."""
    return {
        H_FUNCTION: _ascii_json(function),
        H_SOURCE: _ascii_json(source),
        H_TYPE: _ascii_json(type_),
        H_ATTEMPTS: str(attempts),
        H_ERROR: _ascii_json((error or "")[:500]),
        H_DELIVERY: str(delivery),
    }


def header_json(headers: Mapping[str, str] | None, name: str, default: Any) -> Any:
    """A JSON header's value, `default` when missing or unreadable (a message from elsewhere)."""
    raw = (headers or {}).get(name)
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        return default


def routed_to(headers: Mapping[str, str] | None) -> tuple[str, ...]:
    """The functions a message goes to (none when the header is missing or malformed)."""
    value = header_json(headers, H_FUNCTIONS, [])
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))
