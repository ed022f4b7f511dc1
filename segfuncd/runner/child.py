"""A runner process (`python -m segfuncd.runner.child CONFIG_JSON`): user JS lives here.

One trio loop in the main thread owns everything: the pipe to the pool (fd 0 in, a dup of
fd 1 out; fd 1 itself is pointed at stderr so a stray print cannot corrupt a frame), one
QuickJS context per function version (keyed by hash), and one httpx client.

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
import json
import math
import os
import resource
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import trio

from .fetch import Fetcher, FetchFailed, FetchSpec
from .protocol import FrameDecoder, encode
from .sandbox import LoadFailure, Sandbox, install_limit_handlers

HANDLERS_BY_TYPE: dict[str, list[str]] = {
    "track": ["onTrack", "track"],
    "identify": ["onIdentify", "identify"],
    "page": ["onPage", "page"],
    "screen": ["onScreen", "screen"],
    "group": ["onGroup", "group"],
    "alias": ["onAlias", "alias"],
    "delete": ["onDelete"],
}
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


@dataclass(eq=False)
class _Request:
    id: int
    results: list[dict[str, Any] | None]
    remaining: int
    batch: bool


@dataclass(eq=False)
class _Invocation:
    id: int
    req: _Request
    pos: int
    ctx: _Context
    t0: float
    deadline: float
    logs: list[list[Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    scopes: set[trio.CancelScope] = field(default_factory=set)
    done: bool = False
    started: bool = False  # handed to JS (holds one of its context's active slots)


@dataclass(eq=False)
class _Context:
    hash: str
    sandbox: Sandbox | None
    handlers: tuple[str, ...]
    error: str | None
    line: int | None
    triggers: list[dict[str, Any]] = field(default_factory=list)
    last_used: float = 0.0
    active: int = 0  # invocations started in JS, not finished
    limit: int = DEFAULT_MAX_ACTIVE  # current admission limit (see DEFAULT_MAX_ACTIVE)
    waiting: deque[tuple[_Invocation, dict[str, Any]]] = field(default_factory=deque)


class Runner:
    """The runner's state; `serve()` runs until the pool closes our stdin."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._timeout_s = config.get("timeout_ms", 10_000) / 1000
        self._cpu_s = config.get("cpu_ms", 2_000) / 1000
        self._fetcher = Fetcher(
            user_agent=config.get("user_agent", "segfuncd"),
            egress_deny=config.get("egress_deny", ()),
            max_in_flight=config.get("max_fetch_in_flight", 8),
        )
        self._contexts: dict[str, _Context] = {}
        self._busy: dict[str, _Context] = {}
        self._live: dict[int, _Invocation] = {}
        self._deadlines: list[tuple[float, int]] = []
        self._next_inv = 1
        self._max_active = int(config.get("max_active", DEFAULT_MAX_ACTIVE))
        self._wake = trio.Event()
        self._send_q, self._send_r = trio.open_memory_channel[bytes](math.inf)
        self._nursery: trio.Nursery | None = None

    # ---- plumbing ---------------------------------------------------------------------
    async def serve(self, in_fd: int, out_fd: int) -> None:
        inp = trio.lowlevel.FdStream(in_fd)
        out = trio.lowlevel.FdStream(out_fd)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._writer, out)
            nursery.start_soon(self._js_loop)
            nursery.start_soon(self._deadline_loop)
            decoder = FrameDecoder()
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

    def _send(self, msg: dict[str, Any]) -> None:
        self._send_q.send_nowait(encode(msg))

    # ---- messages ---------------------------------------------------------------------
    def _on_message(self, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op == "load":
            ctx = self._load(msg["version"])
            self._send({"id": msg["id"], "report": _report(ctx)})
        elif op == "invoke":
            self._on_invoke(msg)
        elif op == "ping":
            self._send({"id": msg["id"], "pong": True})

    def _load(self, version: dict[str, Any]) -> _Context:
        ctx = self._contexts.get(version["hash"])
        if ctx is not None:
            return ctx
        sandbox = Sandbox(cpu_s=self._cpu_s, wall_s=self._timeout_s)
        try:
            handlers = sandbox.load(version["source"], version.get("path") or version["name"])
            ctx = _Context(version["hash"], sandbox, handlers, None, None)
        except LoadFailure as exc:
            ctx = _Context(version["hash"], None, (), exc.message, exc.line)
        ctx.limit = self._max_active
        self._contexts[version["hash"]] = ctx
        self._evict()
        return ctx

    def _evict(self) -> None:
        """Forget the least recently used idle contexts beyond MAX_CONTEXTS."""
        if len(self._contexts) <= MAX_CONTEXTS:
            return
        busy = {inv.ctx.hash for inv in self._live.values()}
        for ctx in sorted(self._contexts.values(), key=lambda c: c.last_used):
            if len(self._contexts) <= MAX_CONTEXTS:
                break
            if ctx.hash not in busy and ctx.hash not in self._busy:
                del self._contexts[ctx.hash]

    def _on_invoke(self, msg: dict[str, Any]) -> None:
        ctx = self._contexts.get(msg["hash"])
        if ctx is None:
            if "version" not in msg:
                self._send({"id": msg["id"], "missing": True})
                return
            ctx = self._load(msg["version"])
        ctx.last_used = time.monotonic()
        events: list[str] = msg["events"]
        if ctx.sandbox is None:
            failed = {"error_name": "FunctionNotLoaded", "error_message": ctx.error, "duration_ms": 0.0}
            self._send({"id": msg["id"], "batch": False, "results": [failed] * len(events)})
            return
        batch = bool(msg.get("batch")) and "onBatch" in ctx.handlers
        req = _Request(msg["id"], [None] * (1 if batch else len(events)), 1 if batch else len(events), batch)
        if not events:
            self._send({"id": req.id, "batch": batch, "results": []})
            return
        settings = msg.get("settings") or "{}"
        if batch:
            self._start(ctx, req, 0, ["onBatch"], "batch", "[" + ",".join(events) + "]", settings)
        else:
            for pos, (ev, ty) in enumerate(zip(events, msg["types"], strict=True)):
                self._start(ctx, req, pos, HANDLERS_BY_TYPE.get(ty, []), str(ty), ev, settings)

    def _start(self, ctx: _Context, req: _Request, pos: int, handlers: list[str], ty: str, ev: str, st: str) -> None:
        inv_id = self._next_inv
        self._next_inv += 1
        now = time.monotonic()
        inv = _Invocation(inv_id, req, pos, ctx, now, now + self._timeout_s)
        self._live[inv_id] = inv
        heapq.heappush(self._deadlines, (inv.deadline, inv_id))
        start = {"k": "s", "i": inv_id, "h": handlers, "ty": ty, "e": ev, "s": st}
        if ctx.active < ctx.limit:
            ctx.active += 1
            inv.started = True
            self._trigger(ctx, start)
        else:
            ctx.waiting.append((inv, start))

    def _admit(self, ctx: _Context) -> None:
        """A slot freed up: start waiting invocations that have not timed out."""
        ctx.active -= 1
        self._admit_waiting(ctx)

    def _admit_waiting(self, ctx: _Context) -> None:
        while ctx.waiting and ctx.active < ctx.limit:
            inv, start = ctx.waiting.popleft()
            if not inv.done:
                ctx.active += 1
                inv.started = True
                self._trigger(ctx, start)

    def _trigger(self, ctx: _Context, trigger: dict[str, Any]) -> None:
        ctx.triggers.append(trigger)
        self._busy[ctx.hash] = ctx
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
            for ctx in list(self._busy.values()):
                self._busy.pop(ctx.hash, None)
                self._run_slice(ctx)
            # let fetches, timers and the pipe make progress between rounds
            await trio.lowlevel.checkpoint()

    def _run_slice(self, ctx: _Context) -> None:
        assert ctx.sandbox is not None
        triggers = ctx.triggers[:MAX_TRIGGERS_PER_SLICE]
        del ctx.triggers[:MAX_TRIGGERS_PER_SLICE]
        try:
            out = ctx.sandbox.run_slice(triggers)
        except LoadFailure as exc:
            # the function broke its own dispatcher: fail what it has in flight
            for inv in [i for i in self._live.values() if i.ctx is ctx]:
                self._finish(inv, False, {"name": "FunctionNotLoaded", "message": exc.message})
            return
        for box in out.outboxes:
            self._apply_outbox(box)
        self._adapt_limit(ctx, triggers)
        if out.queued or ctx.triggers:
            self._busy[ctx.hash] = ctx
            self._wake.set()

    def _adapt_limit(self, ctx: _Context, triggers: list[dict[str, Any]]) -> None:
        """Grow the admission limit while started invocations finish in their own slice."""
        started = [t["i"] for t in triggers if t["k"] == "s"]
        if not started:
            return
        if any(i in self._live for i in started):
            ctx.limit = self._max_active
        else:
            ctx.limit = min(ctx.limit * 2, MAX_TRIGGERS_PER_SLICE)
        self._admit_waiting(ctx)

    def _apply_outbox(self, box: dict[str, Any]) -> None:
        for inv_id, level, message, at in box["l"]:
            inv = self._live.get(inv_id)
            if inv is not None:
                inv.logs.append([level, message, at])
        for item in box["f"]:
            inv = self._live.get(item[1])
            if inv is not None and self._nursery is not None:
                self._nursery.start_soon(self._do_fetch, inv, item)
        for timer_id, inv_id, ms in box["t"]:
            inv = self._live.get(inv_id)
            if inv is not None and self._nursery is not None:
                self._nursery.start_soon(self._do_timer, inv, timer_id, ms)
        for inv_id, ok, payload in box["d"]:
            inv = self._live.get(inv_id)
            if inv is not None:
                self._finish(inv, ok, payload)

    def _finish(self, inv: _Invocation, ok: bool, payload: Any) -> None:
        """Record one invocation's result; answer its request when all positions are in."""
        if inv.done:
            return
        inv.done = True
        self._live.pop(inv.id, None)
        if inv.started:
            self._admit(inv.ctx)
        for scope in inv.scopes:
            scope.cancel()
        result: dict[str, Any] = {
            "logs": inv.logs,
            "requests": inv.requests,
            "duration_ms": (time.monotonic() - inv.t0) * 1000,
        }
        if ok:
            result["value"] = payload
        else:
            result["error_name"] = str(payload.get("name") or "Error")
            result["error_message"] = str(payload.get("message") or "")
            if payload.get("stack"):
                result["stack"] = payload["stack"]
        req = inv.req
        req.results[inv.pos] = result
        req.remaining -= 1
        if req.remaining == 0:
            self._send({"id": req.id, "batch": req.batch, "results": req.results, "pid": os.getpid()})

    # ---- async work on behalf of JS ---------------------------------------------------
    async def _do_fetch(self, inv: _Invocation, item: list[Any]) -> None:
        fid, _, method, url, headers, body, is_bin, follow, timeout_ms = item
        raw = None if body is None else body.encode("latin-1" if is_bin else "utf-8")
        spec = FetchSpec(
            method, url, [(str(k), str(v)) for k, v in headers], raw, bool(follow), (timeout_ms or 0) / 1000
        )
        t0 = time.monotonic()
        trigger: dict[str, Any] = {"k": "f", "i": inv.id, "f": fid}
        record: dict[str, Any] = {"method": method, "url": url, "status": None}
        # Attempt records: what was sent and received, capped (see outcomes.RequestRecord).
        record["rqh"] = [[str(k), str(v)[:CAPTURE_CHARS]] for k, v in headers][:CAPTURE_HEADERS]
        record["rqb"] = None if body is None else body[:CAPTURE_CHARS]
        with trio.CancelScope() as scope:
            inv.scopes.add(scope)
            try:
                reply = await self._fetcher.fetch(spec)
                trigger["r"] = {
                    "st": reply.status,
                    "tx": reply.reason,
                    "h": reply.headers,
                    "u": reply.url,
                    "b": reply.text,
                    "rd": reply.redirected,
                }
                record["status"] = reply.status
                record["rsh"] = [[str(k), str(v)[:CAPTURE_CHARS]] for k, v in reply.headers][:CAPTURE_HEADERS]
                record["rsb"] = reply.text[:CAPTURE_CHARS]
            except FetchFailed as exc:
                trigger["err"] = exc.reason
                trigger["code"] = exc.code
                record["error"] = exc.reason
        inv.scopes.discard(scope)
        record["duration_ms"] = (time.monotonic() - t0) * 1000
        inv.requests.append(record)
        if not inv.done:
            self._trigger(inv.ctx, trigger)

    async def _do_timer(self, inv: _Invocation, timer_id: int, ms: float) -> None:
        with trio.CancelScope() as scope:
            inv.scopes.add(scope)
            await trio.sleep(ms / 1000)
        inv.scopes.discard(scope)
        if not inv.done:
            self._trigger(inv.ctx, {"k": "t", "i": inv.id, "t": timer_id})

    async def _deadline_loop(self) -> None:
        """Wall-clock timeout_ms for invocations waiting on fetches or timers."""
        while True:
            now = time.monotonic()
            while self._deadlines and self._deadlines[0][0] <= now:
                _, inv_id = heapq.heappop(self._deadlines)
                inv = self._live.get(inv_id)
                if inv is not None:
                    message = f"the function ran longer than {round(self._timeout_s * 1000)} ms"
                    started = inv.started
                    self._finish(inv, False, {"name": "TimeoutError", "message": message})
                    if started:
                        self._trigger(inv.ctx, {"k": "x", "i": inv_id})
            nxt = self._deadlines[0][0] - now if self._deadlines else 0.1
            await trio.sleep(max(0.005, min(nxt, 0.1)))


def _report(ctx: _Context) -> dict[str, Any]:
    return {"ok": ctx.sandbox is not None, "error": ctx.error, "line": ctx.line, "handlers": list(ctx.handlers)}


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


def main() -> None:
    config = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    out_fd = os.dup(1)
    os.dup2(2, 1)  # print() now goes to stderr; fd out_fd is the protocol
    install_limit_handlers()
    # warm the allocator paths we need, then cap the address space
    Sandbox(cpu_s=1.0, wall_s=1.0)
    _limit_memory(int(config.get("memory_mb", 256)))
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
