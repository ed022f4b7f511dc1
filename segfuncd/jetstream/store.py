"""JetStreamStore: the Storage of cluster mode, on NATS JetStream (see codec.py for the layout).

Rules:
* accept() publishes each event once, with its routing in headers, and returns only after
  the stream acknowledged every message (R3: a quorum has it). A failed or unconfirmed
  publish raises (Backpressure when the stream is full, ClusterError otherwise): intake
  answers 503, never 200. A retried request dedupes on Nats-Msg-Id within the stream's
  duplicate_window. The function's consumer is created before its first publish: an
  interest stream drops a message no consumer is interested in.
* Delivery: one fetch task per function this node runs, on the function's durable
  consumer shared by every node. Fetched messages wait in a small buffer until the
  dispatcher leases them (at most `max_held` per function, buffered + leased).
* A fetched message is ours until answered: the store sends +WPI (in progress) for every
  held message each ack_wait / 3, so a slow invocation is not redelivered elsewhere; a
  node killed with -9 stops sending them, and after ack_wait the cluster hands its
  messages to another node (at-least-once; duplicates bounded by what it held).
* Outcomes: delivered / filtered -> ack; discarded -> term; retry -> a copy published
  with attempts + 1 and its due time (outcomes.next_attempt_at, as the dispatcher
  computed it), then the original acked; the node that fetches the copy early naks it
  until it is due. Dead -> published to the dead-letter stream (awaited), then term.
  postpone -> nak(delay); release -> nak now (another node may take it at once).
* hold (paused here, failing to load here) -> the function's events are parked in the
  held stream (awaited, then acked), and new ones are parked as they are fetched: they
  cost nothing while they wait, and events of other functions are still acked, so the
  interest stream does not fill up behind a held function. wake() and a look every
  UNPARK_S on every node that runs the function move them back to the events stream.
* Attempts travel in the message (Segfuncd-Attempts): a delivery handed back by a
  crashed node, a release or a hold does not use one up (as with SQLite).
* What stays local, in the node's own SQLite store: logs, pauses, the metrics windows, and
  this node's outcome counters (status shows them next to the cluster's figures).
* Delivery records (store/cluster_records.py): every completion this node reaches is kept
  in its SQLite file under the cluster-wide delivery id (codec.delivery_id), with the attempt
  record the dispatcher made (redacted). complete() only appends to a list; a task writes
  the list every RECORD_FLUSH_S (one writer job), so the dispatcher never waits for SQLite.
  Attempts other than first-try successes are also published as summaries to the attempts
  stream (summaries.py), so `deliveries show ID` on any node lists every node's attempts.
  `replay --id ID` finds that one dead letter by its Segfuncd-Delivery header.
* Orphaned consumers. A function removed from every node keeps its durable consumer, and
  with interest retention the stream would keep every later event for it (until full).
  Each node lists the functions it fetches in the nodes stream every PRESENCE_S; every
  SWEEP_S a node looks for consumers of functions no live node lists, and once one has
  been unlisted for `orphan_grace_s` it sweeps it: events not routed to the function are
  acked (as its own fetch would), events routed to it are parked in the held stream (as a
  hold parks them) and wait there at no cost; any node that runs the function again moves
  them back within UNPARK_S. Nothing is deleted, so a function that comes back (or a sweep
  that misjudged, say a node starting) loses nothing: the worst is a few seconds' delay.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio

from ..clock import steady_time
from ..config import JetStreamConfig
from ..errors import ClusterError, StoreError
from ..log import get_logger
from ..outcomes import DeliveryState
from ..storage import ClusterStats
from ..store import (
    Completion,
    DeliveryDetail,
    DeliverySummary,
    Lease,
    LogRecord,
    NewEvent,
    Store,
    StoreFault,
    StoreStats,
)
from ..store.cluster_records import ClusterRecord
from ..store.timeline import ErrorGroup, MinuteBucket
from . import cluster, figures, loglines, summaries
from .bridge import AsyncioThread
from .codec import (
    H_ATTEMPTS,
    H_DUE,
    H_FUNCTION,
    H_MSG_ID,
    H_SOURCE,
    H_TYPE,
    MAX_DELIVERY_ID,
    Names,
    dead_headers,
    delivery_id,
    event_headers,
    header_delivery,
    header_json,
    header_number,
    msg_id,
    parked_headers,
    routed_to,
    token,
)

log = get_logger()

FETCH_BATCH = 100
FETCH_WAIT_S = 1.0  # one pull request waits this long for messages
MAX_HELD = 400  # messages of one function on this node: buffered + leased
INFO_TTL_S = 1.0  # status reads the cluster's figures at most this often
SYNC_INTERVAL_S = 1.0  # new functions get their consumer and fetch task this soon
ACK_MARGIN_S = 5.0  # ack_wait = runtime.timeout_ms + this
DUE_SLACK_S = 0.02  # a retry fetched this close to its due time runs now
UNPARK_S = 5.0  # parked events of a function this node runs are moved back this often
PARK_RETRY_S = 5.0  # an event that could not be parked comes back this soon
SETTLE_CHUNK = 1000
RECORD_FLUSH_S = 0.25  # delivery records are written to the local SQLite file this often
RECORD_BACKLOG = 50_000  # records kept in memory while the local file refuses them; then the oldest go
RECORD_PRUNE_S = 600.0  # records older than storage.retention_hours go this often
PRESENCE_S = 5.0  # this node says which functions it runs this often (cluster.NODE_TTL_S: 30 s)
SWEEP_S = 30.0  # orphaned consumers are looked for (and swept) this often
SWEEP_LIMIT = 20_000  # messages one sweep of one consumer answers at most

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode


def ack_wait_for(timeout_ms: int) -> float:
    """The consumers' AckWait: one invocation's limit plus a margin (renewed while it runs)."""
    return timeout_ms / 1000 + ACK_MARGIN_S


@dataclass(slots=True)
class _Held:
    msg: Any  # nats.aio.msg.Msg
    function: str
    source: str
    type: str
    attempts: int
    delivery: int  # the cluster-wide delivery id
    message_id: str = ""


@dataclass(slots=True)
class _Feed:
    """One function's consumer on this node."""

    sub: Any  # JetStreamContext.PullSubscription
    buffer: collections.deque[int] = field(default_factory=collections.deque)
    leased: int = 0
    held: bool = False  # on hold here (no live version): not fetched until wake()
    changed: trio.Event = field(default_factory=trio.Event)

    def poke(self) -> None:
        self.changed.set()
        self.changed = trio.Event()


