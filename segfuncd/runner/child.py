"""A runner process (`python -m segfuncd.runner.child CONFIG_JSON`): user JS lives here.

One trio loop in the main thread owns everything: the pipe to the pool (fd 0 in, a dup of
fd 1 out; fd 1 itself is pointed at stderr so a stray print cannot corrupt a frame), one
QuickJS context per function version (keyed by function name AND full content hash, so
two functions never share one), and one httpx client.

Trust. Each context is an untrusted party. The runner accepts from a context only results,
fetches, timers and log lines for invocations it handed to THAT context (`_Context.live`);
fetch responses and timer callbacks go back only to the context that asked. Anything else
(an unknown id, a wrong shape: answers.ContextViolation, a broken dispatcher) fails that
context's own invocations as SandboxViolation (a bug: dead-lettered), and the context is
rebuilt from its source. A limit (CPU, wall clock, memory) ends the invocation that ran
and also rebuilds the context: invocations that did nothing outside JS yet are restarted
on the new one, the others end as ContextReset (retried). Nothing a context says can stop
the runner or reach another function.

Theory of operation. JS never blocks the loop for long: work reaches a context as
*triggers* (start an invocation, settle a fetch, fire a timer, abandon an invocation);
the JS loop task feeds all triggers queued for a context to it in one *slice* (one eval,
which also drains the promise jobs), then reads back the slice's outboxes: finished
invocations, new fetches, timers and console lines. Fetches run as trio tasks while other
slices run; their completion is a trigger for a later slice. Batching many triggers into
one eval matters: QuickJS walks its heap on every eval (see sandbox.py).
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import os
import resource
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio

from ..collector import freeze_startup_objects
from ..outcomes import RETRY_AFTER_STATUSES, LogLine, RequestRecord, retry_after_header
from ..spec import EVENT_HANDLERS
from .affinity import CPU_HEAVY_ERRORS, HEAVY_FOR_S, preempt_s
from .answers import (
    LOG_LINE_COST,
    MAX_FETCHES_PER_INVOCATION,
    MAX_LOG_BYTES,
    MAX_TIMERS_PER_INVOCATION,
    ContextViolation,
    FetchRequest,
    LogEntry,
    Outbox,
    TimerRequest,
    cut,
)
from .clock import InvocationClock
from .fetch import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_IN_FLIGHT_PER_FUNCTION,
    FetchCancelled,
    Fetcher,
    FetchFailed,
    FetchSpec,
)
from .httpclient import Abort
from .protocol import (
    FrameDecoder,
    Heavy,
    Invoke,
    Load,
    Loaded,
    Missing,
    Pong,
    Report,
    Result,
    Results,
    ToPool,
    ToRunner,
    VersionSpec,
    encode,
)
from .sandbox import LimitExceeded, LoadFailure, Sandbox, install_limit_handlers
from .triggers import Abandon, FetchAnswer, Settle, Start, Timer, Trigger

HANDLERS_BY_TYPE = {t: list(names) for t, names in EVENT_HANDLERS.items()}  # the table is spec.py's
CAPTURE_CHARS = 4096  # request/response bodies and header values kept for attempt records
CAPTURE_HEADERS = 64
MAX_CONTEXTS = 64  # versions kept loaded; the pool resends a source the runner dropped
MAX_TRIGGERS_PER_SLICE = 500
# Invocations started in JS and not finished, per context. The rest wait here, in Python:
# QuickJS walks its whole heap on every eval (~5 us per pending invocation, measured), so
# hundreds of invocations parked on fetch() would make every slice slow for all of them.
# A context whose handlers finish inside their first slice (no await on I/O) parks nothing,
# so its limit grows up to MAX_TRIGGERS_PER_SLICE and big batches still go in one eval.
DEFAULT_MAX_ACTIVE = 32
MAX_REQUEST_RECORDS = 200  # fetch records kept per invocation (shown by `segfuncctl test`)
FETCH_STARTS_PER_ROUND = 16  # see _Context.fetches
# A slice of one context longer than this stops the timeout_ms clocks of the others.
OTHERS_SLICE_MIN_S = 0.01
MOVED = "handed back to run on the function's home runner (its slices hold a runner's loop)"


@dataclass(eq=False)
class _Request:
    id: int
    results: list[Result | None]
    remaining: int
    batch: bool
    movable: bool = False  # this runner is not the function's home (affinity.py)
    events: int = 1  # events it carries (an onBatch invocation starts all of them at once)


@dataclass(eq=False)
class _Invocation:
    id: int
    req: _Request
    pos: int
    ctx: _Context
    t0: float
    clock: InvocationClock  # timeout_ms: runs from admission, paused while a fetch queues
    start: Start  # its start trigger, kept to restart it on a rebuilt context
    logs: list[LogLine] = field(default_factory=list)
    log_bytes: int = 0
    requests: list[RequestRecord] = field(default_factory=list)
    scopes: set[trio.CancelScope] = field(default_factory=set)  # its timers'
    aborts: set[Abort] = field(default_factory=set)  # its fetches' (no cancel scope each: httpclient.Abort)
    done: bool = False
    started: bool = False  # handed to JS (holds one of its context's active slots)
    gen: int = 0  # the context generation it was handed to
    effects: bool = False  # a fetch or timer of it was performed: it cannot be restarted
    restarts: int = 0
    cpu_s: float = 0.0  # CPU charged to it across all slices
    timers: int = 0  # pending timers
    fetches: int = 0  # fetches in flight


@dataclass(eq=False)
class _Context:
    """One function version's QuickJS context, and what the runner knows about it.

    `live` holds the invocations handed to THIS context's JS; an answer naming any other
    id is a violation. `ended` holds ids the runner ended itself (timeout, CPU) whose
    abandon trigger JS may not have seen yet: late entries for those are dropped quietly.
    """

    key: tuple[str, str]  # (function name, full content hash)
    version: VersionSpec
    sandbox: Sandbox | None
    handlers: tuple[str, ...]
    error: str | None
    line: int | None
    gen: int = 0  # bumped on every rebuild
    triggers: list[Trigger] = field(default_factory=list)
    last_used: float = 0.0
    active: int = 0  # invocations started in JS, not finished
    limit: int = DEFAULT_MAX_ACTIVE  # current admission limit (see DEFAULT_MAX_ACTIVE)
    waiting: deque[_Invocation] = field(default_factory=deque)
    live: dict[int, _Invocation] = field(default_factory=dict)
    ended: set[int] = field(default_factory=set)
    solo: set[int] = field(default_factory=set)  # suspects of an interrupt: run one per slice
    loaded_once: bool = False  # it compiled once: a failed rebuild is retried on the next event
    # After a slice that ran into its CPU limit, the context rests as long as that slice
    # took while other functions have work here: a CPU burner gets at most half the loop.
    rest_until: float = 0.0
    # While other functions have invocations on this runner, fetches its JS asked for beyond
    # FETCH_STARTS_PER_ROUND in one round of the JS loop wait here and start in the next
    # rounds: a burst (a hundred fetches from one slice) is spread over rounds that the other
    # contexts' slices and fetches run between, not started in one long scheduler turn.
    fetches: deque[tuple[_Invocation, FetchRequest]] = field(default_factory=deque)
    round_starts: int = 0  # fetches started in this round of the JS loop

    @property
    def name(self) -> str:
        """The function's name: its share of the runner's connections (fetch.py)."""
        return self.key[0]


class Runner:
    """The runner's state; `serve()` runs until the pool closes our stdin."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._timeout_s = config.get("timeout_ms", 10_000) / 1000
        self._cpu_s = config.get("cpu_ms", 2_000) / 1000
        self._fetcher = Fetcher(
            user_agent=config.get("user_agent", "segfuncd"),
            egress_deny=config.get("egress_deny", ()),
            egress_allow=config.get("egress_allow", ()),
            max_in_flight=config.get("max_fetch_in_flight", DEFAULT_MAX_IN_FLIGHT),
            max_in_flight_per_function=config.get("max_fetch_per_function", DEFAULT_MAX_IN_FLIGHT_PER_FUNCTION),
        )
        self._contexts: dict[tuple[str, str], _Context] = {}
        self._busy: dict[tuple[str, str], _Context] = {}
        self._live: dict[int, _Invocation] = {}
        self._deadlines: list[tuple[float, int]] = []
        self._heavy: dict[str, float] = {}  # function -> when a slice of it last hit its CPU limit
        self._heavy_now: set[tuple[str, str]] = set()  # contexts whose last slice hit the CPU limit
        self._next_inv = 1
        self._max_active = int(config.get("max_active", DEFAULT_MAX_ACTIVE))
        self._wake = trio.Event()
        self._send_q, self._send_r = trio.open_memory_channel[bytes](math.inf)
        self._nursery: trio.Nursery | None = None
        self._starting: dict[tuple[str, str], _Context] = {}  # contexts with fetches waiting to start

    # ---- plumbing ---------------------------------------------------------------------
    async def serve(self, in_fd: int, out_fd: int) -> None:
        inp = trio.lowlevel.FdStream(in_fd)
        out = trio.lowlevel.FdStream(out_fd)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._writer, out)
            nursery.start_soon(self._js_loop)
            nursery.start_soon(self._deadline_loop)
            decoder = FrameDecoder[ToRunner](ToRunner)
            while True:
                data = await inp.receive_some(1 << 20)
                if not data:
                    break
                for msg in decoder.feed(data):
                    self._on_message(msg)
            # the pool closed our stdin (recycle / shutdown): finish what is in flight
            while self._live:
                await trio.sleep(0.05)
            await trio.sleep(0.05)  # let the writer flush
            nursery.cancel_scope.cancel()
        await self._fetcher.aclose()

    async def _writer(self, out: trio.lowlevel.FdStream) -> None:
        async for frame in self._send_r:
            frames = [frame]
            while True:
                try:
                    frames.append(self._send_r.receive_nowait())
                except trio.WouldBlock:
                    break
            await out.send_all(b"".join(frames))

    def _send(self, msg: ToPool) -> None:
        self._send_q.send_nowait(encode(msg))

    # ---- messages ---------------------------------------------------------------------
    def _on_message(self, msg: ToRunner) -> None:
        if isinstance(msg, Invoke):
            self._on_invoke(msg)
        elif isinstance(msg, Load):
            ctx = self._load(msg.version)
            self._send(Loaded(id=msg.id, report=_report(ctx)))
        else:
            self._send(Pong(id=msg.id))

    def _load(self, version: VersionSpec) -> _Context:
        key = (version.name, version.hash)
        ctx = self._contexts.get(key)
        if ctx is not None:
            return ctx
        ctx = _Context(key, version, None, (), None, None)
        self._build(ctx)
        ctx.limit = self._max_active
        self._contexts[key] = ctx
        self._evict()
        return ctx

    def _build(self, ctx: _Context) -> None:
        """(Re)create the context's sandbox from its source; on failure it becomes a load error."""
        ctx.gen += 1
        ctx.triggers.clear()
        ctx.ended.clear()
        ctx.solo.clear()
        ctx.sandbox = None
        try:
            sandbox = Sandbox(cpu_s=self._cpu_s, wall_s=self._timeout_s)
            version = ctx.version
            ctx.handlers = sandbox.load(version.source, version.path or version.name)
            ctx.sandbox, ctx.error, ctx.line = sandbox, None, None
            ctx.loaded_once = True
        except LoadFailure as exc:
            ctx.handlers, ctx.error, ctx.line = (), exc.message, exc.line
        except (MemoryError, LimitExceeded):
            ctx.handlers, ctx.error, ctx.line = (), "the runner could not build a context for it", None

    def _evict(self) -> None:
        """Forget the least recently used idle contexts beyond MAX_CONTEXTS."""
        if len(self._contexts) <= MAX_CONTEXTS:
            return
        for ctx in sorted(self._contexts.values(), key=lambda c: c.last_used):
            if len(self._contexts) <= MAX_CONTEXTS:
                break
            if not ctx.live and not ctx.waiting and ctx.key not in self._busy:
                del self._contexts[ctx.key]

    def _on_invoke(self, msg: Invoke) -> None:
        if msg.movable and self._is_heavy(msg.name):
            # its slices hold a loop: its events go to its home without running here at all
            moved = Result(error_name="ContextReset", error_message=MOVED, moved=True)
            self._send(Results(id=msg.id, batch=False, results=[moved] * len(msg.events), pid=os.getpid()))
            return
        ctx = self._contexts.get((msg.name, msg.hash))
        if ctx is None:
            if msg.version is None:
                self._send(Missing(id=msg.id))
                return
            ctx = self._load(msg.version)
        ctx.last_used = time.monotonic()
        events = msg.events
        if ctx.sandbox is None and ctx.loaded_once and not ctx.live:
            self._build(ctx)  # a rebuild after a limit or violation failed: try again
        if ctx.sandbox is None:
            failed = Result(error_name="FunctionNotLoaded", error_message=ctx.error)
            self._send(Results(id=msg.id, batch=False, results=[failed] * len(events), pid=os.getpid()))
            return
        batch = msg.batch and "onBatch" in ctx.handlers
        n = 1 if batch else len(events)
        req = _Request(msg.id, [None] * n, n, batch, msg.movable, len(events))
        if not events:
            self._send(Results(id=req.id, batch=batch, results=[], pid=os.getpid()))
            return
        settings = msg.settings or "{}"
        if batch:
            self._start(ctx, req, 0, ["onBatch"], "batch", "[" + ",".join(events) + "]", settings)
        else:
            for pos, (ev, ty) in enumerate(zip(events, msg.types, strict=True)):
                self._start(ctx, req, pos, HANDLERS_BY_TYPE.get(ty, []), str(ty), ev, settings)

    def _start(self, ctx: _Context, req: _Request, pos: int, handlers: list[str], ty: str, ev: str, st: str) -> None:
        inv_id = self._next_inv
        self._next_inv += 1
        now = time.monotonic()
        start = Start(inv=inv_id, handlers=handlers, event_type=ty, event=ev, settings=st)
        inv = _Invocation(inv_id, req, pos, ctx, now, InvocationClock(self._timeout_s, self._timeout_s), start)
        self._live[inv_id] = inv
        if ctx.active < ctx.limit:
            self._hand(ctx, inv)
        else:
            ctx.waiting.append(inv)

    def _hand(self, ctx: _Context, inv: _Invocation) -> None:
        """Give an invocation to the context's JS (it now holds an active slot)."""
        ctx.active += 1
        inv.started = True
        inv.gen = ctx.gen
        ctx.live[inv.id] = inv
        if not inv.clock.started:  # timeout_ms starts now, not while it waited here
            inv.clock.start(time.monotonic())
            heapq.heappush(self._deadlines, (inv.clock.deadline, inv.id))
        self._trigger(ctx, inv.start)

    def _admit(self, ctx: _Context) -> None:
        """A slot freed up: start waiting invocations that have not timed out."""
        ctx.active -= 1
        self._admit_waiting(ctx)

    def _admit_waiting(self, ctx: _Context) -> None:
        while ctx.waiting and ctx.active < ctx.limit and ctx.sandbox is not None:
            inv = ctx.waiting.popleft()
            if not inv.done:
                self._hand(ctx, inv)

    def _trigger(self, ctx: _Context, trigger: Trigger) -> None:
        ctx.triggers.append(trigger)
        self._busy[ctx.key] = ctx
        self._wake.set()

    # ---- the JS loop ------------------------------------------------------------------
    async def _js_loop(self) -> None:
        while True:
            await self._wake.wait()
            # two more scheduler turns before running: fetch completions that land in the same
            # batch of I/O join this slice instead of costing a JS call each
            for _ in range(2):
                await trio.lowlevel.cancel_shielded_checkpoint()
            self._wake = trio.Event()
            for ctx in list(self._starting.values()):
                self._start_fetches(ctx)
            for ctx in list(self._busy.values()):
                if ctx.rest_until > time.monotonic() and self._others_live(ctx):
                    continue  # stays busy; _wake_after ends its rest
                self._busy.pop(ctx.key, None)
                if ctx.sandbox is None:
                    continue
                t0 = time.monotonic()
                self._run_slice(ctx)
                took = time.monotonic() - t0
                self._not_their_time(ctx, took)
                if ctx.key in self._heavy_now:
                    # it ran into its CPU limit: as long again for the others before its next slice
                    self._heavy_now.discard(ctx.key)
                    ctx.rest_until = time.monotonic() + took
                    if self._nursery is not None:
                        self._nursery.start_soon(self._wake_after, took)
            for ctx in self._contexts.values():
                ctx.round_starts = 0
            # let fetches, timers and the pipe make progress between rounds
            await trio.lowlevel.checkpoint()

    def _start_fetches(self, ctx: _Context) -> None:
        """Start up to FETCH_STARTS_PER_ROUND of the context's waiting fetches."""
        assert self._nursery is not None
        while ctx.fetches and ctx.round_starts < FETCH_STARTS_PER_ROUND:
            inv, item = ctx.fetches.popleft()
            if inv.done or inv.gen != ctx.gen:
                inv.fetches -= 1  # its invocation ended (or its context was reset) first: never sent
                continue
            ctx.round_starts += 1
            self._nursery.start_soon(self._do_fetch, inv, item)
        if ctx.fetches:
            self._wake.set()  # more in the next round
        else:
            self._starting.pop(ctx.key, None)

    async def _wake_after(self, seconds: float) -> None:
        await trio.sleep(seconds)
        self._wake.set()

    def _others_live(self, ctx: _Context) -> bool:
        return any(inv.ctx is not ctx for inv in self._live.values())

    def _not_their_time(self, ran: _Context, seconds: float) -> None:
        """A long slice of one context stalled every other: their clocks stop for it (clock.py)."""
        if seconds < OTHERS_SLICE_MIN_S:
            return
        for inv in self._live.values():
            if inv.ctx is not ran:
                inv.clock.extend(seconds)

    def _note_heavy(self, ctx: _Context, error_name: str) -> None:
        """A slice of `ctx` ran into its CPU limit: rest it, and tell the pool (affinity.py)."""
        if error_name in CPU_HEAVY_ERRORS:
            self._heavy_now.add(ctx.key)
            if ctx.name not in self._heavy:
                self._send(Heavy(functions=[ctx.name]))  # at once; then with every answer too
            self._heavy[ctx.name] = time.monotonic()

    def _take_triggers(self, ctx: _Context) -> list[Trigger]:
        if not ctx.solo:
            triggers = ctx.triggers[:MAX_TRIGGERS_PER_SLICE]
            del ctx.triggers[:MAX_TRIGGERS_PER_SLICE]
            return triggers
        # after an interrupt with several suspects: one invocation per slice finds the culprit
        if not ctx.triggers:
            return []
        first = ctx.triggers[0].inv
        triggers = [t for t in ctx.triggers if t.inv == first]
        ctx.triggers[:] = [t for t in ctx.triggers if t.inv != first]
        return triggers

    def _run_slice(self, ctx: _Context) -> None:
        assert ctx.sandbox is not None
        triggers = self._take_triggers(ctx)
        ran = {t.inv: inv for t in triggers if not isinstance(t, Abandon) and (inv := ctx.live.get(t.inv)) is not None}
        budget = max((self._cpu_s - inv.cpu_s for inv in ran.values()), default=self._cpu_s)
        limit = min(self._cpu_s, max(budget, 0.01)) + 0.05
        quantum = self._quantum(ctx, ran, triggers)
        preempting = quantum is not None and quantum < limit
        out = ctx.sandbox.run_slice(triggers, cpu_s=quantum if quantum is not None and preempting else limit)
        if out.answer is None:
            if out.violation is not None:
                self._violation(ctx, out.violation)
            elif preempting and out.interrupted == "CPULimitError":
                self._move_home(ctx)
            else:
                for line in out.logs:  # what it logged before the limit, for its own invocations only
                    if (inv := ctx.live.get(line.inv)) is not None:
                        self._log(inv, line)
                self._note_heavy(ctx, out.interrupted or "CPULimitError")
                self._interrupted(ctx, ran, out.interrupted or "CPULimitError", out.message)
            return
        try:
            self._charge(ctx, ran, out.cpu_s, out.answer.outboxes)
            rebuild = out.answer.out_of_memory  # even when the function caught it
            for box in out.answer.outboxes:
                rebuild = self._apply_outbox(ctx, box) or rebuild
        except ContextViolation as exc:
            self._violation(ctx, str(exc))
            return
        if rebuild:  # an invocation ran out of memory: the heap is not to be trusted
            # a culprit search under way goes on (its suspects still one per slice): ended
            # here, the suspects would run together again and an innocent one that had been
            # restarted twice would be blamed for another's CPU
            self._reset(ctx, set(ctx.solo), "MemoryLimitError", "")
            return
        if out.answer.queued == 0 and not ctx.triggers:
            ctx.ended.clear()  # every abandon trigger has been seen
        self._adapt_limit(ctx, triggers)
        if out.answer.queued or ctx.triggers:
            self._busy[ctx.key] = ctx
            self._wake.set()

    def _quantum(self, ctx: _Context, ran: dict[int, _Invocation], triggers: list[Trigger]) -> float | None:
        """The CPU a slice may use before its invocations are moved home (affinity.py), or
        None: it may run to its limit (some invocation is not movable or cannot restart)."""
        if not ran or not all(inv.req.movable and not inv.effects for inv in ctx.live.values()):
            return None
        # an onBatch invocation starts every event of its request: each counts as one start
        starts = [ran[t.inv] for t in triggers if isinstance(t, Start) and t.inv in ran]
        return preempt_s(sum(inv.req.events if inv.req.batch else 1 for inv in starts))

    def _move_home(self, ctx: _Context) -> None:
        """A movable slice ran past its quantum: the function holds a loop. Its invocations
        (none did anything outside JS) go back to the pool, which runs them on its home."""
        ctx.sandbox = None
        self._note_heavy(ctx, "CPULimitError")
        for inv in list(ctx.live.values()):
            self._finish(inv, False, name="ContextReset", message=MOVED, moved=True)
        stay: deque[_Invocation] = deque()
        for inv in ctx.waiting:
            if inv.req.movable:
                self._finish(inv, False, name="ContextReset", message=MOVED, moved=True)
            else:
                stay.append(inv)
        ctx.waiting = stay
        if stay:
            self._rebuild(ctx)
        else:  # built again when it is next invoked here (_on_invoke), if ever
            ctx.triggers.clear()
            ctx.solo.clear()
            ctx.ended.clear()

    def _is_heavy(self, function: str) -> bool:
        at = self._heavy.get(function)
        return at is not None and time.monotonic() - at <= HEAVY_FOR_S

    def _charge(self, ctx: _Context, ran: dict[int, _Invocation], cpu_s: float, boxes: tuple[Outbox, ...]) -> None:
        """Split the slice's CPU over the invocations that ran (by the time JS saw each run);
        an invocation past cpu_ms over all its slices ends with CPULimitError."""
        weights: dict[int, float] = {}
        for box in boxes:
            for inv_id, ms in box.costs:
                if inv_id in ctx.live:
                    weights[inv_id] = weights.get(inv_id, 0.0) + max(0.0, ms)
        for inv_id in ran:
            weights.setdefault(inv_id, 0.0)
        if not weights:
            return
        total = sum(w + 0.1 for w in weights.values())
        for inv_id, w in weights.items():
            inv = ctx.live[inv_id]
            inv.cpu_s += cpu_s * (w + 0.1) / total
            if inv.cpu_s > self._cpu_s and not inv.done:
                message = f"the function used more than {round(self._cpu_s * 1000)} ms of CPU"
                self._note_heavy(ctx, "CPULimitError")
                self._end(inv, "CPULimitError", message)

    def _end(self, inv: _Invocation, name: str, message: str) -> None:
        """The runner ends an invocation JS still runs: fail it, tell JS to drop it."""
        started = inv.started
        ctx = inv.ctx
        self._finish(inv, False, name=name, message=message)
        if started and inv.gen == ctx.gen and ctx.sandbox is not None:
            ctx.ended.add(inv.id)
            self._trigger(ctx, Abandon(inv=inv.id))

    def _violation(self, ctx: _Context, reason: str) -> None:
        """The context said something it may not: fail its invocations as a bug, rebuild it."""
        message = f"the function broke the runner's protocol ({reason[:300]}); its context was discarded"
        ctx.sandbox = None  # nothing is handed to the old context from here on
        for inv in list(ctx.live.values()):
            self._finish(inv, False, name="SandboxViolation", message=message)
        self._rebuild(ctx)

    def _interrupted(self, ctx: _Context, ran: dict[int, _Invocation], name: str, message: str) -> None:
        """A limit stopped a slice: blame the invocation that ran, or find it one by one."""
        ctx.sandbox = None
        if len(ran) == 1:
            [culprit] = ran.values()
            self._finish(culprit, False, name=name, message=message)  # and out of ctx.solo
            # the other suspects of a search under way stay one per slice: run together again,
            # two restarts would have them blamed for a second culprit's CPU
            self._reset(ctx, set(ctx.solo), name, message)
            return
        suspects = set()
        for inv in ran.values():
            if inv.effects or inv.restarts >= 2:
                self._finish(inv, False, name=name, message=message)
            else:
                suspects.add(inv.id)
        self._reset(ctx, suspects, name, message)

    def _reset(self, ctx: _Context, suspects: set[int], name: str, message: str) -> None:
        """Rebuild the context; restart its invocations that did nothing outside JS yet, and
        fail (retryably) those whose fetches or timers already ran."""
        ctx.sandbox = None
        restart: list[_Invocation] = []
        for inv in list(ctx.live.values()):
            if inv.effects or inv.restarts >= 3:
                why = f"the function's context was discarded after {name} in another invocation"
                self._finish(inv, False, name="ContextReset", message=why)
            else:
                restart.append(inv)
        self._rebuild(ctx, restart, suspects)

    def _rebuild(
        self, ctx: _Context, restart: list[_Invocation] | None = None, suspects: set[int] | None = None
    ) -> None:
        # a suspect still waiting for its turn (its start not yet fed to JS) did not run: a
        # rebuild is no restart for it, so a search through many suspects blames none unseen
        unseen = {t.inv for t in ctx.triggers if isinstance(t, Start)}
        for inv in restart or ():
            ctx.live.pop(inv.id, None)
            ctx.active -= 1
            inv.started = False
            inv.restarts += inv.id not in unseen
            inv.logs, inv.log_bytes, inv.requests, inv.cpu_s = [], 0, [], 0.0
        self._build(ctx)
        if ctx.sandbox is None:
            for inv in [*(restart or ()), *ctx.waiting]:
                self._finish(inv, False, name="FunctionNotLoaded", message=ctx.error or "")
            ctx.waiting.clear()
            return
        ctx.solo = set(suspects or ())
        for inv in restart or ():
            self._hand(ctx, inv)
        self._admit_waiting(ctx)

    def _adapt_limit(self, ctx: _Context, triggers: list[Trigger]) -> None:
        """Grow the admission limit while started invocations finish in their own slice."""
        started = [t.inv for t in triggers if isinstance(t, Start)]
        if not started:
            return
        if any(i in self._live for i in started):
            ctx.limit = self._max_active
        else:
            ctx.limit = min(ctx.limit * 2, MAX_TRIGGERS_PER_SLICE)
        self._admit_waiting(ctx)

    def _owned(self, ctx: _Context, inv_id: int, what: str) -> _Invocation | None:
        """The live invocation `inv_id` of THIS context; None if the runner ended it; else a violation."""
        inv = ctx.live.get(inv_id)
        if inv is not None:
            return inv
        if inv_id in ctx.ended:
            return None
        raise ContextViolation(f"{what} for invocation {inv_id}, which this context does not run")

    @staticmethod
    def _log(inv: _Invocation, entry: LogEntry) -> None:
        if inv.log_bytes <= MAX_LOG_BYTES:
            inv.log_bytes += len(entry.message) + LOG_LINE_COST
            inv.logs.append(LogLine(level=entry.level, message=cut(entry.message, MAX_LOG_BYTES), time=entry.time))

    def _apply_outbox(self, ctx: _Context, box: Outbox) -> bool:
        """Apply one outbox; True if an invocation ran out of memory (rebuild the context)."""
        for entry in box.logs:
            inv = self._owned(ctx, entry.inv, "a log line")
            if inv is not None:
                self._log(inv, entry)
        # other functions have invocations here: a burst of this one's fetches is spread out
        crowded = len(self._live) > len(ctx.live) + len(ctx.waiting)
        for fetch in box.fetches:
            inv = self._owned(ctx, fetch.inv, "a fetch")
            if inv is not None and self._nursery is not None:
                inv.fetches += 1
                if inv.fetches > MAX_FETCHES_PER_INVOCATION:
                    raise ContextViolation(f"more than {MAX_FETCHES_PER_INVOCATION} fetches in flight")
                inv.effects = True
                if ctx.fetches or (crowded and ctx.round_starts >= FETCH_STARTS_PER_ROUND):
                    ctx.fetches.append((inv, fetch))  # started in a later round (_start_fetches)
                    self._starting[ctx.key] = ctx
                    self._wake.set()
                else:
                    ctx.round_starts += 1
                    self._nursery.start_soon(self._do_fetch, inv, fetch)
        for timer in box.timers:
            inv = self._owned(ctx, timer.inv, "a timer")
            if inv is not None and self._nursery is not None:
                inv.timers += 1
                if inv.timers > MAX_TIMERS_PER_INVOCATION:
                    raise ContextViolation(f"more than {MAX_TIMERS_PER_INVOCATION} pending timers")
                inv.effects = True
                self._nursery.start_soon(self._do_timer, inv, timer)
        oom = False
        for done in box.finished:
            inv = self._owned(ctx, done.inv, "a result")
            if inv is None:
                continue
            if done.ok:
                self._finish(inv, True, value=done.value)
            else:
                oom = oom or done.error_name == "MemoryLimitError"
                self._finish(
                    inv,
                    False,
                    name=done.error_name,
                    message=done.error_message,
                    stack=done.stack,
                    retry_after=done.retry_after,
                )
        return oom

    def _finish(
        self,
        inv: _Invocation,
        ok: bool,
        *,
        value: str | None = None,
        name: str = "Error",
        message: str = "",
        stack: str | None = None,
        retry_after: float | None = None,
        moved: bool = False,
    ) -> None:
        """Record one invocation's result; answer its request when all positions are in."""
        if inv.done:
            return
        inv.done = True
        self._live.pop(inv.id, None)
        ctx = inv.ctx
        ctx.solo.discard(inv.id)
        if inv.started:
            ctx.live.pop(inv.id, None)
            self._admit(ctx)
        for scope in inv.scopes:
            scope.cancel()
        for abort in inv.aborts:
            abort.abort("the invocation ended")
        ms = (time.monotonic() - inv.t0) * 1000
        if ok:
            result = Result(duration_ms=ms, value=value, logs=inv.logs, requests=inv.requests)
        else:
            result = Result(
                duration_ms=ms,
                error_name=name,
                error_message=cut(message),
                stack=cut(stack) if stack else None,
                retry_after=retry_after,  # RetryError(msg, {retryAfter})
                logs=inv.logs,
                requests=inv.requests,
                moved=moved,
            )
        req = inv.req
        req.results[inv.pos] = result
        req.remaining -= 1
        if req.remaining == 0:
            results = [r if r is not None else Result(error_name="RunnerCrashed") for r in req.results]
            self._send(
                Results(id=req.id, batch=req.batch, results=results, pid=os.getpid(), heavy=self._recently_heavy())
            )

    def _recently_heavy(self) -> list[str]:
        """Functions whose slices hit their CPU limit here lately: the pool keeps them apart."""
        if not self._heavy:
            return []
        now = time.monotonic()
        for name, at in list(self._heavy.items()):
            if now - at > HEAVY_FOR_S:
                del self._heavy[name]
        return list(self._heavy)

    # ---- async work on behalf of JS ---------------------------------------------------
    async def _do_fetch(self, inv: _Invocation, item: FetchRequest) -> None:
        raw = None if item.body is None else item.body.encode("latin-1" if item.binary else "utf-8", "replace")
        t0 = time.monotonic()
        settle: Settle | None = None  # None only when the invocation ended meanwhile (cancelled)
        status: int | None = None
        error: str | None = None
        retry_after: float | None = None
        response_headers: tuple[tuple[str, str], ...] = ()
        response_body: str | None = None
        abort = Abort()
        inv.aborts.add(abort)
        if inv.done:  # it ended before this task ran: the request is not sent
            abort.abort("the invocation ended")
        try:
            spec = FetchSpec(
                item.method, item.url, list(item.headers), raw, item.redirect, item.timeout_ms / 1000, item.follow
            )
            reply = await self._fetcher.fetch(
                spec, owner=inv.ctx.name, on_queue=partial(_pause, inv.clock), abort=abort
            )
            answer = FetchAnswer(
                status=reply.status,
                reason=reply.reason,
                headers=reply.headers,
                url=reply.url,
                text=reply.text,
                redirected=reply.redirected,
                binary=reply.binary,  # bytes that are not UTF-8, exact (res.buffer())
            )
            settle = Settle(inv=inv.id, fetch_id=item.fetch_id, reply=answer)
            status = reply.status
            response_headers = _captured(reply.headers)
            response_body = reply.text[:CAPTURE_CHARS]
            if reply.status in RETRY_AFTER_STATUSES:
                retry_after = retry_after_header(reply.headers, now=time.time())
        except FetchCancelled:
            pass  # its invocation ended: nothing to answer
        except FetchFailed as exc:
            error = exc.reason
            settle = Settle(inv=inv.id, fetch_id=item.fetch_id, error=exc.message, code=exc.code, error_type=exc.type)
        except Exception as exc:  # noqa: BLE001 - whatever a request does, it fails only itself
            error = f"{type(exc).__name__}: {exc}"[:500]
            settle = Settle(inv=inv.id, fetch_id=item.fetch_id, error=error)
        finally:
            inv.aborts.discard(abort)
        inv.fetches -= 1
        if len(inv.requests) < MAX_REQUEST_RECORDS:
            # Attempt records: what was sent and received, capped (see outcomes.RequestRecord).
            inv.requests.append(
                RequestRecord(
                    method=item.method[:20],
                    url=item.url[:2048],
                    status=status,
                    duration_ms=(time.monotonic() - t0) * 1000,
                    error=error,
                    retry_after=retry_after,
                    request_headers=_captured(item.headers),
                    request_body=None if item.body is None else item.body[:CAPTURE_CHARS],
                    response_headers=response_headers,
                    response_body=response_body,
                )
            )
        if settle is not None and not inv.done and inv.gen == inv.ctx.gen:
            self._trigger(inv.ctx, settle)

    async def _do_timer(self, inv: _Invocation, timer: TimerRequest) -> None:
        with trio.CancelScope() as scope:
            inv.scopes.add(scope)
            await trio.sleep(timer.ms / 1000)
        inv.scopes.discard(scope)
        inv.timers -= 1
        if not inv.done and inv.gen == inv.ctx.gen:
            self._trigger(inv.ctx, Timer(inv=inv.id, timer_id=timer.timer_id))

    async def _deadline_loop(self) -> None:
        """Wall-clock timeout_ms for invocations waiting on fetches or timers."""
        while True:
            now = time.monotonic()
            while self._deadlines and self._deadlines[0][0] <= now:
                _, inv_id = heapq.heappop(self._deadlines)
                inv = self._live.get(inv_id)
                if inv is not None and not inv.clock.expired(now):
                    # paused (a fetch waits for a connection slot) or moved by a pause
                    heapq.heappush(self._deadlines, (min(inv.clock.next_check(now), now + 0.1), inv_id))
                elif inv is not None:
                    message = f"the function ran longer than {round(self._timeout_s * 1000)} ms"
                    self._end(inv, "TimeoutError", message)
            nxt = self._deadlines[0][0] - now if self._deadlines else 0.1
            await trio.sleep(max(0.005, min(nxt, 0.1)))