class JetStreamStore:
    """The cluster's queue plus the node's local store; made by `open_jetstream_store()`."""

    def __init__(
        self,
        *,
        bridge: AsyncioThread,
        conn: cluster.Connection,
        config: JetStreamConfig,
        local: Store,
        ack_wait_s: float,
        clock: Callable[[], float] = steady_time,
        node: str = "",
        max_held: int = MAX_HELD,
        fetch_batch: int = FETCH_BATCH,
    ) -> None:
        self._bridge, self._conn, self._config, self._local = bridge, conn, config, local
        self._names = Names(config.stream)
        self._ack_wait_s, self._clock, self._wall = ack_wait_s, clock, time.time
        self._max_held, self._fetch_batch = max_held, fetch_batch
        self._ids = itertools.count(1)
        self._held: dict[int, _Held] = {}  # fetched, not yet answered (buffered or leased)
        self._leases: dict[int, Lease] = {}  # buffered, not yet leased
        self._feeds: dict[str, _Feed] = {}
        self._ensuring: dict[str, trio.Lock] = {}
        self._counts: dict[str, figures.Counts] = {}
        self._faults: dict[str, StoreFault] = {}
        self._work_generation = 0
        self._work_event = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._functions: Callable[[], Iterable[str]] = tuple
        self._info: tuple[float, cluster.Info | None, str | None] = (-1e18, None, None)
        self._rotate = 0
        self._node = node
        self._headers: dict[tuple[tuple[str, ...], str, str], dict[str, str]] = {}
        self._logs_not_shared = 0
        self._records: list[ClusterRecord] = []  # completions not yet written to the local file
        self._records_dropped = 0
        self._records_lock = trio.Lock()  # one flush at a time: a delivery's records stay in order
        self._attempts_not_shared = 0
        self._orphaned: dict[str, float] = {}  # function -> since when no live node lists it

    # --- setup ------------------------------------------------------------------------------

    def watch_functions(self, functions: Callable[[], Iterable[str]]) -> None:
        """The functions this node runs (delivery fetches for these); looked at every second."""
        self._functions = functions

    async def _ensure(self, function: str) -> _Feed:
        """The function's consumer exists and this node fetches from it."""
        feed = self._feeds.get(function)
        if feed is not None:
            return feed
        lock = self._ensuring.setdefault(function, trio.Lock())
        async with lock:
            feed = self._feeds.get(function)
            if feed is not None:
                return feed
            try:
                sub = await self._bridge.run(
                    partial(cluster.ensure_consumer, self._conn, self._names, function, ack_wait_s=self._ack_wait_s)
                )
            except Exception as exc:
                raise cluster.translate(exc, doing=f"creating the consumer of {function}") from exc
            feed = self._feeds[function] = _Feed(sub=sub)
            if self._nursery is not None:
                self._nursery.start_soon(self._fetch_forever, function, feed)
            log.info("cluster_consumer_ready", function=function, consumer=self._names.consumer(function))
            return feed

    async def _sync_forever(self) -> None:
        while True:
            for function in list(self._functions()):
                if function not in self._feeds:
                    try:
                        await self._ensure(function)
                    except StoreError as exc:
                        log.error("cluster_consumer_failed", function=function, error=str(exc))
            await trio.sleep(SYNC_INTERVAL_S)

    # --- intake -----------------------------------------------------------------------------

    async def accept(self, events: Sequence[NewEvent]) -> list[bool]:
        """Publish each event once; True = new, False = a duplicate the stream already had."""
        if not events:
            return []
        for function in {f for e in events for f in e.functions}:
            if function not in self._feeds:
                await self._ensure(function)
        subject = self._names.events_subject
        items: list[tuple[str, bytes, dict[str, str]]] = []
        index: list[int] = []
        for i, e in enumerate(events):
            if not e.functions:
                continue  # goes nowhere: nothing to keep
            try:
                body = _encode(e.body).encode("ascii")
            except (TypeError, ValueError) as exc:
                raise StoreError(f"event {i} cannot be stored: {exc}") from exc
            headers = dict(self._base_headers(e.functions, e.source, e.type))
            if e.message_id:
                headers[H_MSG_ID] = msg_id(e.dedupe_scope, e.message_id)
            items.append((subject, body, headers))
            index.append(i)
        out = [True] * len(events)
        if not items:
            return out
        try:
            acks = await self._bridge.run(partial(cluster.publish_all, self._conn, items))
        except Exception as exc:
            raise cluster.translate(exc, doing="publishing events", max_bytes=self._config.max_bytes) from exc
        for i, ack in zip(index, acks, strict=True):
            if isinstance(ack, BaseException):
                raise cluster.translate(ack, doing="publishing events", max_bytes=self._config.max_bytes) from ack
            if ack.duplicate:
                out[i] = False
            else:
                for function in events[i].functions:
                    self._count(function).accepted += 1
        return out

    def _base_headers(self, functions: tuple[str, ...], source: str, type_: str) -> dict[str, str]:
        """An event's headers but its Nats-Msg-Id; few distinct ones, so kept (saves 3 JSON encodes per event)."""
        key = (functions, source, type_)
        found = self._headers.get(key)
        if found is None:
            found = event_headers(functions=list(dict.fromkeys(functions)), source=source, type_=type_, dedupe=None)
            if len(self._headers) < 1024:
                self._headers[key] = found
        return found

    # --- delivery ---------------------------------------------------------------------------

    async def _fetch_forever(self, function: str, feed: _Feed) -> None:
        delay = 0.5
        while True:
            room = self._max_held - len(feed.buffer) - feed.leased
            if feed.held or room <= 0:
                await feed.changed.wait()
                continue
            try:
                msgs = await self._bridge.run(
                    partial(cluster.fetch, feed.sub, min(room, self._fetch_batch), wait_s=FETCH_WAIT_S)
                )
            except Exception as exc:
                error = cluster.translate(exc, doing=f"fetching events of {function}")
                if await self._bridge.run(partial(cluster.consumer_missing, self._conn, self._names, function)):
                    # Deleted by hand (nats consumer rm): made again within SYNC_INTERVAL_S if
                    # this node runs the function (accept() makes it too), then fetched anew.
                    log.error("cluster_consumer_gone", function=function, consumer=self._names.consumer(function))
                    if self._feeds.get(function) is feed:
                        del self._feeds[function]
                    return
                self._fault("fetch", error)
                log.error("cluster_fetch_failed", function=function, error=str(error))
                await trio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.5
            self._faults.pop("fetch", None)
            if msgs:
                await self._take(function, feed, msgs)

    async def _take(self, function: str, feed: _Feed, msgs: list[Any]) -> None:
        skip: list[cluster.Settle] = []
        parked: list[_Held] = []
        wall = self._wall()
        for m in msgs:
            routed = routed_to(m.headers)
            if function not in routed:
                skip.append(cluster.Settle(m, "ack"))  # not routed to this function: its consumer lets go
                continue
            delivery = header_delivery(m.headers) or delivery_id(m.metadata.sequence.stream, routed.index(function))
            attempts = max(0, int(header_number(m.headers, H_ATTEMPTS) or 0))
            due = header_number(m.headers, H_DUE)
            if due is not None and due > wall + DUE_SLACK_S:
                skip.append(cluster.Settle(m, "nak", due - wall))  # a retry, not due yet
                continue
            source = str(header_json(m.headers, H_SOURCE, ""))
            if feed.held:  # cannot run here now: parked, at no cost while it waits
                parked.append(
                    _Held(
                        msg=m, function=function, source=source, type=_type_of(m), attempts=attempts, delivery=delivery
                    )
                )
                continue
            try:
                event = json.loads(m.data)
                if not isinstance(event, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                log.error("cluster_message_unreadable", function=function, error=str(exc))
                skip.append(cluster.Settle(m, "term"))
                continue
            lease_id = next(self._ids)
            message_id = str(event.get("messageId", ""))
            self._held[lease_id] = _Held(
                msg=m,
                function=function,
                source=source,
                type=str(event.get("type", "")),
                attempts=attempts,
                delivery=delivery,
                message_id=message_id,
            )
            feed.buffer.append(lease_id)
            self._leases[lease_id] = Lease(
                id=lease_id,
                function=function,
                body=m.data.decode("utf-8"),
                type=str(event.get("type", "")),
                message_id=message_id,
                attempts=attempts,
                created_at=self._clock(),
            )
        if feed.buffer:
            self._signal_work()
        if skip:
            await self._answer(skip, "skip")
        if parked:
            await self._park(parked)

    async def lease(self, *, limit: int, lease_s: float, skip: Sequence[str] = ()) -> list[Lease]:
        """Up to `limit` fetched messages, across functions in turn, none of `skip`'s."""
        await trio.lowlevel.checkpoint()
        out: list[Lease] = []
        names = [f for f, feed in self._feeds.items() if feed.buffer and not feed.held and f not in skip]
        if not names:
            return out
        self._rotate = (self._rotate + 1) % len(names)
        for function in names[self._rotate :] + names[: self._rotate]:
            feed = self._feeds[function]
            while feed.buffer and len(out) < limit:
                lease = self._leases.pop(feed.buffer.popleft(), None)
                if lease is not None:
                    out.append(lease)
                    feed.leased += 1
        return out

    async def renew(self, ids: Sequence[int], *, lease_s: float) -> None:
        """Nothing to do: the store keeps every held message in progress itself."""
        await trio.lowlevel.checkpoint()

    async def complete(self, completions: Sequence[Completion]) -> None:
        """Answer each message as its outcome says. A retry and a dead letter are published
        (and acknowledged by the stream) before the original is acked / terminated."""
        now, wall = self._clock(), self._wall()
        answers: list[cluster.Settle] = []
        publish: list[tuple[str, bytes, dict[str, str]]] = []
        then: list[tuple[cluster.Settle, cluster.Settle | None]] = []  # per publish: on success, on failure
        for c in completions:
            held = self._let_go(c.delivery_id)
            if held is None:
                continue
            self._record(c, now)
            self._records.append(
                ClusterRecord(
                    delivery_id=held.delivery,
                    completion=c,
                    message_id=held.message_id,
                    type=held.type,
                    source=held.source,
                    body=held.msg.data.decode("utf-8", "replace"),
                    attempts_before=held.attempts,
                    at=now,
                    node=self._node,
                )
            )
            if c.state in (DeliveryState.DELIVERED, DeliveryState.FILTERED):
                answers.append(cluster.Settle(held.msg, "ack"))
            elif c.state is DeliveryState.DISCARDED:
                answers.append(cluster.Settle(held.msg, "term"))
            elif c.state is DeliveryState.PENDING:
                delay = max(0.0, (c.next_attempt_at or now) - now)
                headers = event_headers(
                    functions=[held.function],
                    source=held.source,
                    type_=held.type,
                    dedupe=f"retry:{held.msg.metadata.sequence.stream}:{held.attempts + 1}",
                    attempts=held.attempts + 1,
                    due=wall + delay,
                    delivery=held.delivery,
                )
                publish.append((self._names.events_subject, held.msg.data, headers))
                # If the copy cannot be stored, the original waits out the delay instead
                # (that attempt is then not counted: at-least-once either way).
                then.append((cluster.Settle(held.msg, "ack"), cluster.Settle(held.msg, "nak", delay)))
            else:  # DEAD
                headers = dead_headers(
                    function=held.function,
                    source=held.source,
                    type_=held.type,
                    attempts=held.attempts + 1,
                    error=c.result.error,
                    delivery=held.delivery,
                )
                publish.append((self._names.dead_subject(held.function), held.msg.data, headers))
                # Not terminated when the dead letter cannot be stored: the cluster redelivers
                # it after ack_wait, and it dies again.
                then.append((cluster.Settle(held.msg, "term"), None))
        error: Exception | None = None
        if publish:
            try:
                acks = await self._bridge.run(partial(cluster.publish_all, self._conn, publish))
            except Exception as exc:
                acks = [exc] * len(publish)
            for ack, (ok, failed) in zip(acks, then, strict=True):
                if isinstance(ack, BaseException):
                    error = error or cluster.translate(ack, doing="storing retries and dead letters")
                    if failed is not None:
                        answers.append(failed)
                else:
                    answers.append(ok)
        await self._answer(answers, "complete")
        if error is not None:
            failure = error if isinstance(error, StoreError) else ClusterError(str(error))  # the dispatcher's type
            self._fault("complete", failure)
            raise failure
        self._faults.pop("complete", None)

    async def postpone(self, ids: Sequence[int], *, until: float, reason: str) -> None:
        """Back to the cluster, due at `until` (nak with that delay)."""
        delay = max(0.0, until - self._clock())
        await self._answer([cluster.Settle(h.msg, "nak", delay) for h in self._let_go_all(ids)], "postpone")
        self._signal_work()

    async def hold(self, function: str, ids: Sequence[int], *, reason: str) -> None:
        """This node cannot run `function` (paused, failing to load): its events are parked
        in the held stream (attempts kept) until a node that can run it moves them back."""
        feed = self._feeds.get(function)
        waiting = list(feed.buffer) if feed is not None else []
        if feed is not None:
            feed.held = True
        parked = self._let_go_all([*ids, *waiting])
        await self._park(parked)
        log.info("cluster_function_held", function=function, reason=reason, parked=len(parked))

    async def _park(self, items: list[_Held]) -> None:
        """Into `P.held.<function>` (awaited), then acked; on failure naked to try again later."""
        if not items:
            return
        publish = [
            (
                self._names.held_subject(h.function),
                h.msg.data,
                parked_headers(
                    function=h.function, source=h.source, type_=h.type, attempts=h.attempts, delivery=h.delivery
                ),
            )
            for h in items
        ]
        try:
            acks = await self._bridge.run(partial(cluster.publish_all, self._conn, publish))
        except Exception as exc:
            acks = [exc] * len(publish)
        answers = [
            cluster.Settle(h.msg, "nak", PARK_RETRY_S) if isinstance(a, BaseException) else cluster.Settle(h.msg, "ack")
            for h, a in zip(items, acks, strict=True)
        ]
        failed = next((a for a in acks if isinstance(a, BaseException)), None)
        if failed is not None:
            log.error("cluster_park_failed", error=str(cluster.translate(failed, doing="parking held events")))
        await self._answer(answers, "park")

    async def held_functions(self) -> list[str]:
        await trio.lowlevel.checkpoint()
        return sorted(f for f, feed in self._feeds.items() if feed.held)

    async def release(self, ids: Sequence[int]) -> None:
        """Leases given back unused: to the cluster at once (any node may take them)."""
        await self._answer([cluster.Settle(h.msg, "nak") for h in self._let_go_all(ids)], "release")

    async def wake(self, function: str) -> int:
        """`function` runs here again: fetch it, and move its parked events back."""
        feed = self._feeds.get(function)
        if feed is not None and feed.held:
            feed.held = False
            feed.poke()
        return await self._unpark(function)

    async def _unpark(self, function: str) -> int:
        try:
            n = await self._bridge.run(
                partial(
                    cluster.move_back,
                    self._conn,
                    self._names,
                    stream=self._names.held_stream,
                    subject=self._names.held_subject(function),
                    kind="unpark",
                    keep_attempts=True,
                )
            )
        except Exception as exc:
            log.error("cluster_unpark_failed", function=function, error=str(cluster.translate(exc, doing="unparking")))
            return 0
        if n:
            log.info("cluster_unparked", function=function, events=n)
            self._signal_work()
        return n

    async def _unpark_forever(self) -> None:
        """Every UNPARK_S: events parked by any node for a function this node runs now go back."""
        while True:
            await trio.sleep(UNPARK_S)
            live = {token(f): f for f, feed in self._feeds.items() if not feed.held}
            if not live:
                continue
            try:
                counts = await self._bridge.run(partial(cluster.held_counts, self._conn, self._names))
            except Exception as exc:
                log.error("cluster_unpark_failed", error=str(cluster.translate(exc, doing="reading parked events")))
                continue
            for tok, n in counts.items():
                if n and tok in live:
                    await self._unpark(live[tok])

    async def next_due(self, *, skip: Sequence[str] = ()) -> float | None:
        await trio.lowlevel.checkpoint()
        ready = any(feed.buffer and not feed.held and f not in skip for f, feed in self._feeds.items())
        return self._clock() if ready else None

    @property
    def work_generation(self) -> int:
        return self._work_generation

    async def wait_work(self, generation: int) -> None:
        while self._work_generation <= generation:
            await self._work_event.wait()

    def _signal_work(self) -> None:
        self._work_generation += 1
        self._work_event.set()
        self._work_event = trio.Event()

    def _let_go(self, lease_id: int) -> _Held | None:
        held = self._held.pop(lease_id, None)
        if held is None:
            return None
        self._leases.pop(lease_id, None)
        feed = self._feeds.get(held.function)
        if feed is not None:
            if lease_id in feed.buffer:
                feed.buffer.remove(lease_id)
            else:
                feed.leased = max(0, feed.leased - 1)
            feed.poke()
        return held

    def _let_go_all(self, ids: Iterable[int]) -> list[_Held]:
        return [h for i in ids if (h := self._let_go(i)) is not None]

    async def _answer(self, answers: list[cluster.Settle], what: str) -> None:
        """Send acks / naks / terms; a failure is logged (the cluster redelivers after ack_wait)."""
        for i in range(0, len(answers), SETTLE_CHUNK):
            chunk = answers[i : i + SETTLE_CHUNK]
            try:
                await self._bridge.run(partial(cluster.settle, self._conn, chunk))
            except Exception as exc:
                error = cluster.translate(exc, doing=f"answering {len(chunk)} messages ({what})")
                log.error("cluster_answer_failed", what=what, error=str(error))

    async def _renew_forever(self) -> None:
        """+WPI for every held message each ack_wait / 3 (see the rules)."""
        while True:
            await trio.sleep(self._ack_wait_s / 3)
            msgs = [cluster.Settle(h.msg, "progress") for h in list(self._held.values())]
            if msgs:
                await self._answer(msgs, "renew")

    # --- dead letters -----------------------------------------------------------------------

    async def replay(self, *, function: str | None = None, delivery_id: int | None = None) -> int:
        """Dead letters of the whole cluster (all, one function's, or one delivery) back to the queue."""
        if delivery_id is not None:
            return await self._replay_one(delivery_id, function) if 0 < delivery_id <= MAX_DELIVERY_ID else 0
        if function is not None:
            await self._ensure(function)
        subject = self._names.dead_subjects if function is None else self._names.dead_subject(function)
        try:
            n = await self._bridge.run(
                partial(
                    cluster.move_back,
                    self._conn,
                    self._names,
                    stream=self._names.dead_stream,
                    subject=subject,
                    kind="replay",
                    keep_attempts=False,
                )
            )
        except Exception as exc:
            raise cluster.translate(exc, doing="replaying dead letters") from exc
        if function is not None:
            self._count(function).replayed += n
        if n:
            with contextlib.suppress(StoreError):
                await self._local.replayed_cluster(function=function)
        self._info = (-1e18, None, None)
        log.info("cluster_replayed", function=function, deliveries=n)
        return n

    async def _replay_one(self, delivery: int, function: str | None) -> int:
        """The dead letter of delivery `delivery` (any node's) back to the queue: 1, or 0 when
        the cluster has no dead letter of it (never dead, or already replayed)."""
        if function is None:  # this node's record names the function: look in its subject only
            local = await self._local.cluster_delivery(delivery)
            function = local.summary.function if local is not None else None
        subject = self._names.dead_subjects if function is None else self._names.dead_subject(function)
        try:
            found = await self._bridge.run(
                partial(cluster.find_dead, self._conn, self._names, delivery, subject=subject)
            )
        except Exception as exc:
            raise _failure(exc, doing=f"looking for the dead letter of delivery {delivery}") from exc
        if found is None:
            return 0
        seq, headers = found
        name = header_json(headers, H_FUNCTION, "")
        if isinstance(name, str) and name:
            await self._ensure(name)  # before the publish: an interest stream drops what no consumer wants
        try:
            moved = await self._bridge.run(partial(cluster.move_one, self._conn, self._names, seq))
        except Exception as exc:
            raise _failure(exc, doing=f"replaying delivery {delivery}") from exc
        n = 0 if moved is None else 1
        if moved is not None:
            if isinstance(name, str) and name:
                self._count(name).replayed += n
            with contextlib.suppress(StoreError):
                await self._local.replayed_cluster(delivery_ids=[delivery])
        self._info = (-1e18, None, None)
        log.info("cluster_replayed", delivery=delivery, deliveries=n)
        return n

    # --- figures ----------------------------------------------------------------------------

    async def _cluster_info(self) -> tuple[cluster.Info | None, str | None]:
        at, info, error = self._info
        if self._clock() - at < INFO_TTL_S:
            return info, error
        try:
            info, error = await self._bridge.run(partial(cluster.info, self._conn, self._names)), None
        except Exception as exc:
            info, error = None, str(cluster.translate(exc, doing="reading the cluster's figures"))
        self._info = (self._clock(), info, error)
        return info, error

    async def cluster_stats(self) -> ClusterStats | None:
        info, error = await self._cluster_info()
        return figures.cluster_stats(info, error, names=self._names, config=self._config)

    async def stats(self) -> StoreStats:
        """The cluster's queue figures (pending, dead) with this node's outcome counters."""
        info, _error = await self._cluster_info()
        return figures.store_stats(
            self._counts, info, names=self._names, leased=len(self._held), healthy=self.healthy, fault=self.fault
        )

    def _count(self, function: str) -> figures.Counts:
        return figures.counts_for(self._counts, function)

    def _record(self, c: Completion, now: float) -> None:
        figures.record(self._counts, c, now)

    @property
    def healthy(self) -> bool:
        return not self._faults and bool(self._conn.nc.is_connected) and self._local.healthy

    @property
    def fault(self) -> StoreFault | None:
        if self._faults:
            return min(self._faults.values(), key=lambda f: f.since)
        if not self._conn.nc.is_connected:
            return StoreFault(what="cluster", kind="cluster", message="not connected to NATS", since=self._clock())
        return self._local.fault

    def _fault(self, what: str, exc: Exception) -> None:
        if what not in self._faults:
            self._faults[what] = StoreFault(what=what, kind="cluster", message=str(exc), since=self._clock())

    @property
    def pending_count(self) -> int:
        """Messages held by this node (the cluster's totals are in stats())."""
        return len(self._held)

    # --- local: logs, pauses, listings ------------------------------------------------------

    async def deliveries(
        self, *, function: str | None = None, state: str | None = None, limit: int = 20, message_id: str | None = None
    ) -> list[DeliverySummary]:
        """The deliveries this node ran, newest first, in the state it last saw them in
        (store/cluster_records.py); what is still queued is in status' cluster figures."""
        await self._flush_records()
        return await self._local.cluster_deliveries(function=function, state=state, limit=limit, message_id=message_id)

    async def delivery(self, delivery_id: int) -> DeliveryDetail | None:
        """This node's record of the delivery with every node's attempt summaries (summaries.py)."""
        if not 0 < delivery_id <= MAX_DELIVERY_ID:
            return None
        await self._flush_records()
        local = await self._local.cluster_delivery(delivery_id)
        try:
            shared = await self._bridge.run(partial(cluster.read_attempts, self._conn, self._names, delivery_id))
        except Exception as exc:  # the local record is still worth showing
            log.warning("cluster_attempts_unread", error=str(cluster.translate(exc, doing="reading attempt summaries")))
            shared = []
        return summaries.merge(local, shared, delivery_id, node=self._node)

    async def timeline(
        self, *, function: str | None = None, since: float, until: float, step_minutes: int = 1
    ) -> list[MinuteBucket]:
        return await self._local.timeline(function=function, since=since, until=until, step_minutes=step_minutes)

    async def error_groups(self, function: str, *, limit: int = 20) -> list[ErrorGroup]:
        return await self._local.error_groups(function, limit=limit)

    async def retrying(self, function: str, *, limit: int = 20) -> list[DeliverySummary]:
        return await self._local.cluster_deliveries(function=function, limit=limit, retrying=True)

    async def set_paused(self, function: str, paused: bool) -> bool:
        """Pause or resume `function` on every node (the cluster's pauses stream); True when
        that changed anything. Kept in the local store too, for this node's record."""
        before = await self.paused()
        try:
            await self._bridge.run(partial(cluster.set_paused, self._conn, self._names, function, paused))
        except Exception as exc:
            raise _failure(exc, doing=f"{'pausing' if paused else 'resuming'} {function}") from exc
        await self._local.set_paused(function, paused)
        return (function in before) != paused

    async def paused(self) -> frozenset[str]:
        """The functions paused in the cluster (every node reloads this each PAUSES_S)."""
        try:
            names: frozenset[str] = await self._bridge.run(partial(cluster.paused, self._conn, self._names))
        except Exception as exc:
            raise _failure(exc, doing="reading the paused functions") from exc
        return names

    async def append_logs(self, records: Sequence[LogRecord]) -> None:
        """Into the local store, and (best effort, one message per call) the cluster's log stream."""
        await self._local.append_logs(records)
        if not records:
            return
        payload = loglines.encode(records, self._node)
        try:
            await self._bridge.run(
                partial(cluster.publish_logs, self._conn, self._names.logs_subject(self._node), payload)
            )
        except Exception as exc:  # never raises: losing a copy of log lines is survivable
            self._logs_not_shared += len(records)
            if self._logs_not_shared == len(records):
                log.warning("cluster_logs_not_shared", error=str(cluster.translate(exc, doing="sharing log lines")))

    async def cluster_logs(
        self,
        *,
        limit: int,
        function: str | None = None,
        level: str | None = None,
        message_id: str | None = None,
        after: int | None = None,
    ) -> tuple[int, list[LogRecord]]:
        """Every node's log lines from the size-capped log stream, oldest first: the newest
        `limit`, or (with `after`, a cursor this returned) the ones published since; and the
        cursor to follow on from."""
        try:
            cursor, batches = await self._bridge.run(partial(cluster.read_logs, self._conn, self._names, after=after))
        except Exception as exc:
            raise _failure(exc, doing="reading the cluster's log lines") from exc
        records = loglines.newest(
            batches,
            limit=limit if after is None else 1_000_000,
            function=function,
            level=level,
            message_id=message_id,
        )
        return cursor, records

    async def read_logs(
        self,
        *,
        after_id: int | None = None,
        limit: int = 100,
        function: str | None = None,
        level: str | None = None,
        message_id: str | None = None,
    ) -> list[LogRecord]:
        return await self._local.read_logs(
            after_id=after_id, limit=limit, function=function, level=level, message_id=message_id
        )

    async def wait_logs(self, after_id: int) -> None:
        await self._local.wait_logs(after_id)

    def set_limits(self, *, max_pending: int, retention_s: float, log_lines: int) -> None:
        self._local.set_limits(max_pending=max_pending, retention_s=retention_s, log_lines=log_lines)

    def start_tasks(self, nursery: trio.Nursery) -> None:
        """Renewals, new functions' consumers, unparking; fetch tasks start in `nursery` too."""
        self._nursery = nursery
        nursery.start_soon(self._renew_forever)
        nursery.start_soon(self._sync_forever)
        nursery.start_soon(self._unpark_forever)
        nursery.start_soon(self._records_forever)
        nursery.start_soon(self._prune_records_forever)
        nursery.start_soon(self._presence_forever)
        nursery.start_soon(self._sweep_forever)

    # --- delivery records (local file, attempts stream) -------------------------------------

    async def _records_forever(self) -> None:
        while True:
            await trio.sleep(RECORD_FLUSH_S)
            await self._flush_records()

    async def _flush_records(self) -> None:
        """Write the records gathered since the last flush (one writer job), and share the
        summaries worth sharing. A failure keeps them for the next flush (bounded)."""
        async with self._records_lock:
            if not self._records:
                return
            batch, self._records = self._records, []
            try:
                await self._local.record_cluster(batch)
            except StoreError as exc:
                keep = [*batch, *self._records]
                excess = max(0, len(keep) - RECORD_BACKLOG)
                if excess and not self._records_dropped:
                    log.error("cluster_records_dropped", error=str(exc), dropped=excess)
                self._records_dropped += excess
                self._records = keep[excess:]
                if not excess:
                    log.warning("cluster_records_delayed", error=str(exc), records=len(keep))
                return
            shared = [
                (self._names.attempts_subject(r.delivery_id), summaries.encode(r))
                for r in batch
                if summaries.worth_sharing(r)
            ]
            if not shared:
                return
            try:
                await self._bridge.run(partial(cluster.publish_attempts, self._conn, shared))
            except Exception as exc:  # best effort, as log lines: the local record still has them
                self._attempts_not_shared += len(shared)
                if self._attempts_not_shared == len(shared):  # the first failure only
                    error = cluster.translate(exc, doing="sharing attempt summaries")
                    log.warning("cluster_attempts_not_shared", error=str(error))

    async def _prune_records_forever(self) -> None:
        while True:
            await trio.sleep(RECORD_PRUNE_S)
            try:
                await self._local.prune_cluster()
            except StoreError as exc:
                log.warning("cluster_records_prune_failed", error=str(exc))

    # --- orphaned consumers -----------------------------------------------------------------

    async def _presence_forever(self) -> None:
        failing = False
        while True:
            functions = sorted({*self._functions(), *self._feeds})
            try:
                await self._bridge.run(
                    partial(cluster.publish_presence, self._conn, self._names, self._node, functions)
                )
                failing = False
            except Exception as exc:
                if not failing:  # once per outage, not every PRESENCE_S
                    error = cluster.translate(exc, doing="publishing presence")
                    log.warning("cluster_presence_failed", error=str(error))
                failing = True
            await trio.sleep(PRESENCE_S)

    async def _sweep_forever(self) -> None:
        while True:
            # A short grace (tests, impatient operators) is looked at sooner.
            await trio.sleep(min(SWEEP_S, max(1.0, self._config.orphan_grace_s / 4)))
            try:
                await self.sweep_orphans()
            except StoreError as exc:
                log.warning("cluster_sweep_failed", error=str(exc))

    async def sweep_orphans(self) -> dict[str, tuple[int, int]]:
        """Sweep the consumers of functions no live node has listed for `orphan_grace_s` (see
        the rules); per function swept, (events acked, events of its own parked)."""
        try:
            live = await self._bridge.run(partial(cluster.presence, self._conn, self._names))
            consumers = await self._bridge.run(partial(cluster.consumer_functions, self._conn, self._names))
        except Exception as exc:
            raise _failure(exc, doing="looking for orphaned consumers") from exc
        now, mine = self._clock(), {*self._functions(), *self._feeds}
        orphans = [f for f in consumers if f not in live and f not in mine]
        self._orphaned = {f: self._orphaned.get(f, now) for f in orphans}
        out: dict[str, tuple[int, int]] = {}
        for function, since in self._orphaned.items():
            if now - since < self._config.orphan_grace_s:
                continue
            try:
                out[function] = await self._bridge.run(
                    partial(cluster.sweep, self._conn, self._names, function, limit=SWEEP_LIMIT, retry_s=SWEEP_S)
                )
            except Exception as exc:
                log.warning(
                    "cluster_sweep_failed", function=function, error=str(cluster.translate(exc, doing="sweeping"))
                )
                continue
            acked, parked = out[function]
            if acked or parked:
                log.info("cluster_orphan_swept", function=function, acked=acked, parked=parked)
        return out

    async def hand_back_all(self) -> None:
        """At close: every message still held goes back to the cluster now (nak)."""
        ids = list(self._held)
        await self._answer([cluster.Settle(h.msg, "nak") for h in self._let_go_all(ids)], "close")
        with contextlib.suppress(StoreError):
            await self._flush_records()
        try:  # gone: this node's functions are no longer listed as running here
            await self._bridge.run(partial(cluster.publish_presence, self._conn, self._names, self._node, []))
        except Exception as exc:
            log.warning("cluster_presence_failed", error=str(cluster.translate(exc, doing="publishing presence")))


def _failure(exc: BaseException, *, doing: str) -> StoreError:
    """`exc` as a StoreError (what admin and the daemon's tasks catch), whatever translate() made."""
    error = cluster.translate(exc, doing=doing)
    return error if isinstance(error, StoreError) else ClusterError(str(error))


def _type_of(msg: Any) -> str:
    return str(header_json(msg.headers, H_TYPE, ""))


__all__ = ["JetStreamStore", "ack_wait_for"]