def _pause(clock: InvocationClock, waiting: bool) -> None:
    """fetch.py's on_queue: a connection slot is not the function's time."""
    (clock.pause if waiting else clock.resume)(time.monotonic())


def _report(ctx: _Context) -> Report:
    return Report(ok=ctx.sandbox is not None, error=ctx.error, line=ctx.line, handlers=list(ctx.handlers))


def _captured(headers: Iterable[tuple[str, str] | list[str]]) -> tuple[tuple[str, str], ...]:
    """Header pairs as an attempt record keeps them: at most CAPTURE_HEADERS, values capped."""
    return tuple((str(k), str(v)[:CAPTURE_CHARS]) for k, v in itertools.islice(headers, CAPTURE_HEADERS))


def _vm_size_bytes() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _limit_memory(memory_mb: int) -> None:
    """RLIMIT_AS = what the interpreter already maps + memory_mb for user work."""
    if memory_mb <= 0:
        return
    limit = _vm_size_bytes() + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


PARENT_POLL_S = 0.5  # how soon a runner notices that its daemon is gone


def ignore_stop_signals() -> None:
    """SIGINT / SIGTERM sent to the whole process group (Ctrl-C, systemd) are the daemon's to handle.

    The daemon drains on them and then closes our stdin; a runner that died on the signal
    itself would turn every invocation in flight into a RunnerCrashed retry (a repeated
    side effect). trio.run leaves an ignored SIGINT alone.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def exit_with_parent(parent: int, *, poll_s: float = PARENT_POLL_S) -> None:
    """Exit at once when the daemon (`parent`) is gone, so a runner never outlives it.

    A polling thread, not PR_SET_PDEATHSIG: the pool spawns runners from a trio worker
    thread, and the kernel sends the death signal when that *thread* exits, which trio's
    thread cache does after a few idle seconds. A dead daemon's results have nowhere to
    go; its leases expire and the deliveries run again.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def main() -> None:
    ignore_stop_signals()
    exit_with_parent(os.getppid())
    config = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    out_fd = os.dup(1)
    os.dup2(2, 1)  # print() now goes to stderr; fd out_fd is the protocol
    install_limit_handlers()
    # warm the allocator paths we need, then cap the address space
    Sandbox(cpu_s=1.0, wall_s=1.0)
    _limit_memory(int(config.get("memory_mb", 256)))
    freeze_startup_objects()
    profile = os.environ.get("SEGFUNCD_RUNNER_PROFILE")  # a path: dump cProfile stats there
    if profile:
        import cProfile

        cProfile.runctx("trio.run(_amain, config, out_fd)", globals(), locals(), f"{profile}.{os.getpid()}")
    else:
        trio.run(_amain, config, out_fd)


async def _amain(config: dict[str, Any], out_fd: int) -> None:
    await Runner(config).serve(0, out_fd)


if __name__ == "__main__":
    main()
